package io.meshcrypt.e2e;

import static io.meshcrypt.e2e.support.Records.text;
import static io.meshcrypt.e2e.support.Records.utf8;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.meshcrypt.e2e.support.Await;
import io.meshcrypt.e2e.support.Envelope;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.e2e.support.MeshExtension;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** Share groups (KIP-932) read through ShareFetch, which names topics by id only: values must decrypt too. */
@ExtendWith(MeshExtension.class)
class ShareGroupTest {

    private final LocalMesh mesh;

    ShareGroupTest(LocalMesh mesh) {
        this.mesh = mesh;
    }

    @Test
    void givenEncryptedTopic_whenShareConsumerReadsThroughEnvoy_thenItGetsThePlaintext() throws Exception {
        // Given records produced through Envoy (ciphertext at rest) and a share group starting at the earliest offset
        String topic = mesh.createTopic("share", 2);
        List<String> sent = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Map.of())) {
            for (int i = 0; i < 20; i++) {
                String value = "share-value-" + i;
                sent.add(value);
                producer.send(new ProducerRecord<>(topic, utf8("k" + i), utf8(value)));
            }
            producer.flush();
        }
        for (ConsumerRecord<byte[], byte[]> r : mesh.readDirect(topic)) {
            Envelope.assertEnvelopeOf(utf8(text(r.key()).replace("k", "share-value-")), r.value(), topic + "@" + r.offset());
        }
        String group = "share-" + topic;
        mesh.admin().incrementalAlterConfigs(Map.of(new ConfigResource(ConfigResource.Type.GROUP, group),
                List.of(new AlterConfigOp(new ConfigEntry("share.auto.offset.reset", "earliest"), AlterConfigOp.OpType.SET))))
                .all().get(30, TimeUnit.SECONDS);

        // When a share consumer reads the topic through Envoy
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, mesh.kafkaBootstrap());
        props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        Set<String> received = new HashSet<>();
        try (KafkaShareConsumer<byte[], byte[]> consumer =
                     new KafkaShareConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            consumer.subscribe(List.of(topic));
            Await.until(Duration.ofSeconds(60), () -> {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                    received.add(text(r.value()));
                }
                return received.size() >= sent.size();
            }, () -> "share consumer to receive " + sent.size() + " records, got " + received.size());
        }

        // Then it received every value as plaintext, and nothing else
        assertEquals(new HashSet<>(sent), received);
    }
}
