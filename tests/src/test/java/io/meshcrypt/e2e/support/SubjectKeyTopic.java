package io.meshcrypt.e2e.support;

import io.meshcrypt.filter.config.SubjectKeysConfig;
import io.meshcrypt.filter.subjects.SubjectKeyRecords;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The subject-key topic read straight from the broker, for the proof that forgetting destroys key material: which of
 * its records still hold a wrapped key of given subject refs, and compaction made to run soon.
 */
public final class SubjectKeyTopic {
    public static final String TOPIC = SubjectKeysConfig.DEFAULT_TOPIC;

    private SubjectKeyTopic() {
    }

    /**
     * Makes the broker compact the key topic soon (small segments, any dirty ratio, no lag) and waits until no record
     * of it holds a wrapped key of {@code refs}, appending a record that changes nothing every two seconds so that
     * the active segment rolls and the cleaner gets to it.
     *
     * @param bootstrap the broker itself
     * @param scope a scope to file that record under (a marker of the all-zero ref, which no subject has)
     * @return the record keys (hex) still holding such a wrapped key when {@code timeout} ran out; empty on success
     */
    public static List<String> compactAndAwait(Admin admin, String bootstrap, Set<String> refs, String scope,
                                               Duration timeout) throws Exception {
        ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, TOPIC);
        admin.incrementalAlterConfigs(Map.of(resource, List.of(
                new AlterConfigOp(new ConfigEntry("segment.ms", "100"), AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("min.cleanable.dirty.ratio", "0.01"), AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("min.compaction.lag.ms", "0"), AlterConfigOp.OpType.SET))))
                .all().get(30, TimeUnit.SECONDS);
        long deadline = System.nanoTime() + timeout.toNanos();
        List<String> left = wrappedKeysOf(bootstrap, refs);
        while (!left.isEmpty() && System.nanoTime() < deadline) {
            rollSegment(bootstrap, scope);
            Thread.sleep(2000);
            left = wrappedKeysOf(bootstrap, refs);
        }
        return left;
    }

    /** The record keys (hex) of key-topic records holding a wrapped key of one of {@code refs} (hex). */
    public static List<String> wrappedKeysOf(String bootstrap, Set<String> refs) {
        List<String> found = new ArrayList<>();
        for (ConsumerRecord<byte[], byte[]> r : read(bootstrap)) {
            SubjectKeyRecords.Key key = SubjectKeyRecords.parseKey(r.key());
            if (key != null && key.kind() == SubjectKeyRecords.SUBJECT_KEY
                    && refs.contains(HexFormat.of().formatHex(key.ref()))
                    && SubjectKeyRecords.wrappedSubjectKey(r.value()) != null) {
                found.add(HexFormat.of().formatHex(r.key()));
            }
        }
        return found;
    }

    private static List<ConsumerRecord<byte[], byte[]>> read(String bootstrap) {
        Properties p = new Properties();
        p.put(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            return LocalMesh.drain(consumer, TOPIC);
        }
    }

    /** Appends the forgotten marker of the all-zero ref (always the same record key): the segment rolls after segment.ms. */
    private static void rollSegment(String bootstrap, String scope) throws Exception {
        byte[] key = SubjectKeyRecords.key(SubjectKeyRecords.SUBJECT_MARKER, scope, new byte[SubjectKeyRecords.REF_LENGTH]);
        Properties p = new Properties();
        p.put(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (KafkaProducer<byte[], byte[]> direct = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            direct.send(new ProducerRecord<>(TOPIC, 0, key, SubjectKeyRecords.forgottenValue())).get(30, TimeUnit.SECONDS);
        }
    }
}
