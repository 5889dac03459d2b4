package io.meshcrypt.e2e;

import static io.meshcrypt.e2e.support.Records.text;
import static io.meshcrypt.e2e.support.Records.utf8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.meshcrypt.e2e.support.Envelope;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.e2e.support.StaticSidecar;
import io.meshcrypt.launcher.MeshFile;
import io.meshcrypt.launcher.PortPlan;
import io.meshcrypt.meshconfig.http.HttpRules;
import io.meshcrypt.meshconfig.mesh.Mesh;
import io.meshcrypt.meshconfig.mesh.Mesh.Sidecar;
import io.meshcrypt.meshconfig.mesh.Mesh.UnixSocket;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.Identities;
import io.meshcrypt.meshconfig.policy.TopicRule;
import io.meshcrypt.testsupport.EnvoyProcess;
import io.meshcrypt.testsupport.Prerequisite;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The sidecars' hop to the filter-service on Unix domain sockets ({@code MESHCRYPT_EXT_PROC=unix}), on a small mesh of
 * its own ({@code ./meshcrypt up}, state in tests/target/mesh-uds): the launcher's filter-service serves one socket per
 * sidecar identity under {@code $MESHCRYPT_HOME/run/}; the shared sidecar, configured by the xDS server, reaches it on
 * {@code run/kafka-apps.sock} (a pipe cluster, no TLS), and a second Envoy started here on {@code run/go-producer.sock}.
 * The policy lets only the shared sidecar's identity write and read plaintext of {@code uds-*}: each stream carries
 * the identity of the socket it came in on, whatever MESHCRYPT_TLS says.
 */
class UnixSocketHopTest {
    private static final PortPlan PORTS = LocalMesh.portsBelow(11_000);
    private static final String TOPIC_PREFIX = "uds-";
    private static final String SHARED_IDENTITY = LocalMesh.SHARED_SIDECAR_IDENTITY;
    /** A node the launcher gives a socket of its own (it runs a socket per sidecar identity it knows). */
    private static final String OTHER_NODE = "go-producer";
    private static final Duration LAUNCHER_TIMEOUT = Duration.ofMinutes(4);

    private static Path root;
    private static Path home;
    private static Path launcherLog;
    private static Admin admin;
    private static EnvoyProcess otherEnvoy;
    private static String otherBootstrap;

    @BeforeAll
    static void startTheMeshOnUnixSockets() throws Exception {
        Prerequisite.require(System.getProperty("os.name").toLowerCase().contains("linux"),
                "Unix domain sockets for the filter-service need Linux (Netty epoll)");
        root = LocalMesh.projectRoot();
        home = root.resolve("tests/target/mesh-uds");
        launcherLog = root.resolve("tests/target/mesh-uds-launcher.log");
        Files.createDirectories(home);
        launcher("down");
        // generated again by `up`, with MESHCRYPT_EXT_PROC=unix's unixSockets section
        Files.deleteIfExists(home.resolve("filter.yaml"));
        writeMeshFile();
        if (launcher("up") != 0) {
            throw new IllegalStateException("./meshcrypt up with MESHCRYPT_EXT_PROC=unix failed; see " + launcherLog + " and "
                    + home.resolve("logs"));
        }
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, brokerDirect());
        admin = Admin.create(p);
        startTheOtherSidecar();
    }

    @AfterAll
    static void stopTheMesh() {
        if (otherEnvoy != null) {
            otherEnvoy.close();
        }
        if (admin != null) {
            admin.close(Duration.ofSeconds(5));
        }
        if (home != null && !Boolean.getBoolean("meshcrypt.e2e.keep")) {
            launcher("down");
        }
    }

    @Test
    void givenTheSharedSidecarOnItsSocket_whenItProducesAndConsumes_thenItReadsPlaintextAndTheBrokerHoldsAnEnvelope() throws Exception {
        String topic = createTopic("round-trip");

        produce(sharedBootstrap(), topic, "card 4111 1111 1111 1111");

        assertEquals(List.of("card 4111 1111 1111 1111"), values(read(sharedBootstrap(), topic)));
        List<ConsumerRecord<byte[], byte[]>> atRest = read(brokerDirect(), topic);
        assertEquals(1, atRest.size());
        Envelope.assertEnvelopeOf(utf8("card 4111 1111 1111 1111"), atRest.getFirst().value(), topic + " on the broker");
    }

    @Test
    void givenASidecarOnAnotherSocket_whenItProducesToATopicOnlyTheSharedSidecarMayWrite_thenItIsRefusedAndNothingIsStored()
            throws Exception {
        String topic = createTopic("writers");

        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(LocalMesh.producerProps(otherBootstrap, "uds-other", Map.of()))) {
            ExecutionException refused = assertThrows(ExecutionException.class,
                    () -> producer.send(new ProducerRecord<>(topic, utf8("forged order"))).get(30, TimeUnit.SECONDS));
            assertInstanceOf(TopicAuthorizationException.class, refused.getCause());
        }

        assertEquals(List.of(), read(brokerDirect(), topic), "the refused record never reached the broker");
    }

    @Test
    void givenASidecarOnAnotherSocket_whenItReadsATopicOnlyTheSharedSidecarMayRead_thenItGetsTheStoredEnvelopeUnchanged()
            throws Exception {
        String topic = createTopic("readers");
        produce(sharedBootstrap(), topic, "salary 9000");

        List<ConsumerRecord<byte[], byte[]>> seen = read(otherBootstrap, topic);

        assertEquals(1, seen.size());
        assertArrayEquals(read(brokerDirect(), topic).getFirst().value(), seen.getFirst().value(),
                "the other sidecar's client gets exactly what the broker stores");
        Envelope.assertNoPlaintext(utf8("salary 9000"), seen.getFirst().value(), topic + " as the other sidecar sees it");
    }

    @Test
    void givenTheXdsConfiguredSidecar_whenItsConfigIsDumped_thenItsFilterServiceClusterIsAPipeToItsOwnerOnlySocketWithoutTls()
            throws Exception {
        Path socket = socket(MeshFile.SHARED_NODE);

        JsonNode cluster = dynamicCluster(PORTS.envoyAdmin(), "filter_service");

        JsonNode address = cluster.at("/load_assignment/endpoints/0/lb_endpoints/0/endpoint/address");
        assertEquals(socket.toString(), address.at("/pipe/path").asText(), cluster.toPrettyString());
        assertFalse(cluster.has("transport_socket"), "no TLS on the Unix socket hop: " + cluster.toPrettyString());
        assertTrue(Files.readAttributes(socket, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).isOther(), socket + " is a socket");
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(socket, LinkOption.NOFOLLOW_LINKS)));
    }

    // ---- the mesh

    /**
     * The launcher's {@code up} mesh with the shared sidecar on its socket and a policy for {@link #TOPIC_PREFIX} topics;
     * without the launcher's mark, so that {@code up} keeps it.
     */
    private static void writeMeshFile() throws Exception {
        Mesh up = MeshFile.up(PORTS);
        Sidecar shared = up.sidecars().get(MeshFile.SHARED_NODE).withFilterServices(List.of(new UnixSocket(socket(MeshFile.SHARED_NODE))));
        Identities sharedOnly = Identities.of(List.of(SHARED_IDENTITY));
        EncryptionPolicy policy = EncryptionPolicy.ofRules(List.of(
                new TopicRule(TOPIC_PREFIX + "*", List.of(), false, sharedOnly, sharedOnly, TopicRule.Others.CIPHERTEXT),
                TopicRule.wholeValue("*")), EncryptionPolicy.Unmatched.PASSTHROUGH);
        Mesh mesh = new Mesh(up.kafkaClusters(), Map.of(MeshFile.SHARED_NODE, shared), policy, HttpRules.NONE);
        Files.writeString(home.resolve("mesh.yaml"), "# written by the e2e Unix socket test (UnixSocketHopTest.java)\n"
                + MeshFile.yaml(mesh, LocalMesh.TLS ? Optional.of(home.resolve("pki")) : Optional.empty()));
    }

    /** A static Envoy in front of the mesh's broker, streaming to the filter-service on {@link #OTHER_NODE}'s socket. */
    private static void startTheOtherSidecar() throws Exception {
        int[] ports = StaticSidecar.freePorts(3);
        otherBootstrap = "127.0.0.1:" + ports[0];
        String config = StaticSidecar.kafkaSidecar("other", ports, "127.0.0.1", PORTS.broker(),
                y -> StaticSidecar.filterServiceClusterOnUnixSocket(y, socket(OTHER_NODE)));
        Path file = home.resolve("other-envoy.yaml");
        Files.writeString(file, config);
        otherEnvoy = EnvoyProcess.start(file, ports[2], home.resolve("logs/other-envoy.log"), "--concurrency", "1", "--log-level", "warn");
    }

    private static Path socket(String node) {
        return home.resolve("run").resolve(node + ".sock");
    }

    private static int launcher(String... args) {
        return LocalMesh.runLauncher(root, home, PORTS.base(), Map.of("MESHCRYPT_EXT_PROC", "unix", "MESHCRYPT_TIMEOUT", "180"),
                launcherLog, LAUNCHER_TIMEOUT, args);
    }

    /** Envoy's active dynamic cluster {@code name} from its admin's /config_dump. */
    private static JsonNode dynamicCluster(int adminPort, String name) throws Exception {
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
        String body = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + adminPort + "/config_dump?resource=dynamic_active_clusters"))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString()).body();
        for (JsonNode c : new ObjectMapper().readTree(body).path("configs")) {
            if (c.at("/cluster/name").asText().equals(name)) {
                return c.path("cluster");
            }
        }
        throw new AssertionError("no dynamic cluster " + name + " in Envoy's config dump:\n" + body);
    }

    // ---- clients

    private static String sharedBootstrap() {
        return "127.0.0.1:" + PORTS.envoyBootstrap();
    }

    private static String brokerDirect() {
        return "127.0.0.1:" + PORTS.broker();
    }

    private static String createTopic(String name) throws Exception {
        String topic = TOPIC_PREFIX + name + "-" + System.nanoTime();
        admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
        return topic;
    }

    private static void produce(String bootstrap, String topic, String value) throws Exception {
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(LocalMesh.producerProps(bootstrap, "uds", Map.of()))) {
            producer.send(new ProducerRecord<>(topic, utf8(value))).get(30, TimeUnit.SECONDS);
        }
    }

    private static List<ConsumerRecord<byte[], byte[]>> read(String bootstrap, String topic) {
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(LocalMesh.consumerProps(bootstrap, "uds", Map.of()))) {
            return LocalMesh.drain(consumer, topic);
        }
    }

    private static List<String> values(List<ConsumerRecord<byte[], byte[]>> records) {
        return records.stream().map(r -> text(r.value())).toList();
    }
}
