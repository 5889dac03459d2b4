package io.meshcrypt.filter.http;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.crypto.ValueEnvelope;
import io.meshcrypt.filter.http.EchoApp.Received;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * Real Envoy (envoy/http-sidecar.yaml.template) in front of a real HTTP app (the JDK's HttpServer), with the
 * filter-service's gRPC server in process. The app echoes every body it receives, so the response path runs the
 * response rules on exactly what the app saw.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class HttpSidecarTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String RULES = """
            listen: 127.0.0.1:0
            keyset: keyset.json
            http:
              rules:
                - name: orders
                  match: {methods: [POST], path: /orders, contentType: application/json}
                  binding: orders
                  request:
                    fields:
                      - encrypt: /card/number
                      - redact: /card/cvv
                    headers:
                      set: {x-meshcrypt: rewritten}
                      remove: [x-debug]
                  response:
                    fields:
                      - decrypt: /card/number
                - name: ssn
                  match: {path: /people, body: '"ssn"\\s*:'}
                  request:
                    body:
                      - {pattern: '[0-9]{3}-[0-9]{2}-[0-9]{4}', with: 'XXX-XX-XXXX'}
                - name: restricted
                  match: {methods: [POST], path: /restricted, contentType: application/json}
                  binding: orders
                  request:
                    fields: [{encrypt: /card/number}]
                  response:
                    fields: [{decrypt: /card/number}]
                  readers: ["spiffe://meshcrypt.local/sidecar/billing"]
                - name: lenient
                  match: {path: /lenient}
                  binding: orders
                  request:
                    fields: [{encrypt: /secret}]
                    onInvalid: pass
            """;

    private HttpSidecarFixture sidecar;
    private ValueCipherV1 cipher;
    private EchoApp app;
    private final HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();

    @BeforeAll
    void start(@TempDir Path dir) throws Exception {
        sidecar = HttpSidecarFixture.start(dir, RULES);
        cipher = sidecar.cipher;
        app = sidecar.app;
    }

    @AfterAll
    void stop() {
        if (sidecar != null) {
            sidecar.close();
        }
    }

    @BeforeEach
    void clear() {
        app.received.clear();
    }

    @Test
    void givenEncryptRule_whenJsonPosted_thenAppGetsEnvelopeAndClientGetsPlaintextBack() throws Exception {
        String original = "{\"id\":7,\"card\":{\"number\":\"4111111111111111\",\"cvv\":\"123\"},\"note\":\"fragile\"}";

        HttpResponse<byte[]> response = post("/orders", original, "application/json; charset=utf-8",
                Map.of("x-debug", "1", "x-keep", "yes"));

        Received atApp = next();
        JsonNode seen = JSON.readTree(atApp.body());
        assertEquals(7, seen.get("id").asInt());
        assertEquals("fragile", seen.get("note").asText());
        assertEquals("[redacted]", seen.at("/card/cvv").asText());
        byte[] envelope = Base64.getDecoder().decode(seen.at("/card/number").asText());
        assertTrue(ValueEnvelope.isEnvelope(ByteBuffer.wrap(envelope)));
        assertEquals("\"4111111111111111\"", utf8(cipher.decrypt("orders", ByteBuffer.wrap(envelope))));
        assertEquals(Integer.toString(atApp.body().length), atApp.header("Content-length"));
        assertEquals("rewritten", atApp.header("X-meshcrypt"));
        assertNull(atApp.header("X-debug"));
        assertEquals("yes", atApp.header("X-keep"));

        assertEquals(200, response.statusCode());
        String expectedBack = "{\"id\":7,\"card\":{\"number\":\"4111111111111111\",\"cvv\":\"[redacted]\"},\"note\":\"fragile\"}";
        assertEquals(expectedBack, utf8(response.body()));
        assertEquals(Long.toString(response.body().length), response.headers().firstValue("content-length").orElseThrow());
    }

    @Test
    void givenARuleWithReaders_whenASidecarOutsideThemStreamsTheResponse_thenTheClientGetsTheEnvelopeBack() throws Exception {
        // this sidecar streams over plaintext gRPC: it has no identity, so it is among no rule's readers
        HttpResponse<byte[]> response = post("/restricted", "{\"card\":{\"number\":\"4111111111111111\"}}",
                "application/json", Map.of());

        String atApp = JSON.readTree(next().body()).at("/card/number").asText();
        assertEquals(200, response.statusCode());
        assertEquals(atApp, JSON.readTree(response.body()).at("/card/number").asText(),
                "the response field is the envelope the app echoed, not decrypted");
        assertTrue(ValueEnvelope.isEnvelope(ByteBuffer.wrap(Base64.getDecoder().decode(atApp))));
    }

    @Test
    void givenBodyPatternRule_whenBodiesPosted_thenOnlyMatchingOnesAreRewritten() throws Exception {
        String matching = "{ \"name\": \"Ada\", \"ssn\": \"123-45-6789\" }";
        String other = "{ \"name\": \"Bob\",   \"phone\": \"555-12-3456\" }";

        HttpResponse<byte[]> first = post("/people", matching, "application/json", Map.of());
        Received rewritten = next();
        HttpResponse<byte[]> second = post("/people", other, "application/json", Map.of());
        Received untouched = next();

        assertEquals("{ \"name\": \"Ada\", \"ssn\": \"XXX-XX-XXXX\" }", utf8(rewritten.body()));
        assertEquals(Integer.toString(rewritten.body().length), rewritten.header("Content-length"));
        assertArrayEquals(other.getBytes(StandardCharsets.UTF_8), untouched.body());
        assertEquals(200, first.statusCode());
        assertEquals(200, second.statusCode());
        assertArrayEquals(other.getBytes(StandardCharsets.UTF_8), second.body());
    }

    @Test
    void givenFiveMegabyteBody_whenPosted_thenFieldEncryptedOnTheWayInAndDecryptedOnTheWayOut() throws Exception {
        ObjectNode doc = JSON.createObjectNode();
        doc.putObject("card").put("number", "9".repeat(2_500_000));
        doc.put("notes", "n".repeat(2_500_000));
        String original = JSON.writeValueAsString(doc);
        assertTrue(original.length() > 5_000_000);

        HttpResponse<byte[]> response = post("/orders", original, "application/json", Map.of());

        Received atApp = next();
        JsonNode seen = JSON.readTree(atApp.body());
        assertEquals(doc.get("notes"), seen.get("notes"));
        byte[] envelope = Base64.getDecoder().decode(seen.at("/card/number").asText());
        assertEquals("\"" + "9".repeat(2_500_000) + "\"", utf8(cipher.decrypt("orders", ByteBuffer.wrap(envelope))));
        assertEquals(Integer.toString(atApp.body().length), atApp.header("Content-length"));
        assertEquals(200, response.statusCode());
        assertEquals(original, utf8(response.body()));
        assertEquals(Long.toString(response.body().length), response.headers().firstValue("content-length").orElseThrow());
    }

    @Test
    void givenMalformedJson_whenRuleRejects_then400AndAppNeverCalled() throws Exception {
        HttpResponse<byte[]> response = post("/orders", "{\"card\": {\"number\": \"4111", "application/json", Map.of());

        assertEquals(400, response.statusCode());
        assertTrue(utf8(response.body()).contains("rule orders"), utf8(response.body()));
        assertNull(app.received.poll(300, TimeUnit.MILLISECONDS), "the app must not see a body the rule could not process");
    }

    @Test
    void givenMalformedJson_whenRulePasses_thenAppGetsItUnchanged() throws Exception {
        String body = "secret=hunter2, not json";

        HttpResponse<byte[]> response = post("/lenient", body, "text/plain", Map.of());

        assertEquals(200, response.statusCode());
        assertArrayEquals(body.getBytes(StandardCharsets.UTF_8), next().body());
    }

    @Test
    void givenNoRuleMatches_whenPosted_thenBodyPassesByteForByte() throws Exception {
        String body = "{ \"card\" : { \"number\" : \"4111\" } }";

        HttpResponse<byte[]> response = post("/elsewhere", body, "application/json", Map.of());

        assertEquals(200, response.statusCode());
        assertArrayEquals(body.getBytes(StandardCharsets.UTF_8), next().body());
        assertArrayEquals(body.getBytes(StandardCharsets.UTF_8), response.body());
    }

    private HttpResponse<byte[]> post(String path, String body, String contentType, Map<String, String> headers) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + sidecar.port() + path))
                .timeout(Duration.ofSeconds(30))
                .header("content-type", contentType)
                .POST(HttpRequest.BodyPublishers.ofString(body));
        headers.forEach(request::header);
        return client.send(request.build(), HttpResponse.BodyHandlers.ofByteArray());
    }

    private Received next() throws InterruptedException {
        return app.next();
    }

    private static String utf8(byte[] bytes) {
        return new String(bytes, StandardCharsets.UTF_8);
    }

    private static String utf8(ByteBuffer buffer) {
        return StandardCharsets.UTF_8.decode(buffer).toString();
    }
}
