package io.meshcrypt.filter.http;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.config.core.v3.HeaderMap;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpBody;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpHeaders;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.meshconfig.http.HeaderChanges;
import io.meshcrypt.meshconfig.http.HttpRule;
import io.meshcrypt.meshconfig.http.HttpRules;
import io.meshcrypt.meshconfig.http.RouteMatch;
import io.meshcrypt.meshconfig.http.RuleSide;
import io.meshcrypt.meshconfig.policy.Identities;
import io.meshcrypt.meshconfig.transform.FieldOp;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** An HTTP rule with readers decrypts response fields only on streams of the sidecars it lists. */
class HttpReadersTest {
    private static final String SHOP = "spiffe://meshcrypt.local/sidecar/shop";

    @TempDir
    Path dir;
    private ValueCipherV1 cipher;
    private HttpProcessor processor;
    private String storedCard;

    @BeforeEach
    void setUp() throws Exception {
        Keysets.create(dir.resolve("keyset.json"));
        cipher = ValueCipherV1.fromKeysetFile(dir.resolve("keyset.json"));
        RuleSide response = new RuleSide(List.of(new FieldOp.Decrypt(JsonPointer.parse("/card"), false)), List.of(),
                HeaderChanges.NONE, RuleSide.OnInvalid.REJECT);
        HttpRule rule = new HttpRule("orders", RouteMatch.ANY, "orders", RuleSide.NONE, response,
                Identities.of(List.of(SHOP)));
        processor = new HttpProcessor(new HttpRules(List.of(rule)), cipher);
        ByteBuffer envelope = cipher.encrypt("orders", ByteBuffer.wrap("\"4111\"".getBytes(StandardCharsets.UTF_8)));
        byte[] bytes = new byte[envelope.remaining()];
        envelope.get(bytes);
        storedCard = Base64.getEncoder().encodeToString(bytes);
    }

    @Test
    void givenAListedSidecar_whenTheResponseArrives_thenTheFieldIsDecrypted() {
        assertEquals("{\"card\":\"4111\"}", responseBodyFor(SHOP));
    }

    @Test
    void givenAnotherSidecarOrNone_whenTheResponseArrives_thenTheEnvelopePassesAsItIs() {
        // nothing left to do to the body: Envoy is told to send the stored one, envelope and all
        assertEquals("", responseBodyFor("spiffe://meshcrypt.local/sidecar/other"));
        assertEquals("", responseBodyFor(null));
    }

    /** The body Envoy is told to send on, or "" when it is told to send the original unchanged. */
    private String responseBodyFor(String identity) {
        HttpExchange exchange = processor.open(identity);
        exchange.handle(ProcessingRequest.newBuilder().setRequestHeaders(HttpHeaders.newBuilder().setHeaders(
                HeaderMap.newBuilder()
                        .addHeaders(HeaderValue.newBuilder().setKey(":method").setValue("GET"))
                        .addHeaders(HeaderValue.newBuilder().setKey(":path").setValue("/orders/1")))
                .setEndOfStream(true)).build());
        exchange.handle(ProcessingRequest.newBuilder().setResponseHeaders(HttpHeaders.newBuilder().setHeaders(
                HeaderMap.newBuilder()
                        .addHeaders(HeaderValue.newBuilder().setKey(":status").setValue("200"))
                        .addHeaders(HeaderValue.newBuilder().setKey("content-type").setValue("application/json"))))
                .build());
        ProcessingResponse answer = exchange.handle(ProcessingRequest.newBuilder().setResponseBody(HttpBody.newBuilder()
                .setBody(ByteString.copyFromUtf8("{\"card\":\"" + storedCard + "\"}")).setEndOfStream(true)).build());
        return answer.getResponseBody().getResponse().getBodyMutation().getBody().toStringUtf8();
    }
}
