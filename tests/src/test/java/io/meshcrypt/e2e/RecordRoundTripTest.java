package io.meshcrypt.e2e;

import static io.meshcrypt.e2e.support.Records.describe;
import static io.meshcrypt.e2e.support.Records.text;
import static io.meshcrypt.e2e.support.Records.utf8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.meshcrypt.e2e.support.Envelope;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.e2e.support.MeshExtension;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** kafka-clients through Envoy: ciphertext at rest, the exact records back for consumers. */
@ExtendWith(MeshExtension.class)
class RecordRoundTripTest {

    private final LocalMesh mesh;

    RecordRoundTripTest(LocalMesh mesh) {
        this.mesh = mesh;
    }

    /** What the producer sent, and where the broker says it landed. */
    private record Sent(ProducerRecord<byte[], byte[]> record, RecordMetadata metadata) {
    }

    @Test
    void givenKeyedRecordsWithHeadersProducedThroughEnvoy_whenReadDirectAndThroughEnvoy_thenCiphertextAtRestAndExactRecordsBack() throws Exception {
        // Given a 3-partition topic and records with keys, explicit timestamps and varied headers
        String topic = mesh.createTopic("roundtrip", 3);
        long baseTimestamp = System.currentTimeMillis() - 60_000;
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int i = 0; i < 30; i++) {
            RecordHeaders headers = new RecordHeaders();
            if (i % 3 == 1) {
                headers.add("trace-id", utf8("trace-" + i));
            } else if (i % 3 == 2) {
                headers.add("dup", utf8("first"));
                headers.add("dup", utf8("second"));
                headers.add("empty", null);
            }
            records.add(new ProducerRecord<>(topic, null, baseTimestamp + i * 7L, utf8("key-" + (i % 5)),
                    utf8("secret value number " + i), headers));
        }
        // an empty value is encrypted too (38 bytes at rest) and must come back empty, not null
        records.add(new ProducerRecord<>(topic, null, baseTimestamp + 1_000, utf8("empty"), new byte[0], new RecordHeaders()));

        // When they are produced through Envoy
        List<Sent> sent = produce(Map.of(), records);

        // Then the broker stores envelopes and Envoy's consumers get every field back unchanged
        assertRoundTrip(topic, sent, Map.of());
    }

    @ParameterizedTest(name = "compression.type={0}")
    @ValueSource(strings = {"none", "gzip", "snappy", "lz4", "zstd"})
    void givenProducerCompression_whenBatchesProducedThroughEnvoy_thenValuesAtRestAreEnvelopesAndConsumersGetPlaintext(String codec) throws Exception {
        // Given a producer compressing multi-record batches (linger lets records share a batch)
        String topic = mesh.createTopic("codec-" + codec, 1);
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            String compressible = ("payload " + i + " of codec " + codec + "; ").repeat(1 + i % 4);
            records.add(new ProducerRecord<>(topic, utf8("k" + i), utf8(compressible)));
        }

        // When they are produced through Envoy
        List<Sent> sent = produce(Map.of(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec,
                ProducerConfig.LINGER_MS_CONFIG, 50), records);

        // Then values at rest are envelopes and consumers get the plaintext
        assertRoundTrip(topic, sent, Map.of());
    }

    @Test
    void givenTombstone_whenProducedThroughEnvoy_thenNullValueStaysNullAtRestAndForConsumers() throws Exception {
        // Given a tombstone between two ordinary records
        String topic = mesh.createTopic("tombstone", 1);
        RecordHeaders tombstoneHeaders = new RecordHeaders();
        tombstoneHeaders.add("reason", utf8("deleted"));
        List<ProducerRecord<byte[], byte[]>> records = List.of(
                new ProducerRecord<>(topic, utf8("a"), utf8("alpha secret")),
                new ProducerRecord<>(topic, null, null, utf8("a"), null, tombstoneHeaders),
                new ProducerRecord<>(topic, utf8("b"), utf8("beta secret")));

        // When produced through Envoy
        List<Sent> sent = produce(Map.of(), records);

        // Then the tombstone is null both at rest and through Envoy (compaction depends on it)
        List<ConsumerRecord<byte[], byte[]>> direct = mesh.readDirect(topic);
        assertEquals(3, direct.size(), "records at rest");
        assertNull(direct.get(1).value(), "tombstone at rest");
        assertArrayEquals(utf8("a"), direct.get(1).key(), "tombstone key at rest");
        assertRoundTrip(topic, sent, Map.of());
    }

    @Test
    void given900KiBRecord_whenProducedThroughEnvoy_thenItRoundTripsAndIsCiphertextAtRest() throws Exception {
        // Given a 900 KiB incompressible value (envelope makes it 38 bytes bigger, still under message.max.bytes)
        String topic = mesh.createTopic("large", 1);
        byte[] large = new byte[900 * 1024];
        new Random(42).nextBytes(large);
        List<ProducerRecord<byte[], byte[]>> records = List.of(
                new ProducerRecord<>(topic, utf8("large"), large),
                new ProducerRecord<>(topic, utf8("after"), utf8("small record after the large one")));

        // When produced through Envoy with request and fetch sizes that admit it
        List<Sent> sent = produce(Map.of(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, 2 * 1024 * 1024), records);

        // Then it is stored encrypted and comes back byte for byte
        assertRoundTrip(topic, sent, Map.of(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, 2 * 1024 * 1024,
                ConsumerConfig.FETCH_MAX_BYTES_CONFIG, 4 * 1024 * 1024));
    }

    private List<Sent> produce(Map<String, Object> overrides, List<ProducerRecord<byte[], byte[]>> records) throws Exception {
        List<Future<RecordMetadata>> futures = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(overrides)) {
            for (ProducerRecord<byte[], byte[]> r : records) {
                futures.add(producer.send(r));
            }
            producer.flush();
        }
        List<Sent> sent = new ArrayList<>();
        for (int i = 0; i < records.size(); i++) {
            sent.add(new Sent(records.get(i), futures.get(i).get(LocalMesh.CLIENT_TIMEOUT.toSeconds(), TimeUnit.SECONDS)));
        }
        return sent;
    }

    private void assertRoundTrip(String topic, List<Sent> sent, Map<String, Object> consumerOverrides) {
        // Send order within a partition must equal offset order; sorting by the broker's offsets and
        // comparing against send order below checks both.
        List<Sent> expected = sent.stream()
                .sorted(Comparator.<Sent>comparingInt(s -> s.metadata().partition())
                        .thenComparingLong(s -> s.metadata().offset()))
                .toList();
        for (int p : expected.stream().map(s -> s.metadata().partition()).distinct().toList()) {
            List<Sent> inSendOrder = sent.stream().filter(s -> s.metadata().partition() == p).toList();
            List<Sent> inOffsetOrder = expected.stream().filter(s -> s.metadata().partition() == p).toList();
            assertEquals(inSendOrder, inOffsetOrder, "partition " + p + " keeps send order");
        }

        List<ConsumerRecord<byte[], byte[]>> direct = mesh.readDirect(topic);
        assertEquals(expected.size(), direct.size(), "records at rest");
        for (int i = 0; i < expected.size(); i++) {
            Sent s = expected.get(i);
            ConsumerRecord<byte[], byte[]> atRest = direct.get(i);
            String where = topic + "-" + atRest.partition() + "@" + atRest.offset();
            assertEquals(s.metadata().partition(), atRest.partition(), where + " partition");
            assertEquals(s.metadata().offset(), atRest.offset(), where + " offset");
            assertArrayEquals(s.record().key(), atRest.key(), where + " key stays plaintext (partitioning, compaction)");
            if (s.record().value() == null) {
                assertNull(atRest.value(), where + " tombstone at rest");
            } else {
                Envelope.assertEnvelopeOf(s.record().value(), atRest.value(), where);
                Envelope.assertVersion(Envelope.MESH_DEFAULT_VERSION, atRest.value(), where);
            }
        }

        List<ConsumerRecord<byte[], byte[]>> consumed = mesh.readThroughEnvoy(topic, consumerOverrides);
        assertEquals(expected.size(), consumed.size(), "records through Envoy");
        for (int i = 0; i < expected.size(); i++) {
            Sent s = expected.get(i);
            ConsumerRecord<byte[], byte[]> got = consumed.get(i);
            String where = topic + "-" + got.partition() + "@" + got.offset();
            assertEquals(s.metadata().partition(), got.partition(), where + " partition");
            assertEquals(s.metadata().offset(), got.offset(), where + " offset");
            assertArrayEquals(s.record().key(), got.key(), where + " key");
            if (s.record().value() != null && s.record().value().length > 256) {
                assertArrayEquals(s.record().value(), got.value(), where + " value");
            } else if (s.record().value() != null && s.record().value().length == 0) {
                assertArrayEquals(new byte[0], got.value(), where + " empty value");
            } else {
                assertEquals(text(s.record().value()), text(got.value()), where + " value");
            }
            assertEquals(describe(s.record().headers()), describe(got.headers()), where + " headers");
            assertEquals(s.metadata().timestamp(), got.timestamp(), where + " timestamp");
        }
    }
}
