package io.meshcrypt.demo;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * {@code ./meshcrypt demo --transparent}: each app in its own network namespace dials the broker's real
 * address; iptables sends the connection to Envoy, which recovers the original destination. Needs root and
 * {@code ip}; the launcher installs iptables when missing.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class TransparentModeTest {

    private static final Duration FLOW_TIMEOUT = Duration.ofSeconds(90);
    private static final String BROKER_REAL_ADDRESS = "169.254.36.1:36094";
    private final DemoRun demo = new DemoRun("demo-transparent", 36000);
    private Map<String, String> endpoints;
    private boolean launched;

    @BeforeAll
    void startTransparentDemo() throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")), "transparent mode needs root");
        assumeTrue(DemoRun.onPath("ip"), "transparent mode needs iproute2 (ip)");
        demo.launcher("down");
        launched = true;
        int rc = demo.launcher("demo", "--transparent", "--detach");
        assertEquals(0, rc, () -> "./meshcrypt demo --transparent --detach failed:\n" + demo.launcherLog());
        endpoints = demo.endpoints();
    }

    @AfterAll
    void stopDemo() {
        if (launched) {
            demo.launcher("down");
        }
    }

    @Test
    @Order(1)
    void givenTransparentDemo_whenAppsDialTheBrokersRealAddress_thenEnvoyInterceptsEveryConnection() throws Exception {
        assertEquals("transparent", endpoints.get("MESH_MODE"));
        // the apps were told the broker itself, not an Envoy listener
        assertEquals(BROKER_REAL_ADDRESS, endpoints.get("KAFKA_BOOTSTRAP"));
        demo.awaitLines("go-producer", "sent ", l -> l.size() >= 3, FLOW_TIMEOUT);
        demo.awaitLines("node-producer", "sent ", l -> l.size() >= 3, FLOW_TIMEOUT);

        String stats;
        try (HttpClient http = HttpClient.newHttpClient()) {
            stats = http.send(HttpRequest.newBuilder(URI.create("http://" + endpoints.get("ENVOY_ADMIN")
                            + "/stats?filter=kafka_transparent")).build(), HttpResponse.BodyHandlers.ofString()).body();
        }
        assertTrue(counter(stats, "network_ext_proc.kafka_transparent.streams_started") >= 3,
                () -> "three apps' connections should each have an ext_proc stream:\n" + stats);
        assertTrue(counter(stats, "tcp.kafka_transparent.downstream_cx_total") >= 3, stats);
        // in the app's namespace the broker's address is reached through the host; nothing else listens there
        String route = DemoRun.run("ip", "netns", "exec", "mc36000-go", "ip", "route", "get", "169.254.36.1");
        assertTrue(route.contains("via 169.254.36.5"), route);
    }

    @Test
    @Order(2)
    void givenTransparentDemo_whenTheBrokerIsReadDirectly_thenTheInterceptedRecordsAreCiphertextAndTheConsumerGotPlaintext()
            throws Exception {
        List<String> sent = demo.awaitLines("go-producer", "sent ", l -> l.size() >= 3, FLOW_TIMEOUT);
        demo.awaitLines("spring-consumer", "received ",
                got -> got.stream().anyMatch(g -> g.startsWith(sent.get(2) + " (partition")), FLOW_TIMEOUT);

        List<ConsumerRecord<byte[], byte[]>> records = demo.brokerRecords(endpoints.get("BROKER_DIRECT"), endpoints.get("DEMO_TOPIC"));

        assertTrue(records.stream().anyMatch(r -> new String(r.key(), StandardCharsets.UTF_8).equals("go-3")),
                "the Go producer's records are at rest");
        for (ConsumerRecord<byte[], byte[]> r : records) {
            String raw = new String(r.value(), StandardCharsets.ISO_8859_1);
            assertAll("offset " + r.offset(),
                    () -> assertTrue(DemoRun.startsWithMagic(r.value()), "value is not a meshcrypt envelope"),
                    () -> assertFalse(raw.contains("4111-1111-1111"), "card number in plaintext at rest"),
                    () -> assertFalse(raw.contains("@example.com"), "email in plaintext at rest"));
        }
    }

    @Test
    @Order(99)
    void givenTransparentDemo_whenDown_thenNoNamespaceRuleProcessOrPortIsLeft() throws Exception {
        assertEquals(0, demo.launcher("down"), demo::launcherLog);

        String namespaces = DemoRun.run("ip", "netns", "list");
        String nat = DemoRun.run("iptables", "-w", "-t", "nat", "-S");
        assertAll(
                () -> assertFalse(namespaces.contains("mc36000-"), namespaces),
                () -> assertFalse(nat.contains("MESHCRYPT-36000"), nat),
                () -> assertEquals(List.of(), demo.processesOfThisRun()),
                () -> assertEquals(List.of(), demo.openPorts()));
    }

    private static long counter(String stats, String name) {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name) + ": (\\d+)$").matcher(stats);
        return m.find() ? Long.parseLong(m.group(1)) : -1;
    }
}
