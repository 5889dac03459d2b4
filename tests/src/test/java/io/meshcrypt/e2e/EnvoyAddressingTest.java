package io.meshcrypt.e2e;

import static io.meshcrypt.e2e.support.Records.utf8;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import io.meshcrypt.e2e.support.Await;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.e2e.support.MeshExtension;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Explicit-proxy mode only protects data if clients never learn the broker's own address: every
 * address the cluster hands out through Envoy (Metadata, DescribeCluster, FindCoordinator) must be Envoy's.
 */
@ExtendWith(MeshExtension.class)
class EnvoyAddressingTest {

    private final LocalMesh mesh;
    private final int directPort;

    EnvoyAddressingTest(LocalMesh mesh) {
        this.mesh = mesh;
        String direct = mesh.brokerDirect();
        this.directPort = Integer.parseInt(direct.substring(direct.lastIndexOf(':') + 1));
    }

    @Test
    void givenClientsBootstrappedOnEnvoy_whenTheyLearnBrokerAndLeaderAddresses_thenNoneIsTheBrokersOwn() throws Exception {
        // Given a topic, and clients that bootstrap on Envoy
        String topic = mesh.createTopic("addressing", 2);
        try (Admin admin = mesh.adminThroughEnvoy();
             KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Map.of())) {
            // When they ask for the cluster's brokers (DescribeCluster / Metadata) and the topic's leaders
            Collection<Node> brokers = admin.describeCluster().nodes().get(30, TimeUnit.SECONDS);
            producer.send(new ProducerRecord<>(topic, utf8("k"), utf8("v"))).get(30, TimeUnit.SECONDS);
            List<PartitionInfo> partitions = producer.partitionsFor(topic);

            // Then every address points at Envoy, not at the broker
            assertFalse(brokers.isEmpty(), "brokers described through Envoy");
            for (Node broker : brokers) {
                assertNotEquals(directPort, broker.port(), "DescribeCluster through Envoy exposes the broker: " + broker);
            }
            for (PartitionInfo p : partitions) {
                assertNotEquals(directPort, p.leader().port(), "Metadata through Envoy exposes the broker: " + p);
            }
        }
    }

    @Test
    void givenGroupMemberJoinedThroughEnvoy_whenTheCoordinatorIsLookedUp_thenItsAddressIsEnvoys() throws Exception {
        // Given a group whose member joined through Envoy
        String topic = mesh.createTopic("coordinator", 1);
        String group = "e2e-coordinator-" + UUID.randomUUID();
        try (KafkaConsumer<byte[], byte[]> consumer = mesh.consumerThroughEnvoy(Map.of(ConsumerConfig.GROUP_ID_CONFIG, group));
             Admin admin = mesh.adminThroughEnvoy()) {
            consumer.subscribe(List.of(topic));
            Await.until(LocalMesh.CLIENT_TIMEOUT, () -> {
                consumer.poll(Duration.ofMillis(100));
                return !consumer.assignment().isEmpty();
            }, () -> "consumer of group " + group + " getting its assignment through Envoy");

            // When the group's coordinator is looked up through Envoy (FindCoordinator)
            ConsumerGroupDescription description = admin.describeConsumerGroups(List.of(group))
                    .describedGroups().get(group).get(30, TimeUnit.SECONDS);

            // Then it is reached through Envoy as well
            assertNotEquals(directPort, description.coordinator().port(),
                    "FindCoordinator through Envoy exposes the broker: " + description.coordinator());
        }
    }
}
