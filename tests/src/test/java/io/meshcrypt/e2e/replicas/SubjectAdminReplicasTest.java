package io.meshcrypt.e2e.replicas;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.meshcrypt.e2e.support.Await;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.e2e.support.SubjectKeyTopic;
import io.meshcrypt.filter.admin.SubjectAdminClient;
import io.meshcrypt.launcher.MeshFile;
import io.meshcrypt.meshconfig.policy.Forgotten;
import io.meshcrypt.meshconfig.policy.SubjectSource;
import io.meshcrypt.meshconfig.policy.TopicRule;
import io.meshcrypt.meshconfig.tls.TlsFiles;
import io.meshcrypt.pki.LocalCa;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * Forgetting subjects through the filter-service's admin API with two replicas on one subject-key topic
 * ({@link ReplicaMesh}): {@code ./meshcrypt forget} reaches replica A (the launcher's gRPC port) as the launcher's admin
 * identity; consumers reading through replica B alone, then through a restarted A alone, then through both restarted,
 * get the entry's placeholder for exactly the forgotten subjects' records and plaintext for the others; a caller with
 * a sidecar's identity is refused; once the key topic is compacted it holds no wrapped key of the forgotten subjects.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class SubjectAdminReplicasTest {
    private static final String PREFIX = "forget";
    private static final String PATTERN = PREFIX + "-*";
    private static final String PLACEHOLDER = "[forgotten]";
    private static final int SUBJECTS = 1000;
    private static final int ROUNDS = 2;
    private static final Duration SEEN = Duration.ofSeconds(90);
    private static final Duration COMPACTION = Duration.ofSeconds(120);
    private static final Pattern REF = Pattern.compile("subject ref ([0-9a-f]{32})");

    private static ReplicaMesh mesh;
    /** Set by the first test: the forgotten subjects' refs, for the compaction check. */
    private static final Set<String> forgottenRefs = new TreeSet<>();

    @BeforeAll
    static void up() throws Exception {
        mesh = ReplicaMesh.start(List.of(new TopicRule(PATTERN, List.of(), false, null, null, TopicRule.Others.CIPHERTEXT,
                Map.of(), List.of(), SubjectSource.key(), new Forgotten(PLACEHOLDER))));
    }

    @AfterAll
    static void down() throws Exception {
        if (mesh != null) {
            mesh.close();
        }
    }

    /** Unique per topic: a forgotten subject stays forgotten in the key topic. */
    private static String subject(String topic, int i) {
        return String.format("%s/customer-%04d", topic, i);
    }

    private static boolean forgotten(int i) {
        return i % 100 == 42; // 10 of 1,000
    }

    @Test
    @Order(1)
    void givenAThousandSubjectsThroughTwoReplicas_whenTenAreForgottenOnReplicaA_thenEveryReplicaServesThePlaceholderForExactlyThemBeforeAndAfterRestarts()
            throws Exception {
        // Given 1,000 subjects, two records each, interleaved, produced through Envoy to both replicas
        String topic = mesh.createTopic(PREFIX);
        produce(topic);
        assertEquals(expected(topic, Set.of()), seen(topic), "before forgetting, everyone reads plaintext");

        // When 10 of them are forgotten through replica A's admin API (./meshcrypt forget, the launcher's identity)
        Set<Integer> forgottenSubjects = new TreeSet<>();
        for (int i = 0; i < SUBJECTS; i++) {
            if (forgotten(i)) {
                forgottenSubjects.add(i);
            }
        }
        String printed = mesh.forget(PATTERN, forgottenSubjects.stream().map(i -> subject(topic, i)).toList());
        Matcher m = REF.matcher(printed);
        while (m.find()) {
            forgottenRefs.add(m.group(1));
        }
        assertEquals(forgottenSubjects.size(), forgottenRefs.size(), printed);
        Map<String, List<String>> expected = expected(topic, forgottenSubjects);

        // Then through replica B alone (A stopped), exactly those records read as the placeholder
        mesh.kill(0);
        awaitOutOfRotation(0);
        awaitSeen(topic, expected, "through replica B alone");

        // And through a restarted replica A alone
        mesh.startReplicas(0);
        mesh.kill(1);
        awaitOutOfRotation(1);
        awaitSeen(topic, expected, "through restarted replica A alone");

        // And through both, both restarted
        mesh.startReplicas(1);
        awaitSeen(topic, expected, "through both replicas after restarting both");

        // And replica A's audit trail names the caller, the scope and the refs, never a subject id
        String identity = LocalMesh.TLS ? "spiffe://meshcrypt.local/admin" : null;
        Await.until(Duration.ofSeconds(30), () -> auditLines(0, "subject.forgotten").size() >= forgottenRefs.size(),
                () -> "subject.forgotten lines in " + mesh.auditFile(0));
        for (String line : auditLines(0, "subject.forgotten")) {
            assertFalse(line.contains(topic + "/customer"), "no subject id in the trail: " + line);
            assertTrue(line.contains("\"topic\":\"" + PATTERN + "\""), line);
            assertTrue(identity == null || line.contains("\"identity\":\"" + identity + "\""), line);
        }
        Set<String> auditedRefs = new TreeSet<>();
        for (String line : auditLines(0, "subject.forgotten")) {
            Matcher r = Pattern.compile("\"subjectRef\":\"([0-9a-f]{32})\"").matcher(line);
            if (r.find() && forgottenRefs.contains(r.group(1))) {
                auditedRefs.add(r.group(1));
            }
        }
        assertEquals(forgottenRefs, auditedRefs);
    }

    @Test
    @Order(2)
    void givenASidecarCertificateFromTheMeshCa_whenItCallsForget_thenBothReplicasRefuseItAndAuditTheRefusal()
            throws Exception {
        Assumptions.assumeTrue(LocalMesh.TLS, "MESHCRYPT_TLS=off: a plaintext port authenticates no caller, so the"
                + " admin API is open to local processes (admin.plaintextLoopback) and there is no identity to refuse");
        // Given the shared sidecar's own certificate (a workload, not an admin)
        Path pki = mesh.home().resolve("pki");
        LocalCa.Issued sidecar = LocalCa.openOrCreate(pki).files("sidecar-" + MeshFile.SHARED_NODE);
        TlsFiles tls = new TlsFiles(sidecar.certificate(), sidecar.privateKey(), pki.resolve(LocalCa.CA_CERTIFICATE));
        long before = auditLines(0, "admin.refused").size();

        for (int replica = 0; replica < ReplicaMesh.REPLICAS; replica++) {
            try (SubjectAdminClient client = SubjectAdminClient.connect("127.0.0.1", ReplicaMesh.grpcPort(replica), tls,
                    Duration.ofSeconds(30))) {
                // When it asks to forget a subject
                StatusRuntimeException e = org.junit.jupiter.api.Assertions.assertThrows(StatusRuntimeException.class,
                        () -> client.forget(PATTERN, "anyone"));
                // Then it is refused
                assertEquals(Status.Code.PERMISSION_DENIED, e.getStatus().getCode(), e.toString());
            }
        }
        Await.until(Duration.ofSeconds(30), () -> auditLines(0, "admin.refused").size() > before,
                () -> "an admin.refused line in " + mesh.auditFile(0));
        String line = auditLines(0, "admin.refused").getLast();
        assertTrue(line.contains("\"identity\":\"spiffe://meshcrypt.local/sidecar/" + MeshFile.SHARED_NODE + "\""), line);
    }

    @Test
    @Order(3)
    void givenForgottenSubjects_whenTheKeyTopicIsCompacted_thenItHoldsNoWrappedKeyOfThem() throws Exception {
        Assumptions.assumeFalse(forgottenRefs.isEmpty(), "the first test forgets the subjects this one checks (it failed)");
        // Given the forgotten subjects' wrapped keys, overwritten in the key topic but still in its older segments
        // When the key topic is compacted
        List<String> left = SubjectKeyTopic.compactAndAwait(mesh.admin(), mesh.brokerDirect(), forgottenRefs, PATTERN,
                COMPACTION);

        // Then no record of it holds a wrapped key of a forgotten subject
        assertEquals(List.of(), left, "wrapped keys of forgotten subjects left in " + SubjectKeyTopic.TOPIC);
    }

    // ---- helpers -------------------------------------------------------------------------------------------------

    private static void produce(String topic) throws Exception {
        Properties p = ReplicaMesh.client(mesh.bootstrap());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 120_000);
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            List<Future<RecordMetadata>> sends = new ArrayList<>();
            for (int round = 0; round < ROUNDS; round++) {
                for (int i = 0; i < SUBJECTS; i++) {
                    sends.add(producer.send(new ProducerRecord<>(topic, utf8(subject(topic, i)), utf8(value(topic, round, i)))));
                }
            }
            for (Future<RecordMetadata> send : sends) {
                send.get(ReplicaMesh.TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            }
        }
    }

    private static String value(String topic, int round, int i) {
        return "order " + round + " of " + subject(topic, i);
    }

    private static List<ConsumerRecord<byte[], byte[]>> read(String bootstrap, String topic) {
        Properties p = ReplicaMesh.client(bootstrap);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30_000);
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            return LocalMesh.drain(consumer, topic);
        }
    }

    /** Per subject, its values in order: the placeholder for a forgotten subject's. */
    private static Map<String, List<String>> expected(String topic, Set<Integer> forgottenSubjects) {
        Map<String, List<String>> expected = new HashMap<>();
        for (int round = 0; round < ROUNDS; round++) {
            for (int i = 0; i < SUBJECTS; i++) {
                expected.computeIfAbsent(subject(topic, i), s -> new ArrayList<>())
                        .add(forgottenSubjects.contains(i) ? PLACEHOLDER : value(topic, round, i));
            }
        }
        return expected;
    }

    private static Map<String, List<String>> seen(String topic) {
        Map<String, List<String>> seen = new HashMap<>();
        for (ConsumerRecord<byte[], byte[]> r : read(mesh.bootstrap(), topic)) {
            seen.computeIfAbsent(new String(r.key(), StandardCharsets.UTF_8), s -> new ArrayList<>())
                    .add(r.value() == null ? null : new String(r.value(), StandardCharsets.UTF_8));
        }
        return seen;
    }

    /** Replicas read the markers from the key topic within their poll interval: wait, then the exact picture holds. */
    private static void awaitSeen(String topic, Map<String, List<String>> expected, String when) {
        java.util.concurrent.atomic.AtomicReference<Map<String, List<String>>> last = new java.util.concurrent.atomic.AtomicReference<>();
        Await.until(SEEN, () -> {
            try {
                last.set(seen(topic));
                return expected.equals(last.get());
            } catch (RuntimeException | AssertionError e) {
                return false; // a connection to a replica just stopped: read again
            }
        }, () -> when + ": consumers through Envoy saw " + differences(expected, last.get()));
    }

    private static String differences(Map<String, List<String>> expected, Map<String, List<String>> seen) {
        if (seen == null) {
            return "nothing";
        }
        List<String> out = new ArrayList<>();
        int differing = 0;
        for (Map.Entry<String, List<String>> e : expected.entrySet()) {
            if (!e.getValue().equals(seen.get(e.getKey()))) {
                differing++;
                if (out.size() < 10) {
                    out.add(e.getKey() + "=" + seen.get(e.getKey()) + " (expected " + e.getValue() + ")");
                }
            }
        }
        return differing + " differing subjects, e.g. " + out;
    }

    /** Waits until Envoy no longer sends new streams to the stopped replica {@code i}. */
    private static void awaitOutOfRotation(int i) {
        Await.until(ReplicaMesh.TIMEOUT, () -> {
            try {
                return !mesh.envoyHealth(i).equals("healthy");
            } catch (java.io.IOException e) {
                return false;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }, () -> "Envoy takes stopped replica " + i + " out of rotation");
    }

    private static List<String> auditLines(int replica, String event) {
        Path file = mesh.auditFile(replica);
        try {
            if (!Files.exists(file)) {
                return List.of();
            }
            return Files.readAllLines(file).stream().filter(l -> l.contains("\"event\":\"" + event + "\"")).toList();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
