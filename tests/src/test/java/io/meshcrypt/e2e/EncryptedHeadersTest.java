package io.meshcrypt.e2e;

import static io.meshcrypt.e2e.support.Records.text;
import static io.meshcrypt.e2e.support.Records.utf8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.fail;

import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.e2e.support.MeshExtension;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * A topic whose policy entry lists {@code headers: [user-id, "x-pii-*"]} (the shared mesh's {@code headers-*} rule,
 * delivered by the xDS server): those headers' values are header envelopes at rest and plaintext to consumers through
 * Envoy, other headers stay as sent, and an envelope moved to another header name does not decrypt.
 */
@ExtendWith(MeshExtension.class)
class EncryptedHeadersTest {

    private static final byte[] HEADER_ENVELOPE_PREFIX = {0x00, 0x4D, 0x43, 0x48, 0x01};
    private static final Duration ERROR_TIMEOUT = Duration.ofSeconds(20);
    private final LocalMesh mesh;

    EncryptedHeadersTest(LocalMesh mesh) {
        this.mesh = mesh;
    }

    private static Headers sent() {
        return new RecordHeaders(new Header[]{
                new RecordHeader("traceparent", utf8("00-4bf92f3577b34da6-01")),
                new RecordHeader("user-id", utf8("customer-4711")),
                new RecordHeader("x-pii-email", utf8("alice@example.com")),
                new RecordHeader("x-pii-phone", (byte[]) null)});
    }

    @Test
    void givenTopicListingHeaders_whenProducedThroughEnvoy_thenListedHeadersAreCiphertextAtRestAndPlaintextToConsumers()
            throws Exception {
        // Given a topic whose policy entry lists user-id and x-pii-*
        String topic = mesh.createTopic(LocalMesh.HEADERS_TOPIC_PREFIX + "roundtrip", 1);

        // When a record with listed, unlisted and null headers is produced through Envoy
        produceThroughEnvoy(topic, "order 1");

        // Then at rest the listed headers hold header envelopes, the others are as sent, and the value is encrypted
        List<ConsumerRecord<byte[], byte[]>> atRest = mesh.readDirect(topic);
        assertEquals(1, atRest.size());
        Header[] stored = atRest.getFirst().headers().toArray();
        assertEquals(List.of("traceparent", "user-id", "x-pii-email", "x-pii-phone"),
                Arrays.stream(stored).map(Header::key).toList());
        assertArrayEquals(utf8("00-4bf92f3577b34da6-01"), stored[0].value(), "an unlisted header stays plaintext");
        for (int i : new int[]{1, 2}) {
            assertArrayEquals(HEADER_ENVELOPE_PREFIX, Arrays.copyOf(stored[i].value(), 5), stored[i].key() + " at rest");
        }
        assertFalse(text(stored[1].value()).contains("4711"), text(stored[1].value()));
        assertFalse(text(stored[2].value()).contains("alice"), text(stored[2].value()));
        assertNull(stored[3].value(), "a null header value stays null");
        assertFalse(text(atRest.getFirst().value()).contains("order 1"));

        // And a consumer through Envoy gets every header back as sent
        List<ConsumerRecord<byte[], byte[]>> seen = mesh.readThroughEnvoy(topic, Map.of());
        assertEquals(1, seen.size());
        assertEquals("order 1", text(seen.getFirst().value()));
        Header[] expected = sent().toArray();
        Header[] got = seen.getFirst().headers().toArray();
        assertEquals(expected.length, got.length);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i].key(), got[i].key());
            assertArrayEquals(expected[i].value(), got[i].value(), expected[i].key());
        }
    }

    @Test
    void givenHeaderEnvelopeMovedToAnotherHeaderName_whenConsumedThroughEnvoy_thenPollFailsAndNeverYieldsPlaintext()
            throws Exception {
        // Given a record produced through Envoy, and a copy written straight to the broker with user-id's envelope
        // moved under x-pii-email (also a listed header)
        String topic = mesh.createTopic(LocalMesh.HEADERS_TOPIC_PREFIX + "moved", 1);
        produceThroughEnvoy(topic, "order 2");
        ConsumerRecord<byte[], byte[]> original = mesh.readDirect(topic).getFirst();
        Header[] stored = original.headers().toArray();
        Headers moved = new RecordHeaders(new Header[]{new RecordHeader("x-pii-email", stored[1].value())});
        try (KafkaProducer<byte[], byte[]> direct = mesh.producerDirect(Map.of())) {
            direct.send(new ProducerRecord<>(topic, null, utf8("k"), original.value(), moved)).get(30, TimeUnit.SECONDS);
        }

        // When a consumer reads the moved record through Envoy
        try (KafkaConsumer<byte[], byte[]> consumer = mesh.consumerThroughEnvoy(Map.of())) {
            TopicPartition tp = new TopicPartition(topic, 0);
            consumer.assign(List.of(tp));
            consumer.seek(tp, 1);

            // Then poll fails (CORRUPT_MESSAGE, as for a value that does not decrypt) instead of returning the record
            KafkaException error = assertThrows(KafkaException.class, () -> pollUntilErrorOrRecords(consumer),
                    "poll through Envoy of a header envelope under another name");
            assertEquals(-1, String.valueOf(error.getMessage()).indexOf("customer-4711"), "error leaks the plaintext");
        }
    }

    /** One record with the {@link #sent} headers, through Envoy. */
    private void produceThroughEnvoy(String topic, String value) throws Exception {
        try (KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Map.of())) {
            producer.send(new ProducerRecord<>(topic, null, utf8("k"), utf8(value), sent())).get(30, TimeUnit.SECONDS);
        }
    }

    /** Polls until poll throws; returning any record fails the test, and so does silence until the timeout. */
    private static void pollUntilErrorOrRecords(KafkaConsumer<byte[], byte[]> consumer) {
        long deadline = System.nanoTime() + ERROR_TIMEOUT.toNanos();
        while (System.nanoTime() - deadline < 0) {
            ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(200));
            for (ConsumerRecord<byte[], byte[]> r : records) {
                fail("poll returned a record instead of an error: headers " + Arrays.toString(r.headers().toArray()));
            }
        }
        fail("poll stayed silent for " + ERROR_TIMEOUT + " instead of reporting the undecryptable header");
    }
}
