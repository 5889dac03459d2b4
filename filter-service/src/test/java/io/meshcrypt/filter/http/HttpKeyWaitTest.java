package io.meshcrypt.filter.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.config.core.v3.HeaderMap;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpBody;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpHeaders;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.kms.KeyNotReadyException;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.meshconfig.http.HeaderChanges;
import io.meshcrypt.meshconfig.http.HttpRule;
import io.meshcrypt.meshconfig.http.HttpRules;
import io.meshcrypt.meshconfig.http.RouteMatch;
import io.meshcrypt.meshconfig.http.RuleSide;
import io.meshcrypt.meshconfig.transform.FieldOp;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A body whose data key is not ready is answered later, from the same exchange state; the worker never waits. */
class HttpKeyWaitTest {

    @TempDir
    Path dir;

    @Test
    void givenDataKeyNotReady_whenRequestBodyArrives_thenKeyWaitAndTheSameMessageIsRewrittenOnceReady() throws Exception {
        Keysets.create(dir.resolve("keyset.json"));
        ValueCipherV1 records = ValueCipherV1.fromKeysetFile(dir.resolve("keyset.json"));
        CompletableFuture<Void> key = new CompletableFuture<>();
        ValueCipher slowKey = new ValueCipher() {
            @Override
            public ByteBuffer encrypt(String topic, ByteBuffer plaintext) throws GeneralSecurityException {
                if (!key.isDone()) {
                    throw new KeyNotReadyException("key on its way", key);
                }
                return records.encrypt(topic, plaintext);
            }

            @Override
            public ByteBuffer decrypt(String topic, ByteBuffer envelope) throws GeneralSecurityException {
                return records.decrypt(topic, envelope);
            }
        };
        HttpRule rule = new HttpRule("orders", RouteMatch.ANY, "orders",
                new RuleSide(List.of(new FieldOp.Encrypt(JsonPointer.parse("/card"), false)), List.of(), HeaderChanges.NONE,
                        RuleSide.OnInvalid.REJECT), RuleSide.NONE);
        HttpExchange exchange = new HttpProcessor(new HttpRules(List.of(rule)), slowKey).open();
        exchange.handle(ProcessingRequest.newBuilder().setRequestHeaders(HttpHeaders.newBuilder().setHeaders(
                HeaderMap.newBuilder()
                        .addHeaders(HeaderValue.newBuilder().setKey(":method").setValue("POST"))
                        .addHeaders(HeaderValue.newBuilder().setKey(":path").setValue("/orders"))
                        .addHeaders(HeaderValue.newBuilder().setKey("content-type").setValue("application/json"))))
                .build());
        ProcessingRequest body = ProcessingRequest.newBuilder().setRequestBody(HttpBody.newBuilder()
                .setBody(ByteString.copyFromUtf8("{\"card\":\"4111111111111111\"}")).setEndOfStream(true)).build();

        KeyWait wait = assertThrows(KeyWait.class, () -> exchange.handle(body));
        key.complete(null);
        ProcessingResponse answer = exchange.handle(body);

        assertTrue(wait.ready().isDone());
        assertFalse(answer.hasImmediateResponse(), "the retried body is not refused as a second body: " + answer);
        String sent = answer.getRequestBody().getResponse().getBodyMutation().getBody().toStringUtf8();
        assertFalse(sent.contains("4111111111111111"), sent);
        assertEquals("4111111111111111", new HttpProcessor(new HttpRules(List.of(rule)), records).transformer
                .apply(io.meshcrypt.filter.transform.JsonTransformer.parse(sent.getBytes()),
                        List.of(new FieldOp.Decrypt(JsonPointer.parse("/card"), false)), "orders")
                .get("card").asText());
    }
}
