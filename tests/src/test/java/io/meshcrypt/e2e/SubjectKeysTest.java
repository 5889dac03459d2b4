package io.meshcrypt.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.e2e.support.Await;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.e2e.support.SubjectKeyTopic;
import io.meshcrypt.e2e.support.MeshExtension;
import io.meshcrypt.filter.config.SubjectKeysConfig;
import io.meshcrypt.filter.crypto.ValueEnvelopeV3;
import io.meshcrypt.filter.subjects.SubjectKeyRecords;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Per-subject keys through the real mesh (the shared mesh's {@code subjects-*} rule: {@code subject: {from: key}},
 * {@code forgotten: null}): 1,000 subjects interleaved in one topic, 10 forgotten with {@code ./meshcrypt forget};
 * consumers through Envoy get null values for exactly those 10 subjects' records and plaintext for the others, before
 * and after a filter-service restart; once the key topic is compacted it holds no wrapped key of the forgotten 10.
 * (Two replicas and the throughput bench with 1,000 active subjects are not covered here.)
 */
@ExtendWith(MeshExtension.class)
class SubjectKeysTest {
    private static final int SUBJECTS = 1000;
    private static final int ROUNDS = 2;
    private static final String PATTERN = LocalMesh.SUBJECTS_TOPIC_PREFIX + "*";
    private static final Duration FORGET_SEEN = Duration.ofSeconds(60);
    private static final Duration COMPACTION = Duration.ofSeconds(120);
    private static final String FILTER_SERVICE = "filter-service";

    private final LocalMesh mesh;

    SubjectKeysTest(LocalMesh mesh) {
        this.mesh = mesh;
    }

    /** Unique per topic: the shared mesh's key topic outlives a run, and a forgotten subject stays forgotten. */
    private static String subject(String topic, int i) {
        return String.format("%s/customer-%04d", topic, i);
    }

    private static boolean forgotten(int i) {
        return i % 100 == 7; // 10 of 1,000
    }

    @Test
    void givenAThousandSubjectsInterleaved_whenTenAreForgotten_thenExactlyTheirRecordsReadAsNullBeforeAndAfterARestart()
            throws Exception {
        // Given 1,000 subjects, two records each, interleaved, produced through Envoy
        String topic = mesh.createTopic(LocalMesh.SUBJECTS_TOPIC_PREFIX + "gdpr", 1);
        try (KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Map.of())) {
            List<Future<RecordMetadata>> sends = new ArrayList<>();
            for (int round = 0; round < ROUNDS; round++) {
                for (int i = 0; i < SUBJECTS; i++) {
                    sends.add(producer.send(new ProducerRecord<>(topic, utf8(subject(topic, i)),
                            utf8("order " + round + " of " + subject(topic, i)))));
                }
            }
            for (Future<RecordMetadata> send : sends) {
                send.get(LocalMesh.CLIENT_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            }
        }
        List<ConsumerRecord<byte[], byte[]>> atRest = mesh.readDirect(topic);
        assertEquals(SUBJECTS * ROUNDS, atRest.size());
        for (ConsumerRecord<byte[], byte[]> r : atRest) {
            assertTrue(ValueEnvelopeV3.isVersion3(ByteBuffer.wrap(r.value())), "at rest: a version-3 envelope");
            assertFalse(new String(r.value(), StandardCharsets.ISO_8859_1).contains("order"), "no plaintext at rest");
        }
        assertEquals(expected(topic, Set.of()), seenThroughEnvoy(topic), "before forgetting, everyone reads plaintext");

        // When 10 of them are forgotten
        Set<Integer> forgottenSubjects = new TreeSet<>();
        for (int i = 0; i < SUBJECTS; i++) {
            if (forgotten(i)) {
                forgottenSubjects.add(i);
            }
        }
        mesh.forget(PATTERN, forgottenSubjects.stream().map(i -> subject(topic, i)).toList());

        // Then consumers through Envoy get null values for exactly their records, plaintext for the others
        Map<String, List<String>> expected = expected(topic, forgottenSubjects);
        awaitSeen(topic, expected, "after the forget");

        // And the same after a filter-service restart (it reads the key topic again)
        mesh.stop(FILTER_SERVICE);
        mesh.start(FILTER_SERVICE);
        awaitSeen(topic, expected, "after a filter-service restart");
    }

    @Test
    void givenForgottenSubjects_whenTheKeyTopicIsCompacted_thenItHoldsNoWrappedKeyOfThem() throws Exception {
        // Given subjects, some of them forgotten
        String topic = mesh.createTopic(LocalMesh.SUBJECTS_TOPIC_PREFIX + "compact", 1);
        try (KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Map.of())) {
            for (int i = 0; i < 20; i++) {
                producer.send(new ProducerRecord<>(topic, utf8(topic + "/" + i), utf8("v" + i)))
                        .get(LocalMesh.CLIENT_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            }
        }
        mesh.forget(PATTERN, List.of(topic + "/0", topic + "/5", topic + "/10", topic + "/15"));
        Set<String> markers = forgottenRefs();
        assertTrue(markers.size() >= 4, "markers: " + markers);
        List<String> before = SubjectKeyTopic.wrappedKeysOf(mesh.brokerDirect(), markers);
        assertTrue(before.size() >= 4, "before compaction the original wrapped keys are still there: " + before);

        // When the key topic is compacted (small segments, any dirty ratio; a record rolls the active segment)
        List<String> left = SubjectKeyTopic.compactAndAwait(mesh.admin(), mesh.brokerDirect(), markers, PATTERN,
                COMPACTION);

        // Then, once the cleaner ran, no record of the topic holds a wrapped key of a forgotten subject
        assertEquals(List.of(), left, "wrapped keys of forgotten subjects left in " + SubjectKeyTopic.TOPIC);
        assertFalse(markers.isEmpty());
        assertEquals(markers, forgottenRefs(), "the markers stay (never removed)");
    }

    /** The subject refs (hex) with a forgotten marker in the key topic. */
    private Set<String> forgottenRefs() {
        Set<String> refs = new HashSet<>();
        for (ConsumerRecord<byte[], byte[]> r : mesh.readDirect(SubjectKeysConfig.DEFAULT_TOPIC)) {
            SubjectKeyRecords.Key key = SubjectKeyRecords.parseKey(r.key());
            if (key != null && key.kind() == SubjectKeyRecords.SUBJECT_MARKER && SubjectKeyRecords.isForgotten(r.value())) {
                refs.add(HexFormat.of().formatHex(key.ref()));
            }
            refs.remove(HexFormat.of().formatHex(new byte[SubjectKeyRecords.REF_LENGTH])); // compactAndAwait's rolling record
        }
        return refs;
    }

    /** Per subject, its values in order; null for a forgotten subject's. */
    private static Map<String, List<String>> expected(String topic, Set<Integer> forgottenSubjects) {
        Map<String, List<String>> expected = new HashMap<>();
        for (int round = 0; round < ROUNDS; round++) {
            for (int i = 0; i < SUBJECTS; i++) {
                expected.computeIfAbsent(subject(topic, i), s -> new ArrayList<>())
                        .add(forgottenSubjects.contains(i) ? null : "order " + round + " of " + subject(topic, i));
            }
        }
        return expected;
    }

    private Map<String, List<String>> seenThroughEnvoy(String topic) {
        Map<String, List<String>> seen = new HashMap<>();
        for (ConsumerRecord<byte[], byte[]> r : mesh.readThroughEnvoy(topic, Map.of())) {
            assertNotNull(r.key());
            seen.computeIfAbsent(new String(r.key(), StandardCharsets.UTF_8), s -> new ArrayList<>())
                    .add(r.value() == null ? null : new String(r.value(), StandardCharsets.UTF_8));
        }
        return seen;
    }

    /** The filter-service reads the markers from the key topic: wait for it, then the exact picture must hold. */
    private void awaitSeen(String topic, Map<String, List<String>> expected, String when) {
        Map<String, List<String>>[] last = new Map[1];
        Await.until(FORGET_SEEN, () -> expected.equals(last[0] = seenThroughEnvoy(topic)),
                () -> when + ": consumers through Envoy saw " + differences(expected, last[0]));
    }

    private static String differences(Map<String, List<String>> expected, Map<String, List<String>> seen) {
        if (seen == null) {
            return "nothing";
        }
        List<String> out = new ArrayList<>();
        for (Map.Entry<String, List<String>> e : expected.entrySet()) {
            if (!e.getValue().equals(seen.get(e.getKey())) && out.size() < 10) {
                out.add(e.getKey() + "=" + seen.get(e.getKey()) + " (expected " + e.getValue() + ")");
            }
        }
        return out.size() + " differing subjects, e.g. " + out;
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
