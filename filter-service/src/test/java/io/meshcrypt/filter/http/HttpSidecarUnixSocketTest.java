package io.meshcrypt.filter.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.meshcrypt.filter.crypto.ValueEnvelope;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * Real Envoy (envoy/http-sidecar.yaml.template) reaching the filter-service over a Unix domain socket (a {@code pipe}
 * address, no TLS) configured by {@code unixSockets:}: the HTTP ext_proc exchange works over it, and its streams carry
 * the socket's identity, so a rule whose readers list it decrypts for this sidecar (over plaintext TCP the same
 * sidecar has no identity and gets the envelope, HttpSidecarTest).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class HttpSidecarUnixSocketTest {

    private static final String BILLING = "spiffe://meshcrypt.local/sidecar/billing";
    private static final String CONFIG = """
            listen: 127.0.0.1:0
            keyset: keyset.json
            unixSockets:
              - path: run/filter.sock
                identity: %s
            http:
              rules:
                - name: billing-only
                  match: {path: /card}
                  binding: orders
                  request: {fields: [{encrypt: /card/number}]}
                  response: {fields: [{decrypt: /card/number}]}
                  readers: ["%s"]
            """.formatted(BILLING, BILLING);

    private final HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();
    private HttpSidecarFixture sidecar;

    @BeforeAll
    void start(@TempDir Path dir) throws Exception {
        sidecar = HttpSidecarFixture.start(dir, CONFIG);
    }

    @AfterAll
    void stop() {
        if (sidecar != null) {
            sidecar.close();
        }
    }

    @Test
    void givenTheSocketsIdentityAmongTheReaders_whenAResponseStreamsThroughTheSocket_thenTheAppSawAnEnvelopeAndTheClientGetsPlaintext()
            throws Exception {
        String sent = "{\"card\":{\"number\":\"4111111111111111\"}}";

        HttpResponse<String> response = client.send(HttpRequest.newBuilder(
                        URI.create("http://127.0.0.1:" + sidecar.port() + "/card"))
                .timeout(Duration.ofSeconds(30))
                .header("content-type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(sent)).build(), HttpResponse.BodyHandlers.ofString());

        String field = new ObjectMapper().readTree(sidecar.app.next().body()).at("/card/number").asText();
        byte[] envelope = Base64.getDecoder().decode(field);
        assertTrue(ValueEnvelope.isEnvelope(ByteBuffer.wrap(envelope)), "the request was encrypted over the socket");
        assertEquals(200, response.statusCode());
        assertEquals(sent, response.body(), "the socket's identity is a reader: the response was decrypted");
    }
}
