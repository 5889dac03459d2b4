package io.meshcrypt.filter.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.crypto.tink.KeysetHandle;
import com.google.crypto.tink.aead.AeadConfig;
import com.google.crypto.tink.aead.PredefinedAeadParameters;
import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.config.core.v3.HeaderMap;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpBody;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpHeaders;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.meshcrypt.filter.crypto.SubjectValueCipher;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.subjects.InMemorySubjectKeys;
import io.meshcrypt.filter.subjects.SubjectKeyStore;
import io.meshcrypt.meshconfig.http.HeaderChanges;
import io.meshcrypt.meshconfig.http.HttpRule;
import io.meshcrypt.meshconfig.http.HttpRules;
import io.meshcrypt.meshconfig.http.RouteMatch;
import io.meshcrypt.meshconfig.http.RuleSide;
import io.meshcrypt.meshconfig.policy.Forgotten;
import io.meshcrypt.meshconfig.policy.SubjectSource;
import io.meshcrypt.meshconfig.transform.FieldOp;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * HTTP rules naming a subject: request fields go under the subject's key (a new subject's key is waited for by
 * answering later, never on the worker), response fields of a forgotten subject read as the rule's replacement, and a
 * request naming no subject is refused whatever onInvalid says.
 */
class HttpSubjectTest {
    private static final Duration WAIT = Duration.ofSeconds(10);
    private static final JsonPointer CARD = JsonPointer.parse("/card/number");

    @TempDir
    Path dir;
    private SubjectKeyStore store;
    private HttpProcessor processor;

    @BeforeEach
    void setUp() throws Exception {
        AeadConfig.register();
        store = InMemorySubjectKeys.open(dir);
        ValueCipherV1 dataKeys = ValueCipherV1.fromKeysetHandle(KeysetHandle.generateNew(PredefinedAeadParameters.AES256_GCM));
        processor = new HttpProcessor(new HttpRules(List.of(
                rule("in-body", "/cards", SubjectSource.value(JsonPointer.parse("/customer/id")).withScope("customers"),
                        new Forgotten("[forgotten]")),
                rule("in-header", "/profiles", SubjectSource.header("x-customer-id").withScope("customers"),
                        Forgotten.NULL))), dataKeys, new SubjectValueCipher(store));
    }

    @AfterEach
    void tearDown() {
        store.close();
    }

    /** Encrypts the card number of requests and decrypts it in responses; invalid bodies pass (not for subjects). */
    private static HttpRule rule(String name, String path, SubjectSource subject, Forgotten forgotten) {
        RouteMatch match = new RouteMatch(java.util.Set.of(), path, null, List.of(), null);
        return new HttpRule(name, match, "cards",
                new RuleSide(List.of(new FieldOp.Encrypt(CARD, false)), List.of(), HeaderChanges.NONE, RuleSide.OnInvalid.PASS),
                new RuleSide(List.of(new FieldOp.Decrypt(CARD, false)), List.of(), HeaderChanges.NONE, RuleSide.OnInvalid.PASS),
                null, subject, forgotten);
    }

    private static ProcessingRequest headers(String path, Map<String, String> more) {
        HeaderMap.Builder map = HeaderMap.newBuilder()
                .addHeaders(HeaderValue.newBuilder().setKey(":method").setValue("POST"))
                .addHeaders(HeaderValue.newBuilder().setKey(":path").setValue(path))
                .addHeaders(HeaderValue.newBuilder().setKey("content-type").setValue("application/json"));
        more.forEach((k, v) -> map.addHeaders(HeaderValue.newBuilder().setKey(k).setValue(v)));
        return ProcessingRequest.newBuilder().setRequestHeaders(HttpHeaders.newBuilder().setHeaders(map)).build();
    }

    private static ProcessingRequest requestBody(String json) {
        return ProcessingRequest.newBuilder().setRequestBody(HttpBody.newBuilder()
                .setBody(ByteString.copyFromUtf8(json)).setEndOfStream(true)).build();
    }

    private static ProcessingRequest responseBody(String json) {
        return ProcessingRequest.newBuilder().setResponseBody(HttpBody.newBuilder()
                .setBody(ByteString.copyFromUtf8(json)).setEndOfStream(true)).build();
    }

    /** Answers {@code message}, answering it again once a key on its way is ready, as the stream does. */
    private static ProcessingResponse handle(HttpExchange exchange, ProcessingRequest message) throws Exception {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (true) {
            try {
                return exchange.handle(message);
            } catch (KeyWait wait) {
                assertTrue(System.nanoTime() < deadline, "the key never became ready");
                wait.ready().get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
            }
        }
    }

    /** @return the request body sent upstream */
    private String post(String path, Map<String, String> headers, String json) throws Exception {
        HttpExchange exchange = processor.open();
        handle(exchange, headers(path, headers));
        ProcessingResponse answer = handle(exchange, requestBody(json));
        assertFalse(answer.hasImmediateResponse(), answer.toString());
        return answer.getRequestBody().getResponse().getBodyMutation().getBody().toStringUtf8();
    }

    /** @return the response body the client gets for an upstream answer of {@code json} */
    private String respond(String path, Map<String, String> headers, String json) throws Exception {
        HttpExchange exchange = processor.open();
        handle(exchange, headers(path, headers));
        handle(exchange, requestBody("{}"));
        handle(exchange, ProcessingRequest.newBuilder().setResponseHeaders(HttpHeaders.getDefaultInstance()).build());
        ProcessingResponse answer = handle(exchange, responseBody(json));
        assertFalse(answer.hasImmediateResponse(), answer.toString());
        return answer.getResponseBody().getResponse().getBodyMutation().getBody().toStringUtf8();
    }

    private static String card(String customer) {
        return "{\"customer\":{\"id\":\"" + customer + "\"},\"card\":{\"number\":\"4111111111111111\"}}";
    }

    @Test
    void givenANewSubjectInTheBody_whenPosted_thenTheKeyIsWaitedForWithoutBlockingAndTheCardGoesUpstreamEncrypted()
            throws Exception {
        HttpExchange exchange = processor.open();
        exchange.handle(headers("/cards", Map.of()));

        KeyWait wait = assertThrows(KeyWait.class, () -> exchange.handle(requestBody(card("alice"))));
        wait.ready().get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
        ProcessingResponse answer = handle(exchange, requestBody(card("alice")));

        String upstream = answer.getRequestBody().getResponse().getBodyMutation().getBody().toStringUtf8();
        assertFalse(upstream.contains("4111"), upstream);
        assertTrue(upstream.startsWith("{\"customer\":{\"id\":\"alice\"},\"card\":{\"number\":\"AE1DRQ"), upstream);
        assertEquals(card("alice"), respond("/cards", Map.of(), upstream), "read back: plaintext");
    }

    @Test
    void givenTwoSubjects_whenOneIsForgotten_thenItsCardReadsAsThePlaceholderOrNullAndTheOtherAsSent() throws Exception {
        String alice = post("/cards", Map.of(), card("alice"));
        String bob = post("/cards", Map.of(), card("bob"));
        String aliceByHeader = post("/profiles", Map.of("x-customer-id", "alice"), card("anyone"));

        store.forget("customers", "alice", WAIT);

        assertEquals("{\"customer\":{\"id\":\"alice\"},\"card\":{\"number\":\"[forgotten]\"}}",
                respond("/cards", Map.of(), alice));
        assertEquals("{\"customer\":{\"id\":\"anyone\"},\"card\":{\"number\":null}}",
                respond("/profiles", Map.of(), aliceByHeader), "one scope: the header rule's field is forgotten too");
        assertEquals(card("bob"), respond("/cards", Map.of(), bob));
    }

    @Test
    void givenARequestNamingNoSubjectOrAForgottenOne_whenPosted_thenRefusedWith400ThoughInvalidBodiesPass()
            throws Exception {
        post("/cards", Map.of(), card("carol"));
        store.forget("customers", "carol", WAIT);

        for (String[] request : List.of(new String[] {"/cards", "{\"card\":{\"number\":\"4111111111111111\"}}"},
                new String[] {"/profiles", card("x")}, new String[] {"/cards", card("carol")})) {
            HttpExchange exchange = processor.open();
            handle(exchange, headers(request[0], Map.of()));
            ProcessingResponse answer = handle(exchange, requestBody(request[1]));

            assertTrue(answer.hasImmediateResponse(), request[0] + " " + request[1] + ": " + answer);
            assertEquals(400, answer.getImmediateResponse().getStatus().getCodeValue());
            assertFalse(answer.getImmediateResponse().getBody().toStringUtf8().contains("4111"));
        }
    }
}
