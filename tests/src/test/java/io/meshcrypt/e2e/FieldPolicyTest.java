package io.meshcrypt.e2e;

import static io.meshcrypt.e2e.support.Records.text;
import static io.meshcrypt.e2e.support.Records.utf8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.meshcrypt.e2e.support.Envelope;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.e2e.support.MeshExtension;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** A topic with a field-level policy: only the listed JSON fields are ciphertext at rest. */
@ExtendWith(MeshExtension.class)
class FieldPolicyTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private final LocalMesh mesh;

    FieldPolicyTest(LocalMesh mesh) {
        this.mesh = mesh;
    }

    @Test
    void givenFieldPolicy_whenJsonProducedThroughEnvoy_thenOnlyListedFieldsAreEnvelopesAtRestAndConsumersSeeTheOriginal() throws Exception {
        // Given a topic whose policy encrypts /card/number and /ssn only
        String topic = mesh.createTopic(LocalMesh.FIELD_TOPIC_PREFIX + "orders", 1);
        String original = "{\"id\":42,\"card\":{\"number\":\"4111111111111111\",\"expiry\":\"12/29\"},"
                + "\"ssn\":\"078-05-1120\",\"amount\":12.50,\"tags\":[\"a\",\"b\"]}";

        // When it is produced through Envoy
        try (KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Map.of())) {
            producer.send(new ProducerRecord<>(topic, utf8("order-42"), utf8(original))).get(30, TimeUnit.SECONDS);
        }

        // Then at rest the listed fields are base64 envelopes and every other field is unchanged
        List<ConsumerRecord<byte[], byte[]>> atRest = mesh.readDirect(topic);
        assertEquals(1, atRest.size());
        String stored = text(atRest.get(0).value());
        assertFalse(stored.contains("4111111111111111"), stored);
        assertFalse(stored.contains("078-05-1120"), stored);
        JsonNode storedJson = JSON.readTree(stored);
        for (String field : LocalMesh.ENCRYPTED_FIELDS) {
            byte[] envelope = Base64.getDecoder().decode(storedJson.at(field).asText());
            Envelope.assertVersion(Envelope.MESH_DEFAULT_VERSION, envelope, field + " must hold an envelope at rest");
        }
        JsonNode originalJson = JSON.readTree(original);
        assertEquals(originalJson.get("id"), storedJson.get("id"));
        assertEquals(originalJson.at("/card/expiry"), storedJson.at("/card/expiry"));
        assertEquals(originalJson.get("amount"), storedJson.get("amount"));
        assertEquals(originalJson.get("tags"), storedJson.get("tags"));
        assertEquals("order-42", text(atRest.get(0).key()));

        // And a consumer through Envoy gets the original document back
        List<ConsumerRecord<byte[], byte[]>> seen = mesh.readThroughEnvoy(topic, Map.of());
        assertEquals(1, seen.size());
        assertEquals(originalJson, JSON.readTree(text(seen.get(0).value())));
    }
}
