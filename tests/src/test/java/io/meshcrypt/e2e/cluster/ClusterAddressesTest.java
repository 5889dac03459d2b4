package io.meshcrypt.e2e.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.e2e.support.RawPeer;
import java.nio.ByteBuffer;
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
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.message.ProduceResponseData;
import org.apache.kafka.common.message.RequestHeaderData;
import org.apache.kafka.common.message.ResponseHeaderData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.protocol.ObjectSerializationCache;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Every broker address a Java client learns through the mesh from the 3-broker cluster is one of the sidecar's broker
 * listeners, never a broker's own: Metadata (brokers, leaders, replicas, ISRs), DescribeCluster, FindCoordinator, the
 * KIP-951 leader endpoint of a Produce answered NOT_LEADER_OR_FOLLOWER; and DescribeQuorum names no controller's.
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
    void givenAProduceSentToAFollower_whenTheBrokerAnswersNotLeaderWithTheLeadersEndpoint_thenThatEndpointIsItsSidecarListener()
            throws Exception {
        String topic = mesh.createTopic("kip951", 1);
        int leader = mesh.describe(topic).partitions().getFirst().leader().id();
        int follower = leader % ClusterMesh.BROKERS + 1;
        short version = 12;
        ProduceRequestData produce = new ProduceRequestData().setAcks((short) -1).setTimeoutMs(10_000);
        produce.topicData().add(new ProduceRequestData.TopicProduceData().setName(topic).setPartitionData(List.of(
                new ProduceRequestData.PartitionProduceData().setIndex(0)
                        .setRecords(MemoryRecords.withRecords(Compression.NONE, new SimpleRecord("kip-951".getBytes()))))));

        // a Produce v12 (the newest the filter offers) through the sidecar's listener of a follower of the partition
        ProduceResponseData answer;
        try (RawPeer peer = new RawPeer(ClusterMesh.PORTS.envoyBroker(follower))) {
            assertTrue(peer.send(frame(ApiKeys.PRODUCE, version, produce)), "the sidecar closed the connection");
            ByteBuffer response = peer.readFrame(ClusterMesh.CLIENT_TIMEOUT);
            assertTrue(response != null, "no Produce response through the sidecar");
            ByteBufferAccessor in = new ByteBufferAccessor(response);
            new ResponseHeaderData(in, ApiKeys.PRODUCE.responseHeaderVersion(version));
            answer = new ProduceResponseData(in, version);
        }

        // KIP-951: NOT_LEADER_OR_FOLLOWER, the leader's id and its endpoint, which is the sidecar's listener of it
        ProduceResponseData.PartitionProduceResponse partition = answer.responses().iterator().next().partitionResponses().getFirst();
        assertEquals(Errors.NOT_LEADER_OR_FOLLOWER.code(), partition.errorCode());
        assertEquals(leader, partition.currentLeader().leaderId());
        List<Node> endpoints = answer.nodeEndpoints().stream().map(e -> new Node(e.nodeId(), e.host(), e.port())).toList();
        assertEquals(List.of(leader), endpoints.stream().map(Node::id).toList(), "node endpoints");
        assertSidecarListeners(endpoints, "Produce v12 node endpoints");
    }

    /** A request frame: size, header (client id "cluster-e2e"), body. */
    private static byte[] frame(ApiKeys api, short version, ApiMessage body) {
        RequestHeaderData header = new RequestHeaderData().setRequestApiKey(api.id).setRequestApiVersion(version)
                .setCorrelationId(1).setClientId("cluster-e2e");
        short headerVersion = api.requestHeaderVersion(version);
        ObjectSerializationCache cache = new ObjectSerializationCache();
        int size = header.size(cache, headerVersion) + body.size(cache, version);
        ByteBuffer out = ByteBuffer.allocate(4 + size).putInt(size);
        ByteBufferAccessor writer = new ByteBufferAccessor(out);
        header.write(writer, cache, headerVersion);
        body.write(writer, cache, version);
        return out.array();
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
