package io.meshcrypt.e2e;

import static io.meshcrypt.e2e.support.Records.text;
import static io.meshcrypt.e2e.support.Records.utf8;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.meshcrypt.e2e.support.Envelope;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.e2e.support.MeshExtension;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** Idempotent and transactional producers rely on batch fields the filter must keep (producer id, epoch, sequence, flags). */
@ExtendWith(MeshExtension.class)
class ExactlyOnceProducerTest {

    private final LocalMesh mesh;

    ExactlyOnceProducerTest(LocalMesh mesh) {
        this.mesh = mesh;
    }

    @Test
    void givenIdempotentProducer_whenProducingThroughEnvoy_thenEveryRecordIsStoredOnceEncryptedAndInOrder() throws Exception {
        // Given an idempotent producer with several batches in flight
        String topic = mesh.createTopic("idempotent", 2);
        List<String> values = new ArrayList<>();
        List<Future<RecordMetadata>> acks = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Map.of(
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true,
                ProducerConfig.ACKS_CONFIG, "all",
                ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 5,
                ProducerConfig.BATCH_SIZE_CONFIG, 512))) {
            // When records are produced through Envoy
            for (int i = 0; i < 200; i++) {
                String value = "idempotent secret " + i;
                values.add(value);
                acks.add(producer.send(new ProducerRecord<>(topic, utf8("k" + (i % 7)), utf8(value))));
            }
            producer.flush();
        }
        for (Future<RecordMetadata> ack : acks) {
            ack.get(LocalMesh.CLIENT_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        }

        // Then each is stored exactly once as an envelope, and consumers see them once each, in send order per key
        List<ConsumerRecord<byte[], byte[]>> direct = mesh.readDirect(topic);
        assertEquals(values.size(), direct.size(), "records at rest");
        for (ConsumerRecord<byte[], byte[]> r : direct) {
            Envelope.assertEnvelope(r.value(), topic + "-" + r.partition() + "@" + r.offset());
        }
        List<ConsumerRecord<byte[], byte[]>> consumed = mesh.readThroughEnvoy(topic, Map.of());
        assertEquals(values.size(), consumed.size(), "records through Envoy");
        for (int k = 0; k < 7; k++) {
            String key = "k" + k;
            List<String> sentForKey = new ArrayList<>();
            for (int i = k; i < values.size(); i += 7) {
                sentForKey.add(values.get(i));
            }
            List<String> gotForKey = consumed.stream().filter(r -> key.equals(text(r.key())))
                    .map(r -> text(r.value())).toList();
            assertEquals(sentForKey, gotForKey, "values of key " + key + " in send order");
        }
    }

    @Test
    void givenCommittedAndAbortedTransactions_whenConsumedThroughEnvoy_thenReadCommittedSeesOnlyCommittedAndReadUncommittedSeesBoth() {
        // Given one committed and one aborted transaction, then a second committed one, through Envoy
        String topic = mesh.createTopic("transactions", 1);
        List<String> committed = List.of("committed 1", "committed 2", "committed 3");
        List<String> aborted = List.of("aborted 1", "aborted 2");
        List<String> committedLater = List.of("committed 4");
        try (KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Map.of(
                ProducerConfig.TRANSACTIONAL_ID_CONFIG, "e2e-tx-" + UUID.randomUUID(),
                ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 30_000))) {
            producer.initTransactions();
            runTransaction(producer, topic, committed, true);
            runTransaction(producer, topic, aborted, false);
            runTransaction(producer, topic, committedLater, true);
        }

        // When read directly, with read_committed and with read_uncommitted through Envoy
        List<ConsumerRecord<byte[], byte[]>> direct = mesh.readDirect(topic);
        List<String> readCommitted = values(mesh.readThroughEnvoy(topic,
                Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed")));
        List<String> readUncommitted = values(mesh.readThroughEnvoy(topic,
                Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_uncommitted")));

        // Then everything at rest is ciphertext, aborted records included
        assertEquals(committed.size() + aborted.size() + committedLater.size(), direct.size(), "data records at rest");
        for (ConsumerRecord<byte[], byte[]> r : direct) {
            Envelope.assertEnvelope(r.value(), topic + "@" + r.offset());
        }
        // and read_committed sees only committed records, while read_uncommitted decrypts the aborted ones too
        List<String> expectedCommitted = new ArrayList<>(committed);
        expectedCommitted.addAll(committedLater);
        assertEquals(expectedCommitted, readCommitted, "read_committed through Envoy");
        List<String> expectedAll = new ArrayList<>(committed);
        expectedAll.addAll(aborted);
        expectedAll.addAll(committedLater);
        assertEquals(expectedAll, readUncommitted, "read_uncommitted through Envoy");
    }

    private static void runTransaction(KafkaProducer<byte[], byte[]> producer, String topic, List<String> values, boolean commit) {
        producer.beginTransaction();
        for (String v : values) {
            producer.send(new ProducerRecord<>(topic, utf8("tx"), utf8(v)));
        }
        producer.flush();
        if (commit) {
            producer.commitTransaction();
        } else {
            producer.abortTransaction();
        }
    }

    private static List<String> values(List<ConsumerRecord<byte[], byte[]>> records) {
        return records.stream().map(r -> text(r.value())).toList();
    }
}
