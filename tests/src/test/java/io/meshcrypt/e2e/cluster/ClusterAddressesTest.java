package io.meshcrypt.e2e.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.QuorumInfo;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Every broker address a Java client learns through the mesh from the 3-broker cluster is one of the sidecar's broker
 * listeners, never a broker's own: Metadata (brokers, leaders, replicas, ISRs), DescribeCluster, FindCoordinator; and
 * DescribeQuorum names no controller's.
 */
class ClusterAddressesTest {

    private static ClusterMesh mesh;

    @BeforeAll
    static void cluster() {
        mesh = ClusterMesh.shared();
    }

    private static String address(Node n) {
        return n.host() + ":" + n.port();
    }

    /** The addresses are exactly the sidecar's three broker listeners, each for its own broker id. */
    private static void assertSidecarListeners(Collection<Node> nodes, String what) {
        Map<Integer, String> listeners = mesh.sidecarListeners();
        for (Node n : nodes) {
            assertEquals(listeners.get(n.id()), address(n), what + ": broker " + n.id());
            assertTrue(!mesh.brokerAddresses().contains(address(n)), what + " hands out a broker's own address " + address(n));
        }
    }

    @Test
    void givenAThreeBrokerCluster_whenAClientReadsMetadataThroughTheMesh_thenItsPartitionsNameThreeBrokersEachAtItsSidecarListener() {
        String topic = mesh.createTopic("addresses", 3);

        List<PartitionInfo> partitions;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(ClusterTraffic.consumerProps(mesh.kafkaBootstrap(), null))) {
            partitions = consumer.partitionsFor(topic, ClusterMesh.CLIENT_TIMEOUT);
        }

        Set<Node> nodes = new HashSet<>();
        for (PartitionInfo p : partitions) {
            nodes.add(p.leader());
            nodes.addAll(List.of(p.replicas()));
            nodes.addAll(List.of(p.inSyncReplicas()));
        }
        assertEquals(Set.of(1, 2, 3), nodes.stream().map(Node::id).collect(Collectors.toSet()));
        assertSidecarListeners(nodes, "Metadata");
    }

    @Test
    void givenAThreeBrokerCluster_whenAnAdminDescribesTheClusterThroughTheMesh_thenItListsThreeBrokersEachAtItsSidecarListener()
            throws Exception {
        try (Admin admin = ClusterMesh.admin(mesh.kafkaBootstrap())) {
            Collection<Node> nodes = admin.describeCluster().nodes().get(30, TimeUnit.SECONDS);
            Node controller = admin.describeCluster().controller().get(30, TimeUnit.SECONDS);

            assertEquals(Set.of(1, 2, 3), nodes.stream().map(Node::id).collect(Collectors.toSet()));
            assertSidecarListeners(nodes, "DescribeCluster");
            assertSidecarListeners(List.of(controller), "DescribeCluster controller");
        }
    }

    @Test
    void givenAGroupWithCommittedOffsets_whenItsCoordinatorIsLookedUpThroughTheMesh_thenItIsAtItsSidecarListener() throws Exception {
        String topic = mesh.createTopic("coordinator", 1);
        String group = "coordinator-" + topic;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(ClusterTraffic.consumerProps(mesh.kafkaBootstrap(), group))) {
            // committing offsets asks FindCoordinator first
            consumer.commitSync(Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(0)));
        }

        try (Admin admin = ClusterMesh.admin(mesh.kafkaBootstrap())) {
            ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get(30, TimeUnit.SECONDS).get(group);

            assertSidecarListeners(List.of(d.coordinator()), "FindCoordinator");
        }
    }

    @Test
    void givenAThreeVoterQuorum_whenAnAdminDescribesItThroughTheMesh_thenItSeesTheVotersButNoControllerAddress() throws Exception {
        try (Admin admin = ClusterMesh.admin(mesh.kafkaBootstrap())) {
            QuorumInfo quorum = admin.describeMetadataQuorum().quorumInfo().get(30, TimeUnit.SECONDS);

            assertEquals(Set.of(1, 2, 3), quorum.voters().stream().map(QuorumInfo.ReplicaState::replicaId).collect(Collectors.toSet()));
            // DescribeQuorum v2 names each controller's own listener: no sidecar fronts one, so none may reach a client
            List<String> endpoints = quorum.nodes().values().stream().flatMap(n -> n.endpoints().stream())
                    .map(e -> e.host() + ":" + e.port()).toList();
            assertEquals(List.of(), endpoints, "controller addresses handed to a client of the mesh");
        }
    }
}
