package io.meshcrypt.filter.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpServer;
import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.config.FilterConfig;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.crypto.ValueEnvelope;
import io.meshcrypt.filter.kafka.BrokerAddresses;
import io.meshcrypt.filter.kafka.KafkaProxy;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.transport.ConnectionLog;
import io.meshcrypt.filter.transport.ExtProcServer;
import io.meshcrypt.filter.transport.StreamIdentity;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
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
                - name: restricted
                  match: {methods: [POST], path: /restricted, contentType: application/json}
                  binding: orders
                  request:
                    fields: [{encrypt: /card/number}]
                  response:
                    fields: [{decrypt: /card/number}]
                  readers: ["%s"]
            """.formatted(BILLING, BILLING);

    private final BlockingQueue<byte[]> received = new LinkedBlockingQueue<>();
    private final HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();
    private ValueCipherV1 cipher;
    private ExtProcServer filter;
    private HttpServer app;
    private EnvoySidecar envoy;

    @BeforeAll
    void start(@TempDir Path dir) throws Exception {
        Keysets.create(dir.resolve("keyset.json"));
        Path configFile = Files.writeString(dir.resolve("filter.yaml"), CONFIG);
        FilterConfig config = FilterConfig.load(configFile);
        cipher = ValueCipherV1.fromKeysetFile(config.keyset());
        KafkaProxy kafka = new KafkaProxy(config.policy(), cipher, null, new BrokerAddresses(Map.of()),
                TestLimits.kafka(config.maxFrameBytes()));
        HttpProcessor http = new HttpProcessor(config.http(), cipher);
        filter = ExtProcServer.start(config.listen(), kafka, TestLimits.extProc(),
                List.of(workers -> new HttpExtProcService(http, workers)), null, StreamIdentity.NONE, ConnectionLog.TEXT,
                config.unixSockets());

        app = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        app.createContext("/", exchange -> {
            byte[] body = exchange.getRequestBody().readAllBytes();
            received.add(body);
            exchange.getResponseHeaders().set("content-type", "application/json");
            exchange.sendResponseHeaders(200, body.length == 0 ? -1 : body.length);
            exchange.getResponseBody().write(body);
            exchange.close();
        });
        app.start();
        envoy = EnvoySidecar.startOnUnixSocket(dir, app.getAddress().getPort(), config.unixSockets().get(0).path());
    }

    @AfterAll
    void stop() {
        if (envoy != null) {
            envoy.close();
        }
        if (app != null) {
            app.stop(0);
        }
        if (filter != null) {
            filter.close();
        }
    }

    @Test
    void givenTheSocketsIdentityAmongTheReaders_whenAResponseStreamsThroughTheSocket_thenTheAppSawAnEnvelopeAndTheClientGetsPlaintext()
            throws Exception {
        String sent = "{\"card\":{\"number\":\"4111111111111111\"}}";

        HttpResponse<String> response = client.send(HttpRequest.newBuilder(
                        URI.create("http://127.0.0.1:" + envoy.port() + "/restricted"))
                .timeout(Duration.ofSeconds(30))
                .header("content-type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(sent)).build(), HttpResponse.BodyHandlers.ofString());

        byte[] atApp = received.poll(30, TimeUnit.SECONDS);
        assertNotNull(atApp, "the app received nothing");
        String field = new ObjectMapper().readTree(atApp).at("/card/number").asText();
        byte[] envelope = Base64.getDecoder().decode(field);
        assertTrue(ValueEnvelope.isEnvelope(ByteBuffer.wrap(envelope)), "the request was encrypted over the socket");
        assertEquals(200, response.statusCode());
        assertEquals(sent, response.body(), "the socket's identity is a reader: the response was decrypted");
    }
}
