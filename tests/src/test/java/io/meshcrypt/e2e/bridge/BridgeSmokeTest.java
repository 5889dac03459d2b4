package io.meshcrypt.e2e.bridge;

import static io.meshcrypt.e2e.support.Records.text;
import static io.meshcrypt.e2e.support.Records.utf8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Grpc;
import io.grpc.Server;
import io.grpc.TlsServerCredentials;
import io.meshcrypt.e2e.support.Envelope;
import io.meshcrypt.pki.LocalCa;
import io.meshcrypt.testsupport.Prerequisite;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
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

/**
 * The CI smoke set of the ext_proc bridge (envoy/dynamic-module/ext-proc-bridge, docs/dynamic-module.md): a mesh of
 * its own with {@code ./meshcrypt up --bridge} and mutual TLS to the filter-service, real broker, filter-service,
 * Envoy 1.40 and clients. The whole Kafka suite runs through the bridge with MESHCRYPT_BRIDGE=1.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(OrderAnnotation.class)
class BridgeSmokeTest {

    /** How long a closed connection may take to show: generous, the machine is shared. */
    private static final Duration CLOSE_TIMEOUT = Duration.ofSeconds(60);
    /** The local mesh's Kafka sidecar, whose certificate the bridge presents. */
    private static final String NODE = "kafka-apps";

    private final BridgeMesh mesh = new BridgeMesh();

    @BeforeAll
    void up() throws IOException {
        mesh.launcher("down");
        int rc = mesh.launcher("up", "--bridge");
        assertEquals(0, rc, "./meshcrypt up --bridge failed:\n" + mesh.launcherLogTail());
    }

    @AfterAll
    void down() {
        mesh.launcher("down");
    }

    @Test
    @Order(1)
    void givenBridgeMesh_whenUp_thenEveryKafkaListenerRunsTheModuleAndNoneNetworkExtProc() throws Exception {
        String listeners = mesh.envoyAdmin("/config_dump?resource=dynamic_listeners");

        assertTrue(listeners.contains("\"envoy.filters.network.dynamic_modules\""), listeners);
        assertFalse(listeners.contains("\"envoy.filters.network.ext_proc\""), "no built-in network ext_proc");
        assertTrue(mesh.log("envoy").contains("Dynamic module ABI version v0.2.0 matched"), "the module's ABI is Envoy's");
    }

    @Test
    @Order(2)
    void givenJavaProducer_whenRecordsGoThroughTheBridge_thenTheyComeBackInOrderAndOnlyEnvelopesAreAtRest() throws Exception {
        String topic = mesh.createTopic("bridge-roundtrip");
        List<String> values = new ArrayList<>();
        for (int i = 0; i < 200; i++) {
            values.add("bridge secret " + i + " " + "x".repeat(i * 37));
        }
        // one record larger than a socket read, so requests and responses span several chunks
        values.add("bridge large secret " + "y".repeat(900_000));

        try (KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Duration.ofSeconds(60))) {
            for (String v : values) {
                producer.send(new ProducerRecord<>(topic, utf8(v)));
            }
            producer.flush();
        }

        assertEquals(values, mesh.read(topic, true).stream().map(r -> text(r.value())).toList(), "read back through Envoy");
        List<ConsumerRecord<byte[], byte[]>> atRest = mesh.read(topic, false);
        assertEquals(values.size(), atRest.size());
        for (int i = 0; i < values.size(); i++) {
            Envelope.assertEnvelopeOf(utf8(values.get(i)), atRest.get(i).value(), "record " + i);
        }
    }

    @Test
    @Order(3)
    void givenKcat_whenItProducesAndConsumesThroughTheBridge_thenItReadsItsPlaintextBackAndTheBrokerHoldsEnvelopes() throws Exception {
        Path kcat = onPath("kcat");
        Prerequisite.require(kcat != null, "kcat is not installed");
        String topic = mesh.createTopic("bridge-kcat");
        List<String> lines = List.of("kcat secret 1", "kcat secret 2 " + "z".repeat(5000), "kcat secret 3");

        kcat(kcat, String.join("\n", lines) + "\n", "-P", "-b", mesh.envoyBootstrap(), "-t", topic, "-z", "lz4");
        String consumed = kcat(kcat, "", "-C", "-b", mesh.envoyBootstrap(), "-t", topic, "-e", "-q", "-c", "3");

        assertEquals(lines, consumed.lines().toList());
        for (ConsumerRecord<byte[], byte[]> r : mesh.read(topic, false)) {
            Envelope.assertEnvelope(r.value(), "offset " + r.offset());
        }
    }

    @Test
    @Order(4)
    void givenStalledFilterService_whenAChunkWaitsPastTheMessageTimeout_thenTheBridgeClosesTheConnectionAndNothingIsAtRest()
            throws Exception {
        String topic = mesh.createTopic("bridge-timeout");
        long filterService = mesh.pid("filter-service");
        signal("STOP", filterService);
        try {
            // a connection whose first chunk is never answered
            assertClosedByEnvoy("bridge timeout probe");
            assertTrue(mesh.log("envoy").contains("message timeout (5000 ms)"), "closed by the bridge's message timeout");
            try (KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Duration.ofSeconds(15))) {
                ExecutionException e = assertThrows(ExecutionException.class,
                        () -> producer.send(new ProducerRecord<>(topic, utf8("stalled secret"))).get(60, TimeUnit.SECONDS));
                assertTrue(e.getCause() instanceof org.apache.kafka.common.errors.TimeoutException, e.toString());
            }
        } finally {
            signal("CONT", filterService);
        }
        assertEquals(List.of(), mesh.read(topic, false), "nothing reached the broker");
    }

    @Test
    @Order(5)
    void givenFilterServiceStopped_whenClientsSend_thenConnectionsCloseNothingIsAtRestAndTrafficResumesAfterRestart() throws Exception {
        String topic = mesh.createTopic("bridge-fail-closed");
        assertEquals(0, mesh.launcher("stop", "filter-service"), mesh.launcherLogTail());
        try {
            assertClosedByEnvoy("bridge fail-closed probe");
            try (KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Duration.ofSeconds(10))) {
                assertThrows(ExecutionException.class,
                        () -> producer.send(new ProducerRecord<>(topic, utf8("unprocessed secret"))).get(60, TimeUnit.SECONDS));
            }
        } finally {
            assertEquals(0, mesh.startFilterService(), mesh.launcherLogTail());
        }
        assertEquals(List.of(), mesh.read(topic, false), "nothing reached the broker while the filter-service was down");

        try (KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Duration.ofSeconds(60))) {
            producer.send(new ProducerRecord<>(topic, utf8("after restart secret"))).get(90, TimeUnit.SECONDS);
        }
        List<ConsumerRecord<byte[], byte[]>> atRest = mesh.read(topic, false);
        assertEquals(1, atRest.size());
        Envelope.assertEnvelopeOf(utf8("after restart secret"), atRest.getFirst().value(), "after restart");
    }

    @Test
    @Order(6)
    void givenTheBridgeOverTls_whenAConnectionEnds_thenTheFilterServiceSawTheSidecarsSpiffeIdentity() throws Exception {
        String topic = mesh.createTopic("bridge-identity");
        // only this test's lines: the state dir (and its log) is shared with the plaintext bridge tests of the same run
        int logBefore = mesh.log("filter-service").length();

        try (KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Duration.ofSeconds(60))) {
            producer.send(new ProducerRecord<>(topic, utf8("identity secret"))).get(90, TimeUnit.SECONDS);
        }

        // the filter-service logs a line when each connection's stream ends, with the identity from the client certificate
        String line = "node=" + NODE + " identity=" + LocalCa.spiffeId("sidecar/" + NODE);
        long deadline = System.nanoTime() + CLOSE_TIMEOUT.toNanos();
        while (!mesh.log("filter-service").substring(logBefore).contains(line) && System.nanoTime() < deadline) {
            Thread.sleep(200);
        }
        String since = mesh.log("filter-service").substring(logBefore);
        assertTrue(since.contains(line), "no connection-end line with " + line);
        assertFalse(since.contains("node=" + NODE + " identity=- "), "a stream without identity");
    }

    @Test
    @Order(7)
    void givenAFilterServiceCertificateFromTheMeshCaWithAnotherSpiffeId_whenClientsSend_thenTheBridgeRefusesTheHandshakeAndFailsClosed()
            throws Exception {
        // Given the real filter-service restarted with a mesh certificate naming someone else (valid as long as the
        // launcher's own and for the same hosts, so `start` keeps it rather than reissuing)
        Path meshCaCopy = Files.createDirectories(mesh.root.resolve("tests/target/bridge-tls/mesh-ca"));
        for (String file : List.of(LocalCa.CA_CERTIFICATE, "ca-key.pem")) {
            Files.copy(mesh.pki().resolve(file), meshCaCopy.resolve(file), StandardCopyOption.REPLACE_EXISTING);
        }
        LocalCa.Issued otherId = LocalCa.openOrCreate(meshCaCopy).issue("filter-service", LocalCa.spiffeId("sidecar/" + NODE),
                List.of("localhost", "127.0.0.1"), Duration.ofHours(24));
        Path fs = mesh.pki().resolve("filter-service");
        Path saved = Files.createDirectories(mesh.root.resolve("tests/target/bridge-tls/saved"));
        copy(fs, saved);
        long refusals = bridgeCloses("NotValidForName");
        String topic = mesh.createTopic("bridge-other-id");
        assertEquals(0, mesh.launcher("stop", "filter-service"), mesh.launcherLogTail());
        try {
            copy(otherId.certificate(), otherId.privateKey(), fs);
            assertEquals(0, mesh.startFilterService(), mesh.launcherLogTail());

            // When a client sends, Then the connection closes and nothing is at rest
            assertNothingPassesAndTheHandshakeWasRefusedFor("NotValidForName", refusals, topic);
        } finally {
            assertEquals(0, mesh.launcher("stop", "filter-service"), mesh.launcherLogTail());
            copy(saved.resolve("cert.pem"), saved.resolve("key.pem"), fs);
            assertEquals(0, mesh.startFilterService(), mesh.launcherLogTail());
        }
        assertTrafficPasses("after another id");
    }

    @Test
    @Order(8)
    void givenAServerWithTheFilterServicesSpiffeIdFromAnotherCa_whenClientsSend_thenTheBridgeRefusesTheHandshakeAndFailsClosed()
            throws Exception {
        // Given a gRPC server in the filter-service's place (the filter-service itself cannot run on a foreign
        // certificate: the xDS server refuses it), its certificate naming the filter-service but from another CA
        LocalCa.Issued otherCa = LocalCa.openOrCreate(Files.createDirectories(mesh.root.resolve("tests/target/bridge-tls/other-ca")))
                .issue("filter-service", LocalCa.spiffeId("filter-service"), List.of("localhost", "127.0.0.1"), Duration.ofHours(24));
        // a CA of the same name as the mesh's reads as a bad signature, another name as an unknown issuer
        String foreignChain = "(UnknownIssuer|BadSignature)";
        long refusals = bridgeCloses(foreignChain);
        String topic = mesh.createTopic("bridge-other-ca");
        assertEquals(0, mesh.launcher("stop", "filter-service"), mesh.launcherLogTail());
        try {
            Server impostor = Grpc.newServerBuilderForPort(mesh.ports.filterGrpc(),
                    TlsServerCredentials.create(otherCa.certificate().toFile(), otherCa.privateKey().toFile())).build().start();
            try {
                // When a client sends, Then the connection closes and nothing is at rest
                assertNothingPassesAndTheHandshakeWasRefusedFor(foreignChain, refusals, topic);
            } finally {
                impostor.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
            }
        } finally {
            assertEquals(0, mesh.startFilterService(), mesh.launcherLogTail());
        }
        assertTrafficPasses("after another CA");
    }

    @Test
    @Order(9)
    void givenTheRunAbove_whenEnvoysStatsAreRead_thenTheBridgeCountedItsStreamsAndEachFailClosedReasonAndHoldsNoBytes()
            throws Exception {
        // the connections above: round trips, a stalled filter-service (timeout), a stopped one and two impostors
        // (unreachable: the stream did not open)
        Map<String, Long> stats = bridgeStats();
        assertTrue(stats.getOrDefault("streams_opened", 0L) > 0, stats.toString());
        assertTrue(stats.getOrDefault("closed_timeout", 0L) >= 1, stats.toString());
        assertTrue(stats.getOrDefault("closed_unreachable", 0L) >= 3, stats.toString());
        for (String counter : List.of("closed_stream_error", "closed_in_flight_cap", "closed_reset")) {
            assertTrue(stats.containsKey(counter), counter + " is defined: " + stats);
        }
        // every connection above is closed: nothing is left with the filter-service
        long deadline = System.nanoTime() + CLOSE_TIMEOUT.toNanos();
        while (bridgeStats().get("bytes_in_flight") != 0 && System.nanoTime() < deadline) {
            Thread.sleep(200);
        }
        assertEquals(0L, bridgeStats().get("bytes_in_flight"), "bytes in flight once every connection closed");
    }

    /** The module's stats from Envoy's admin, by name without Envoy's prefix ({@code streams_opened}, ...). */
    private Map<String, Long> bridgeStats() throws IOException, InterruptedException {
        Map<String, Long> stats = new TreeMap<>();
        for (String line : mesh.envoyAdmin("/stats?filter=meshcrypt_bridge").lines().toList()) {
            int name = line.indexOf("meshcrypt_bridge.");
            int colon = line.lastIndexOf(": ");
            if (name >= 0 && colon > name) {
                stats.put(line.substring(name + "meshcrypt_bridge.".length(), colon), Long.parseLong(line.substring(colon + 2).strip()));
            }
        }
        return stats;
    }

    private void assertNothingPassesAndTheHandshakeWasRefusedFor(String why, long refusalsBefore, String topic) throws Exception {
        assertClosedByEnvoy("bridge impostor probe " + why);
        assertTrue(bridgeCloses(why) > refusalsBefore,
                "the bridge closed the connection because it refused the certificate (" + why + ")");
        try (KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Duration.ofSeconds(10))) {
            assertThrows(ExecutionException.class,
                    () -> producer.send(new ProducerRecord<>(topic, utf8("impostor secret"))).get(60, TimeUnit.SECONDS));
        }
        assertEquals(List.of(), mesh.read(topic, false), "nothing reached the broker");
    }

    /** The control: with the mesh's own filter-service back, the same bridge gets through. */
    private void assertTrafficPasses(String what) throws Exception {
        String topic = mesh.createTopic("bridge-control");
        try (KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Duration.ofSeconds(60))) {
            producer.send(new ProducerRecord<>(topic, utf8(what + " secret"))).get(90, TimeUnit.SECONDS);
        }
        Envelope.assertEnvelopeOf(utf8(what + " secret"), mesh.read(topic, false).getFirst().value(), what);
    }

    /** The bridge's closes for a refused certificate, {@code why} a regex of rustls's reason, from Envoy's log. */
    private long bridgeCloses(String why) throws IOException {
        Pattern line = Pattern.compile("^meshcrypt-ext-proc-bridge: connection \\d+ closed: stream not opened: .*"
                + "invalid peer certificate: " + why + "$");
        return mesh.log("envoy").lines().filter(l -> line.matcher(l).matches()).count();
    }

    private static void copy(Path certificate, Path privateKey, Path to) throws IOException {
        Files.copy(certificate, to.resolve("cert.pem"), StandardCopyOption.REPLACE_EXISTING);
        Files.copy(privateKey, to.resolve("key.pem"), StandardCopyOption.REPLACE_EXISTING);
    }

    private static void copy(Path from, Path to) throws IOException {
        copy(from.resolve("cert.pem"), from.resolve("key.pem"), to);
    }

    /** Connects to Envoy, sends bytes, and expects Envoy to close the connection without answering. */
    private void assertClosedByEnvoy(String probe) throws IOException {
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress("127.0.0.1", mesh.ports.envoyBootstrap()), 10_000);
            socket.setSoTimeout((int) CLOSE_TIMEOUT.toMillis());
            OutputStream out = socket.getOutputStream();
            out.write(probe.getBytes(StandardCharsets.UTF_8));
            out.flush();
            InputStream in = socket.getInputStream();
            try {
                assertEquals(-1, in.read(), "Envoy answered instead of closing");
            } catch (SocketTimeoutException e) {
                throw new AssertionError("Envoy kept the connection open for " + CLOSE_TIMEOUT, e);
            } catch (SocketException e) {
                // reset: closed too
            }
        }
    }

    private static void signal(String signal, long pid) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("kill", "-" + signal, Long.toString(pid)).inheritIO().start();
        assertEquals(0, p.waitFor(), "kill -" + signal + " " + pid);
    }

    private static Path onPath(String tool) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            Path p = Path.of(dir, tool);
            if (!dir.isEmpty() && Files.isExecutable(p)) {
                return p;
            }
        }
        return null;
    }

    /** kcat reading {@code stdin}; what it printed. Files rather than pipes: nothing to dead-lock on. */
    private static String kcat(Path kcat, String stdin, String... args) throws IOException, InterruptedException {
        Path dir = Files.createTempDirectory("bridge-kcat");
        Path in = Files.writeString(dir.resolve("in"), stdin);
        List<String> command = new ArrayList<>(List.of(kcat.toString()));
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command).redirectInput(in.toFile()).redirectOutput(dir.resolve("out").toFile())
                .redirectError(dir.resolve("err").toFile()).start();
        boolean exited = p.waitFor(60, TimeUnit.SECONDS);
        if (!exited) {
            p.destroyForcibly();
        }
        String err = Files.readString(dir.resolve("err"));
        assertTrue(exited && p.exitValue() == 0, () -> "kcat " + String.join(" ", args) + " failed or hung: " + err);
        return Files.readString(dir.resolve("out"));
    }
}
