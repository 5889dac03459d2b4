package io.meshcrypt.e2e;

import static io.meshcrypt.e2e.support.Records.text;
import static io.meshcrypt.e2e.support.Records.utf8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.meshcrypt.e2e.support.Await;
import io.meshcrypt.e2e.support.Envelope;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.e2e.support.MeshExtension;
import io.meshcrypt.e2e.support.StaticSidecar;
import io.meshcrypt.pki.LocalCa;
import io.meshcrypt.testsupport.EnvoyProcess;
import io.meshcrypt.testsupport.Prerequisite;
import java.io.File;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Workload identity decides who reads plaintext and who may produce, against the real filter-service of the local mesh
 * and two real Envoys: the mesh's shared sidecar ({@code spiffe://meshcrypt.local/sidecar/kafka-apps}, a reader and
 * writer of the {@code identity-*} topics) and a second sidecar started here with its own certificate from the mesh
 * CA ({@code .../sidecar/intruder}, listed nowhere). The identity is the one the filter-service verified on the ext_proc
 * stream, so nothing a Kafka client sends changes it. Java clients and kcat both.
 */
@ExtendWith(MeshExtension.class)
class WorkloadIdentityTest {
    private static final String INTRUDER = "spiffe://meshcrypt.local/sidecar/intruder";
    private static final long KCAT_TIMEOUT_SECONDS = 60;

    private static EnvoyProcess intruderEnvoy;
    private static String intruderBootstrap;

    private final LocalMesh mesh;

    WorkloadIdentityTest(LocalMesh mesh) {
        this.mesh = mesh;
    }

    @BeforeAll
    static void startTheIntrudersSidecar(LocalMesh mesh) throws Exception {
        if (!LocalMesh.TLS) {
            if ("true".equals(System.getenv("CI"))) {
                fail("the e2e mesh runs without TLS (MESHCRYPT_TLS=off) under CI: workload identity is untested");
            }
            assumeTrue(false, "the e2e mesh runs without TLS (MESHCRYPT_TLS=off): streams carry no identity");
        }
        // issued by the mesh CA into a copy of it, so the mesh's own pki/ stays as the launcher keeps it
        Path dir = mesh.root().resolve("tests/target/identity");
        Path pki = dir.resolve("pki");
        Files.createDirectories(pki);
        for (String file : List.of(LocalCa.CA_CERTIFICATE, "ca-key.pem")) {
            Files.copy(mesh.pki().resolve(file), pki.resolve(file), StandardCopyOption.REPLACE_EXISTING);
        }
        LocalCa.Issued certificate = LocalCa.openOrCreate(pki)
                .issue("sidecar-intruder", LocalCa.spiffeId("sidecar/intruder"), List.of(), Duration.ofHours(1));
        int[] ports = StaticSidecar.freePorts(3);
        intruderBootstrap = "127.0.0.1:" + ports[0];
        Path config = dir.resolve("intruder-envoy.yaml");
        Files.writeString(config, intruderConfig(mesh, certificate, ports));
        intruderEnvoy = EnvoyProcess.start(config, ports[2], dir.resolve("intruder-envoy.log"),
                "--concurrency", "1", "--log-level", "warn");
    }

    @AfterAll
    static void stopTheIntrudersSidecar() {
        if (intruderEnvoy != null) {
            intruderEnvoy.close();
        }
    }

    @Test
    void givenTheSharedSidecarIsAReaderAndWriter_whenItProducesAndConsumes_thenPlaintextComesBackAndTheBrokerHoldsEnvelopes()
            throws Exception {
        String topic = mesh.createTopic(LocalMesh.IDENTITY_TOPIC_PREFIX + "own", 1);

        produce(mesh.kafkaBootstrap(), topic, "card 4111 1111");

        assertEquals(List.of("card 4111 1111"), values(mesh.readThroughEnvoy(topic, Map.of())));
        Envelope.assertNoPlaintext(utf8("card 4111 1111"), mesh.readDirect(topic).getFirst().value(), topic);
    }

    @Test
    void givenAWorkloadOutsideTheReaders_whenItsJavaConsumerReads_thenItGetsTheStoredEnvelopesUnchanged() throws Exception {
        String topic = mesh.createTopic(LocalMesh.IDENTITY_TOPIC_PREFIX + "others", 1);
        produce(mesh.kafkaBootstrap(), topic, "salary 9000");

        List<ConsumerRecord<byte[], byte[]>> seen = mesh.readThroughEnvoy(topic, intruder());

        byte[] atRest = mesh.readDirect(topic).getFirst().value();
        assertEquals(1, seen.size());
        assertArrayEquals(atRest, seen.getFirst().value(), "the intruder gets exactly what the broker stores");
        Envelope.assertNoPlaintext(utf8("salary 9000"), seen.getFirst().value(), topic + " as the intruder sees it");
    }

    @Test
    void givenAWorkloadOutsideTheReaders_whenItReadsADeniedTopic_thenItsJavaConsumerReportsTopicAuthorizationFailed()
            throws Exception {
        String topic = mesh.createTopic(LocalMesh.IDENTITY_DENY_TOPIC_PREFIX + "java", 1);
        produce(mesh.kafkaBootstrap(), topic, "debit 10");

        try (KafkaConsumer<byte[], byte[]> consumer = mesh.consumerThroughEnvoy(intruder())) {
            TopicPartition partition = new TopicPartition(topic, 0);
            consumer.assign(List.of(partition));
            consumer.seekToBeginning(List.of(partition));

            TopicAuthorizationException denied = assertThrows(TopicAuthorizationException.class, () -> {
                long deadline = System.nanoTime() + LocalMesh.CLIENT_TIMEOUT.toNanos();
                while (System.nanoTime() - deadline < 0) {
                    assertTrue(consumer.poll(Duration.ofMillis(200)).isEmpty(), "no record may reach the intruder");
                }
            });
            assertEquals(java.util.Set.of(topic), denied.unauthorizedTopics());
        }
    }

    @Test
    void givenAWorkloadOutsideTheWriters_whenItsJavaProducerSends_thenItReportsTopicAuthorizationFailedAndNothingIsStored()
            throws Exception {
        String topic = mesh.createTopic(LocalMesh.IDENTITY_TOPIC_PREFIX + "writers", 1);

        try (KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Map.of(
                ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, intruderBootstrap))) {
            ExecutionException refused = assertThrows(ExecutionException.class,
                    () -> producer.send(new ProducerRecord<>(topic, utf8("forged order"))).get(30, TimeUnit.SECONDS));
            assertInstanceOf(TopicAuthorizationException.class, refused.getCause());
        }

        assertEquals(List.of(), mesh.readDirect(topic), "the refused records never reached the broker");
    }

    @Test
    void givenAWorkloadOutsideTheReadersAndWriters_whenKcatReadsADeniedTopicAndWrites_thenKcatReportsTheAuthorizationError()
            throws Exception {
        Path kcat = kcat();
        String denied = mesh.createTopic(LocalMesh.IDENTITY_DENY_TOPIC_PREFIX + "kcat", 1);
        produce(mesh.kafkaBootstrap(), denied, "debit 20");

        Kcat read = Kcat.run(kcat, "", "-b", intruderBootstrap, "-C", "-t", denied, "-o", "beginning", "-e", "-q");
        Kcat write = Kcat.run(kcat, "forged\n", "-b", intruderBootstrap, "-P", "-t", denied);

        assertNotEquals(0, read.exitCode(), "kcat consuming a denied topic: " + read);
        assertTrue(read.stderr().toLowerCase().contains("topic authorization failed"), read.toString());
        assertTrue(read.stdout().isEmpty(), "nothing of the topic reaches kcat: " + read);
        assertTrue(write.stderr().toLowerCase().contains("topic authorization failed"), write.toString());
        assertEquals(List.of("debit 20"), values(mesh.readThroughEnvoy(denied, Map.of())),
                "only the writer's record is stored");
    }

    @Test
    void givenAWorkloadOutsideTheReaders_whenThePolicyAddsItWithoutARestart_thenItsNextReadIsPlaintext() throws Exception {
        String topic = mesh.createTopic(LocalMesh.IDENTITY_RELOAD_TOPIC_PREFIX + "switch", 1);
        produce(mesh.kafkaBootstrap(), topic, "bonus 500");
        long filterService = mesh.pid("filter-service");
        assertNotEquals("bonus 500", values(mesh.readThroughEnvoy(topic, intruder())).getFirst(), "not a reader yet");

        try {
            mesh.readersOfReloadTopics(List.of(INTRUDER));

            Await.until(Duration.ofSeconds(30), () -> values(mesh.readThroughEnvoy(topic, intruder())).equals(List.of("bonus 500")),
                    () -> "the intruder reading " + topic + " in plaintext once the policy lists it");
        } finally {
            mesh.readersOfReloadTopics(List.of());
        }
        Await.until(Duration.ofSeconds(30), () -> !values(mesh.readThroughEnvoy(topic, intruder())).equals(List.of("bonus 500")),
                () -> "the intruder back to ciphertext once the policy no longer lists it");
        assertEquals(filterService, mesh.pid("filter-service"), "the same filter-service process throughout");
    }

    @Test
    void givenReadsAndWritesByBothSidecars_whenTheAuditTrailIsRead_thenEachHasItsLineAndNoLineHoldsASecret() throws Exception {
        String others = mesh.createTopic(LocalMesh.IDENTITY_TOPIC_PREFIX + "audited", 1);
        String denied = mesh.createTopic(LocalMesh.IDENTITY_DENY_TOPIC_PREFIX + "audited", 1);
        produce(mesh.kafkaBootstrap(), others, "audited secret 1");
        produce(mesh.kafkaBootstrap(), denied, "audited secret 2");
        mesh.readThroughEnvoy(others, Map.of());
        mesh.readThroughEnvoy(others, intruder());
        try (KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Map.of(
                ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, intruderBootstrap))) {
            assertThrows(ExecutionException.class,
                    () -> producer.send(new ProducerRecord<>(others, utf8("forged"))).get(30, TimeUnit.SECONDS));
        }
        try (KafkaConsumer<byte[], byte[]> consumer = mesh.consumerThroughEnvoy(intruder())) {
            consumer.assign(List.of(new TopicPartition(denied, 0)));
            assertThrows(TopicAuthorizationException.class, () -> consumer.poll(LocalMesh.CLIENT_TIMEOUT));
        }

        // each connection writes its summary when it closes: Envoy ends the stream when the client hangs up
        Path trail = mesh.logs().resolve("audit.jsonl");
        List<String> expected = List.of(
                LocalMesh.SHARED_SIDECAR_IDENTITY + " " + others + " produce allowed",
                LocalMesh.SHARED_SIDECAR_IDENTITY + " " + others + " fetch allowed",
                INTRUDER + " " + others + " fetch ciphertext",
                INTRUDER + " " + others + " produce denied",
                INTRUDER + " " + denied + " fetch denied");
        Await.until(Duration.ofSeconds(30), () -> accesses(trail).containsAll(expected),
                () -> "access lines " + expected + " in " + trail + "; found " + accesses(trail));
        String text = Files.readString(trail);
        assertTrue(!text.contains("audited secret") && !text.contains("forged"), "no value reaches the audit trail");
        for (String keyMaterial : keyValues(mesh.root().resolve("tests/target/mesh"))) {
            assertTrue(!text.contains(keyMaterial), "no key material reaches the audit trail");
        }
        assertTrue(text.contains("\"event\":\"dek.created\"") || text.contains("\"event\":\"kek.current\""),
                "key operations are in the trail too");
    }

    // ---- helpers

    /** "identity topic direction outcome" of every access line of the trail so far. */
    private static List<String> accesses(Path trail) {
        try {
            ObjectMapper json = new ObjectMapper();
            List<String> seen = new ArrayList<>();
            for (String line : Files.readAllLines(trail)) {
                JsonNode node = json.readTree(line);
                if ("access".equals(node.path("event").asText())) {
                    seen.add(node.path("identity").asText() + " " + node.path("topic").asText() + " "
                            + node.path("direction").asText() + " " + node.path("outcome").asText());
                }
            }
            return seen;
        } catch (IOException e) {
            return List.of(e.toString());
        }
    }

    /** The base64 key values of the mesh's Tink keysets (JSON keysets: "value" members). */
    private static List<String> keyValues(Path home) throws IOException {
        List<String> values = new ArrayList<>();
        ObjectMapper json = new ObjectMapper();
        try (var files = Files.list(home)) {
            for (Path file : files.filter(f -> f.getFileName().toString().endsWith(".json")).toList()) {
                json.readTree(file.toFile()).findValues("value").forEach(v -> values.add(v.asText()));
            }
        }
        assertTrue(!values.isEmpty(), "the mesh has a keyset to compare against");
        return values;
    }

    private Map<String, Object> intruder() {
        return Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, intruderBootstrap);
    }

    private void produce(String bootstrap, String topic, String value) throws Exception {
        try (KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Map.of(
                ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
            producer.send(new ProducerRecord<>(topic, utf8(value))).get(30, TimeUnit.SECONDS);
        }
    }

    private static List<String> values(List<ConsumerRecord<byte[], byte[]>> records) {
        return records.stream().map(r -> text(r.value())).toList();
    }

    /**
     * The intruder's sidecar: a bootstrap and a node-1 listener in front of the mesh's broker, each streaming to the
     * mesh's filter-service over mutual TLS with the intruder's certificate, as a sidecar of the mesh would.
     */
    private static String intruderConfig(LocalMesh mesh, LocalCa.Issued certificate, int[] ports) {
        String[] broker = mesh.brokerDirect().split(":");
        return StaticSidecar.kafkaSidecar("intruder", ports, broker[0], Integer.parseInt(broker[1]),
                y -> StaticSidecar.filterServiceCluster(y, mesh.filterGrpcPort(), """
                    transport_socket:
                      name: envoy.transport_sockets.tls
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
                        common_tls_context:
                          alpn_protocols: [h2]
                          tls_certificates:
                          - certificate_chain: { filename: "%s" }
                            private_key: { filename: "%s" }
                          validation_context:
                            trusted_ca: { filename: "%s" }
                """.formatted(certificate.certificate(), certificate.privateKey(), mesh.pki().resolve(LocalCa.CA_CERTIFICATE))));
    }

    private static Path kcat() {
        Path kcat = List.of(System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)).stream()
                .map(dir -> Path.of(dir, "kcat")).filter(Files::isExecutable).findFirst().orElse(null);
        Prerequisite.require(kcat != null, "kcat is not installed");
        return kcat;
    }

    /** One kcat run: its exit code and output, whatever they are. */
    private record Kcat(int exitCode, String stdout, String stderr) {
        static Kcat run(Path kcat, String stdin, String... args) throws IOException, InterruptedException {
            List<String> command = new ArrayList<>(List.of(kcat.toString()));
            command.addAll(List.of(args));
            Path out = Files.createTempFile("kcat", ".out");
            Path err = Files.createTempFile("kcat", ".err");
            try {
                Process p = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
                try (OutputStream in = p.getOutputStream()) {
                    in.write(stdin.getBytes(StandardCharsets.UTF_8));
                }
                if (!p.waitFor(KCAT_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                    throw new AssertionError("kcat " + String.join(" ", args) + " hung; stderr: " + Files.readString(err));
                }
                return new Kcat(p.exitValue(), Files.readString(out), Files.readString(err));
            } finally {
                Files.deleteIfExists(out);
                Files.deleteIfExists(err);
            }
        }
    }
}
