package io.meshcrypt.e2e;

import static io.meshcrypt.e2e.support.Records.text;
import static io.meshcrypt.e2e.support.Records.utf8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.e2e.support.MeshExtension;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** A topic with keys: deterministic: equal keys are equal AES-SIV key envelopes at rest, plaintext to consumers. */
@ExtendWith(MeshExtension.class)
class DeterministicKeysTest {

    private static final byte[] KEY_ENVELOPE_HEADER = {0x00, 0x4D, 0x43, 0x4B, 0x01};
    private final LocalMesh mesh;

    DeterministicKeysTest(LocalMesh mesh) {
        this.mesh = mesh;
    }

    @Test
    void givenDeterministicKeyTopic_whenSameKeyProducedTwiceThroughEnvoy_thenOneCiphertextKeyAtRestAndPlaintextForConsumers()
            throws Exception {
        // Given a topic whose policy entry says keys: deterministic
        String topic = mesh.createTopic(LocalMesh.DETERMINISTIC_KEYS_TOPIC_PREFIX + "users", 1);

        // When two records with the same key, one with another key and one without a key are produced through Envoy
        try (KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Map.of())) {
            producer.send(new ProducerRecord<>(topic, utf8("user-7"), utf8("first"))).get(30, TimeUnit.SECONDS);
            producer.send(new ProducerRecord<>(topic, utf8("user-7"), utf8("second"))).get(30, TimeUnit.SECONDS);
            producer.send(new ProducerRecord<>(topic, utf8("user-8"), utf8("third"))).get(30, TimeUnit.SECONDS);
            producer.send(new ProducerRecord<>(topic, null, utf8("fourth"))).get(30, TimeUnit.SECONDS);
        }

        // Then at rest both user-7 records carry the same key envelope, which differs from the plaintext and user-8
        List<ConsumerRecord<byte[], byte[]>> atRest = mesh.readDirect(topic);
        assertEquals(4, atRest.size());
        byte[] first = atRest.get(0).key();
        assertArrayEquals(KEY_ENVELOPE_HEADER, Arrays.copyOf(first, 5), "key must be a key envelope at rest");
        assertArrayEquals(first, atRest.get(1).key());
        assertFalse(Arrays.equals(first, atRest.get(2).key()));
        assertFalse(text(first).contains("user-7"), text(first));
        assertNull(atRest.get(3).key());
        assertFalse(text(atRest.get(0).value()).contains("first"));

        // And consumers through Envoy get the plaintext keys and values
        List<ConsumerRecord<byte[], byte[]>> seen = mesh.readThroughEnvoy(topic, Map.of());
        assertEquals(4, seen.size());
        assertEquals(List.of("user-7", "user-7", "user-8"), seen.subList(0, 3).stream().map(r -> text(r.key())).toList());
        assertNull(seen.get(3).key());
        assertEquals(List.of("first", "second", "third", "fourth"), seen.stream().map(r -> text(r.value())).toList());
    }
}
