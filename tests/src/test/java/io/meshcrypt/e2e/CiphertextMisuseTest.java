package io.meshcrypt.e2e;

import static io.meshcrypt.e2e.support.Records.text;
import static io.meshcrypt.e2e.support.Records.utf8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.fail;

import io.meshcrypt.e2e.support.Envelope;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.e2e.support.MeshExtension;
import java.time.Duration;
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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** Ciphertext is bound to its topic: replayed elsewhere it must fail loudly, not decrypt and not vanish. */
@ExtendWith(MeshExtension.class)
class CiphertextMisuseTest {

    private static final Duration ERROR_TIMEOUT = Duration.ofSeconds(20);

    private final LocalMesh mesh;

    CiphertextMisuseTest(LocalMesh mesh) {
        this.mesh = mesh;
    }

    @Test
    void givenEnvelopeCopiedDirectlyIntoAnotherTopic_whenConsumedThroughEnvoy_thenPollFailsAndNeverYieldsPlaintext() throws Exception {
        // Given an envelope taken from the broker and written, bypassing Envoy, into another topic
        String source = mesh.createTopic("misuse-source", 1);
        String target = mesh.createTopic("misuse-target", 1);
        String plaintext = "topic-bound secret";
        try (KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Map.of())) {
            producer.send(new ProducerRecord<>(source, utf8("k"), utf8(plaintext))).get(30, TimeUnit.SECONDS);
        }
        List<ConsumerRecord<byte[], byte[]>> atRest = mesh.readDirect(source);
        assertEquals(1, atRest.size(), "records at rest in the source topic");
        byte[] envelope = atRest.get(0).value();
        Envelope.assertEnvelopeOf(utf8(plaintext), envelope, source + "@0");
        try (KafkaProducer<byte[], byte[]> direct = mesh.producerDirect(Map.of())) {
            direct.send(new ProducerRecord<>(target, utf8("k"), envelope)).get(30, TimeUnit.SECONDS);
        }

        // When a consumer reads the target topic through Envoy
        try (KafkaConsumer<byte[], byte[]> consumer = mesh.consumerThroughEnvoy(Map.of())) {
            TopicPartition tp = new TopicPartition(target, 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));

            // Then poll throws instead of returning the plaintext, the envelope, or nothing
            KafkaException error = assertThrows(KafkaException.class, () -> pollUntilErrorOrRecords(consumer),
                    "poll through Envoy on a topic holding a foreign envelope");
            assertEquals(-1, String.valueOf(error.getMessage()).indexOf(plaintext), "error message leaks the plaintext");
        }
    }

    /** Polls until poll throws; returning any record fails the test, and so does silence until the timeout. */
    private static void pollUntilErrorOrRecords(KafkaConsumer<byte[], byte[]> consumer) {
        long deadline = System.nanoTime() + ERROR_TIMEOUT.toNanos();
        while (System.nanoTime() - deadline < 0) {
            ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(200));
            for (ConsumerRecord<byte[], byte[]> r : records) {
                fail("poll returned a record instead of an error: value " + Envelope.preview(r.value())
                        + " (\"" + text(r.value()) + "\")");
            }
        }
        fail("poll stayed silent for " + ERROR_TIMEOUT + " instead of reporting the undecryptable value");
    }
}
