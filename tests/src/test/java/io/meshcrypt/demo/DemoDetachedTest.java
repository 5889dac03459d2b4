package io.meshcrypt.demo;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.e2e.support.LocalMesh;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/** {@code ./meshcrypt demo --detach}: every sample app's traffic flows, encrypted at rest, and {@code down} cleans up. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class DemoDetachedTest {

    private static final Duration FLOW_TIMEOUT = Duration.ofSeconds(90);
    /** Port base 22000 unless MESHCRYPT_E2E_PORT_BASE moves it (7000 below that base). */
    private final DemoRun demo = new DemoRun("demo-detached", LocalMesh.portsBelow(7000));
    private Map<String, String> endpoints;

    @BeforeAll
    void startDemo() throws Exception {
        demo.launcher("down");
        int rc = demo.launcher("demo", "--detach");
        assertEquals(0, rc, () -> "./meshcrypt demo --detach failed:\n" + demo.launcherLog());
        endpoints = demo.endpoints();
    }

    @AfterAll
    void stopDemo() {
        // also after a failed start: whatever did start must not outlive the test
        demo.launcher("down");
    }

    @Test
    @Order(1)
    void givenDetachedDemo_whenStarted_thenEveryEndpointIsWritten() {
        assertAll(
                () -> assertEquals("127.0.0.1:" + demo.ports.envoyBootstrap(), endpoints.get("KAFKA_BOOTSTRAP")),
                () -> assertEquals("127.0.0.1:" + demo.ports.broker(), endpoints.get("BROKER_DIRECT")),
                () -> assertEquals("http://127.0.0.1:" + demo.ports.httpSidecar(), endpoints.get("HTTP_URL")),
                () -> assertEquals("http://127.0.0.1:" + demo.ports.xdsStatus() + "/status", endpoints.get("XDS_STATUS")),
                () -> assertEquals("explicit", endpoints.get("MESH_MODE")));
    }

    @Test
    @Order(1)
    void givenDetachedDemo_whenStarted_thenEverySidecarRunsTheListenersTheXdsServerServesIt() throws Exception {
        DemoRun.assertConfiguredByXds(endpoints.get("XDS_STATUS"),
                List.of("kafka-apps", "go-producer", "node-producer", "spring-consumer", "http-echo"));
        assertEquals(List.of("kafka_demo_bootstrap", "kafka_demo_broker_1"),
                DemoRun.dynamicListeners(null, endpoints.get("ENVOY_ADMIN")).stream().sorted().toList());
        assertEquals(List.of("http_orders"), DemoRun.dynamicListeners(null, endpoints.get("HTTP_ENVOY_ADMIN")));
    }

    @Test
    @Order(2)
    void givenDetachedDemo_whenAppsRun_thenEachKafkaAppTalksThroughItsOwnSidecarWhichAdvertisesItsOwnBrokerListener() throws Exception {
        demo.awaitLines("spring-consumer", "received ", l -> !l.isEmpty(), FLOW_TIMEOUT);
        for (String app : List.of("GO_PRODUCER", "NODE_PRODUCER", "SPRING_CONSUMER")) {
            String bootstrap = endpoints.get(app + "_BOOTSTRAP");
            int port = Integer.parseInt(bootstrap.substring(bootstrap.indexOf(':') + 1));
            String stats = DemoRun.get(null, "http://" + endpoints.get(app + "_ENVOY_ADMIN") + "/stats?filter=network_ext_proc");
            String metadata = DemoRun.run("kcat", "-b", bootstrap, "-L", "-m", "5");
            assertAll(app,
                    // the launcher's readiness probe only asks the bootstrap listener for Metadata: connections to the
                    // broker listener are the app's own produce/fetch traffic
                    () -> assertTrue(counter(stats, "network_ext_proc.kafka_demo_broker_1.streams_started") >= 1, stats),
                    () -> assertEquals(0, counter(stats, "network_ext_proc.kafka_demo_broker_1.streams_grpc_error"), stats),
                    // one filter-service, yet each sidecar's clients learn that sidecar's broker listener
                    () -> assertTrue(metadata.contains("broker 1 at 127.0.0.1:" + (port + 1)), metadata));
        }
    }

    private static long counter(String stats, String name) {
        return stats.lines().filter(l -> l.startsWith(name + ": ")).mapToLong(l -> Long.parseLong(l.substring(name.length() + 2).strip()))
                .findFirst().orElse(-1);
    }

    @Test
    @Order(5)
    void givenDetachedDemo_whenTheMeshFilesHttpRuleIsEdited_thenTheNextRequestFollowsItWithoutRestarts() throws Exception {
        Path mesh = demo.home.resolve("mesh.yaml");
        String original = Files.readString(mesh);
        String edited = original.replace("          - redact: /card/cvv", "          - {redact: /card/cvv, with: \"[cvv removed]\"}");
        assertFalse(edited.equals(original), () -> "the demo's mesh file has the CVV redaction rule: " + original);
        try {
            Path tmp = demo.home.resolve("mesh.yaml.edit");
            Files.writeString(tmp, edited);
            Files.move(tmp, mesh, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);

            demo.awaitLines("http-echo", "received ", l -> l.stream().anyMatch(x -> x.contains("[cvv removed]")), FLOW_TIMEOUT);
        } finally {
            Path tmp = demo.home.resolve("mesh.yaml.edit");
            Files.writeString(tmp, original);
            Files.move(tmp, mesh, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        }
    }

    @Test
    @Order(2)
    void givenDetachedDemo_whenProducersRun_thenTheSpringConsumerReceivesEveryValueTheySentInPlaintext() throws Exception {
        List<String> go = demo.awaitLines("go-producer", "sent ", l -> l.size() >= 3, FLOW_TIMEOUT);
        List<String> node = demo.awaitLines("node-producer", "sent ", l -> l.size() >= 3, FLOW_TIMEOUT);
        List<String> expected = List.of(go.get(0), go.get(1), go.get(2), node.get(0), node.get(1), node.get(2));

        // "sent <key> <value>" and "received <key> <value> (partition p, offset o)"
        demo.awaitLines("spring-consumer", "received ",
                got -> expected.stream().allMatch(sent -> got.stream().anyMatch(g -> g.startsWith(sent + " (partition"))),
                FLOW_TIMEOUT);
    }

    @Test
    @Order(3)
    void givenDetachedDemo_whenTheBrokerIsReadDirectly_thenEveryValueIsAnEnvelopeWithoutPlaintext() throws Exception {
        List<String> sent = demo.awaitLines("go-producer", "sent ", l -> l.size() >= 3, FLOW_TIMEOUT);
        demo.awaitLines("node-producer", "sent ", l -> l.size() >= 3, FLOW_TIMEOUT);

        List<ConsumerRecord<byte[], byte[]>> records = demo.brokerRecords(endpoints.get("BROKER_DIRECT"), endpoints.get("DEMO_TOPIC"));

        assertTrue(records.size() >= 6, () -> "expected the producers' records at rest, got " + records.size());
        String firstValue = sent.get(0).substring(sent.get(0).indexOf(' ') + 1);
        for (ConsumerRecord<byte[], byte[]> r : records) {
            String raw = new String(r.value(), StandardCharsets.ISO_8859_1);
            assertAll("offset " + r.offset(),
                    () -> assertTrue(DemoRun.startsWithMagic(r.value()), "value is not a meshcrypt envelope"),
                    () -> assertFalse(raw.contains("4111-1111-1111"), "card number in plaintext at rest"),
                    () -> assertFalse(raw.contains("@example.com"), "email in plaintext at rest"),
                    () -> assertFalse(raw.contains(firstValue), "a sent value in plaintext at rest"));
        }
        // the demo's own view agrees: the broker tap saw envelopes only
        List<String> held = demo.awaitLines("broker-tap", "held ", l -> !l.isEmpty(), FLOW_TIMEOUT);
        assertTrue(held.stream().allMatch(l -> l.contains("[meshcrypt envelope v")), () -> "broker tap saw " + held);
    }

    @Test
    @Order(4)
    void givenDetachedDemo_whenAnOrderIsPostedThroughTheSidecar_thenTheServiceGetsItRewrittenAndTheClientGetsTheCardBack()
            throws Exception {
        String body = "{\"order\":424242,\"card\":{\"number\":\"5500-0000-0000-0004\",\"cvv\":\"987\"},\"note\":\"ssn 078-05-1120\"}";
        HttpResponse<String> response;
        try (HttpClient http = HttpClient.newHttpClient()) {
            response = http.send(HttpRequest.newBuilder(URI.create(endpoints.get("HTTP_URL") + "/orders"))
                    .header("content-type", "application/json")
                    .timeout(Duration.ofSeconds(30))
                    .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
        }

        String received = demo.awaitLines("http-echo", "received POST /orders ",
                        l -> l.stream().anyMatch(s -> s.contains("\"order\":424242")), FLOW_TIMEOUT)
                .stream().filter(s -> s.contains("\"order\":424242")).findFirst().orElseThrow();
        assertAll("what the HTTP service received",
                () -> assertFalse(received.contains("5500-0000-0000-0004"), received),
                () -> assertFalse(received.contains("987"), received),
                () -> assertFalse(received.contains("078-05-1120"), received),
                () -> assertTrue(received.contains("XXX-XX-XXXX"), received),
                () -> assertTrue(received.contains("[redacted]"), received));
        assertAll("what the client got back (the echo, card decrypted by the sidecar)",
                () -> assertEquals(200, response.statusCode()),
                () -> assertTrue(response.body().contains("\"number\":\"5500-0000-0000-0004\""), response.body()),
                () -> assertTrue(response.body().contains("XXX-XX-XXXX"), response.body()));
        // and the demo's own HTTP client saw the same rewrite
        assertFalse(demo.awaitLines("http-echo", "received ", l -> l.size() >= 2, FLOW_TIMEOUT).stream()
                .anyMatch(l -> l.contains("4111-1111-1111")), "the HTTP service received a card number in plaintext");
    }

    @Test
    @Order(99)
    void givenDetachedDemo_whenDown_thenNoProcessPortOrStateIsLeft() throws Exception {
        assertEquals(0, demo.launcher("down"), demo::launcherLog);

        assertAll(
                () -> assertEquals(List.of(), demo.processesOfThisRun()),
                () -> assertEquals(List.of(), demo.openPorts()),
                () -> assertFalse(java.nio.file.Files.exists(demo.home.resolve("endpoints.env"))));
    }
}
