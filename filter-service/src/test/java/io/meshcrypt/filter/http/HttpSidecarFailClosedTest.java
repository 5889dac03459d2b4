package io.meshcrypt.filter.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.kafka.BrokerAddresses;
import io.meshcrypt.filter.kafka.KafkaProxy;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.transport.ExtProcServer;
import io.meshcrypt.meshconfig.http.HeaderChanges;
import io.meshcrypt.meshconfig.http.HttpRule;
import io.meshcrypt.meshconfig.http.HttpRules;
import io.meshcrypt.meshconfig.http.RouteMatch;
import io.meshcrypt.meshconfig.http.RuleSide;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.transform.FieldOp;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** With the filter-service gone, Envoy answers 5xx and the app never receives the unprocessed body. */
class HttpSidecarFailClosedTest {

    @TempDir
    Path dir;

    @Test
    void givenFilterServiceDown_whenJsonPosted_then5xxAndAppSeesNothing() throws Exception {
        Keysets.create(dir.resolve("keyset.json"));
        ValueCipherV1 cipher = ValueCipherV1.fromKeysetFile(dir.resolve("keyset.json"));
        HttpRule rule = new HttpRule("orders", RouteMatch.ANY, "orders",
                new RuleSide(List.of(new FieldOp.Encrypt(JsonPointer.parse("/card"), false)), List.of(), HeaderChanges.NONE,
                        RuleSide.OnInvalid.REJECT), RuleSide.NONE);
        HttpProcessor http = new HttpProcessor(new HttpRules(List.of(rule)), cipher);
        ExtProcServer filter = ExtProcServer.start(new InetSocketAddress("127.0.0.1", 0),
                new KafkaProxy(EncryptionPolicy.encryptAll(), cipher, null, new BrokerAddresses(Map.of()), TestLimits.kafka(1 << 20)),
                TestLimits.extProc().withShutdownGrace(Duration.ZERO),
                List.of(workers -> new HttpExtProcService(http, workers)));
        BlockingQueue<String> received = new LinkedBlockingQueue<>();
        HttpServer app = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        app.createContext("/", exchange -> {
            received.add(new String(exchange.getRequestBody().readAllBytes(), StandardCharsets.UTF_8));
            exchange.sendResponseHeaders(204, -1);
            exchange.close();
        });
        app.start();
        HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        try (EnvoySidecar envoy = EnvoySidecar.start(dir, app.getAddress().getPort(), filter.port())) {
            HttpRequest request = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + envoy.port() + "/orders"))
                    .timeout(Duration.ofSeconds(30))
                    .header("content-type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString("{\"card\":\"4111111111111111\"}"))
                    .build();
            assertEquals(204, client.send(request, HttpResponse.BodyHandlers.discarding()).statusCode());
            String encrypted = received.poll(10, TimeUnit.SECONDS);
            assertNotNull(encrypted);
            assertTrue(!encrypted.contains("4111111111111111"), encrypted);

            filter.close();
            HttpResponse<String> response = client.send(request, HttpResponse.BodyHandlers.ofString());

            assertTrue(response.statusCode() >= 500 && response.statusCode() <= 599, "status " + response.statusCode());
            assertNull(received.poll(500, TimeUnit.MILLISECONDS), "the app must not receive the unprocessed body");
        } finally {
            app.stop(0);
            filter.close();
        }
    }
}
