package io.meshcrypt.demo;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.launcher.PortPlan;
import io.meshcrypt.testsupport.Prerequisite;
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
 * address; the init script's nat OUTPUT rule sends the connection to the app's Envoy sidecar, which recovers
 * the original destination. Needs root and {@code ip}; the launcher installs iptables when missing.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class TransparentModeTest {

    private static final Duration FLOW_TIMEOUT = Duration.ofSeconds(90);
    /** Port base 23000 unless MESHCRYPT_E2E_PORT_BASE moves it (6000 below that base). */
    private static final PortPlan PORTS = LocalMesh.portsBelow(6000);
    private static final String BROKER_HOST = PORTS.brokerRealHost();
    private static final String BROKER_REAL_ADDRESS = BROKER_HOST + ":" + PORTS.brokerTransparent();
    private final DemoRun demo = new DemoRun("demo-transparent", PORTS);
    private Map<String, String> endpoints;
    private boolean launched;

    @BeforeAll
    void startTransparentDemo() throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")), "transparent mode needs root");
        Prerequisite.require(DemoRun.onPath("ip"), "transparent mode needs iproute2 (ip)");
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
    void givenTransparentDemo_whenAppsDialTheBrokersRealAddress_thenTheirSidecarsInterceptEveryConnection() throws Exception {
        assertEquals("transparent", endpoints.get("MESH_MODE"));
        // the apps were told the broker itself, not an Envoy listener
        assertEquals(BROKER_REAL_ADDRESS, endpoints.get("KAFKA_BOOTSTRAP"));
        demo.awaitLines("go-producer", "sent ", l -> l.size() >= 3, FLOW_TIMEOUT);
        demo.awaitLines("node-producer", "sent ", l -> l.size() >= 3, FLOW_TIMEOUT);
        demo.awaitLines("spring-consumer", "received ", l -> !l.isEmpty(), FLOW_TIMEOUT);

        for (String app : List.of("go", "node", "java")) {
            String ns = PORTS.netnsPrefix() + "-" + app;
            // the init script's rules: everything but the sidecar's uid and loopback goes to 15001
            String nat = DemoRun.run("ip", "netns", "exec", ns, "iptables", "-w", "-t", "nat", "-S");
            String stats = DemoRun.run("ip", "netns", "exec", ns, "curl", "-fsS",
                    "http://127.0.0.1:" + PORTS.namespaceSidecarAdmin() + "/stats?filter=kafka_transparent");
            assertAll(ns,
                    () -> assertTrue(nat.contains("-A MESHCRYPT_OUTPUT -m owner --uid-owner 1337 -j RETURN"), nat),
                    () -> assertTrue(nat.contains("-A MESHCRYPT_REDIRECT -p tcp -j REDIRECT --to-ports 15001"), nat),
                    // every connection the app opened became an ext_proc stream in its own sidecar
                    () -> assertTrue(counter(stats, "network_ext_proc.kafka_transparent_demo_broker_1.streams_started") >= 1, stats),
                    () -> assertEquals(0, counter(stats, "network_ext_proc.kafka_transparent_demo_broker_1.streams_grpc_error"), stats),
                    () -> assertTrue(counter(stats, "tcp.kafka_transparent_demo_broker_1.downstream_cx_total") >= 1, stats));
        }
    }

    @Test
    @Order(1)
    void givenTransparentDemo_whenStarted_thenEverySidecarRunsTheListenersTheXdsServerServesIt() throws Exception {
        // the sidecars' bootstraps name only their node id and the xDS server (through the host's relay)
        DemoRun.assertConfiguredByXds(endpoints.get("XDS_STATUS"), List.of("go-producer", "node-producer", "spring-consumer", "http-echo"));
        for (String app : List.of("go", "node", "java")) {
            assertEquals(List.of("kafka_transparent"), DemoRun.dynamicListeners(PORTS.netnsPrefix() + "-" + app, "127.0.0.1:" + PORTS.namespaceSidecarAdmin()), app);
        }
    }

    @Test
    @Order(2)
    void givenTransparentDemo_whenAnAppDialsAnythingButTheBroker_thenItsSidecarRefusesInsteadOfPassingThrough() throws Exception {
        String[] stats = {"ip", "netns", "exec", PORTS.netnsPrefix() + "-go", "curl", "-fsS",
                "http://127.0.0.1:" + PORTS.namespaceSidecarAdmin() + "/stats?filter=no_filter_chain_match"};
        long before = counter(DemoRun.run(stats), "listener.127.0.0.1_15001.no_filter_chain_match");

        // the ext_proc relay listens there, but the app's connection is caught first and matches no chain
        String code = DemoRun.run("ip", "netns", "exec", PORTS.netnsPrefix() + "-go", "curl", "-s", "--max-time", "5",
                "-o", "/dev/null", "-w", "%{http_code}", "http://" + BROKER_HOST + ":" + PORTS.relayExtProc() + "/");

        long after = counter(DemoRun.run(stats), "listener.127.0.0.1_15001.no_filter_chain_match");
        assertAll(
                () -> assertEquals("000", code.strip(), "no HTTP answer: the connection was closed"),
                () -> assertEquals(before + 1, after, "the go sidecar refused exactly this connection"));
    }

    @Test
    @Order(3)
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
        // the relay and the broker's real address listened there: with the veths gone, nothing can
        String addresses = DemoRun.run("ip", "-o", "addr");
        assertAll(
                () -> assertFalse(namespaces.contains(PORTS.netnsPrefix() + "-"), namespaces),
                () -> assertFalse(addresses.contains(BROKER_HOST + "/"), addresses),
                () -> assertFalse(nat.contains("MESHCRYPT"), nat),
                () -> assertEquals(List.of(), demo.processesOfThisRun()),
                () -> assertEquals(List.of(), demo.openPorts()));
    }

    private static long counter(String stats, String name) {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name) + ": (\\d+)$").matcher(stats);
        return m.find() ? Long.parseLong(m.group(1)) : -1;
    }
}
