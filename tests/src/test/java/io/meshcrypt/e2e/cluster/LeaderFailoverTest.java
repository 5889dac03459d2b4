package io.meshcrypt.e2e.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import org.apache.kafka.common.Node;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Brokers of the 3-broker cluster fail under traffic through the mesh (an idempotent producer with acks=all and a
 * consumer group, Java clients, through the shared sidecar): the clients follow the new leaders through their sidecar's
 * listeners, and every acknowledged record is stored once, encrypted, and consumed. Each test restarts what it stopped,
 * so the next finds three brokers in sync.
 */
class LeaderFailoverTest {

    private static final int PARTITIONS = 3;
    private static ClusterMesh mesh;

    @BeforeAll
    static void cluster() {
        mesh = ClusterMesh.shared();
    }

    @Test
    void givenTrafficThroughTheMesh_whenThePartitionLeaderIsKilled_thenClientsFollowTheNewLeaderAndNoAcknowledgedRecordIsLostOrDuplicated()
            throws Exception {
        String topic = mesh.createTopic("failover", PARTITIONS);
        int victim = mesh.describe(topic).partitions().getFirst().leader().id();
        long started = System.nanoTime();
        try (ClusterTraffic traffic = new ClusterTraffic(mesh, topic)) {
            traffic.awaitMoreAcked(300);
            assertEquals(mesh.sidecarListeners().get(victim), traffic.producerLeader(0), "the producer's leader before the kill");

            // When the leader of partition 0 is killed (-9: no controlled shutdown)
            mesh.kill(victim);
            long killed = System.nanoTime();
            int successor = awaitNewLeader(topic, victim);
            traffic.awaitMoreAckedOn(0, 150);
            double followedAfter = (System.nanoTime() - killed) / 1e9;
            traffic.awaitMoreAcked(300);

            // Then the producer sends to the new leader, through its sidecar listener
            assertNotEquals(victim, successor);
            assertEquals(mesh.sidecarListeners().get(successor), traffic.producerLeader(0), "the producer's leader after the kill");

            // and after the killed broker is back and in sync, the records are all there, once, encrypted
            mesh.start(victim);
            mesh.awaitFullIsr(List.of(topic));
            traffic.awaitMoreAcked(200);
            String figures = traffic.assertExactlyOnce();
            System.out.printf("cluster failover: killed broker %d (leader of %s-0), new leader %d, 150 more records of partition 0"
                    + " acknowledged %.1f s after the kill; %s; test %.1f s%n", victim, topic, successor, followedAfter, figures,
                    (System.nanoTime() - started) / 1e9);
        }
    }

    @Test
    void givenTrafficThroughTheMesh_whenAllThreeBrokersRestartOneByOne_thenNoAcknowledgedRecordIsLostOrDuplicated() throws Exception {
        String topic = mesh.createTopic("rolling", PARTITIONS);
        long started = System.nanoTime();
        try (ClusterTraffic traffic = new ClusterTraffic(mesh, topic)) {
            traffic.awaitMoreAcked(200);

            // When each broker in turn stops gracefully, starts again and catches up
            for (int id = 1; id <= ClusterMesh.BROKERS; id++) {
                mesh.stop(id);
                assertTrue(!mesh.running(id), "broker " + id + " still runs after ./meshcrypt stop");
                traffic.awaitMoreAcked(200);
                mesh.start(id);
                mesh.awaitFullIsr(List.of(topic));
                traffic.awaitMoreAcked(200);
            }

            // Then every acknowledged record is there once, encrypted, and the group consumed it
            String figures = traffic.assertExactlyOnce();
            System.out.printf("cluster rolling restart of %d brokers: %s; test %.1f s%n", ClusterMesh.BROKERS, figures,
                    (System.nanoTime() - started) / 1e9);
        }
    }

    /** The new leader of partition 0 once the controller has fenced {@code victim}. */
    private static int awaitNewLeader(String topic, int victim) {
        long deadline = System.nanoTime() + Duration.ofMinutes(1).toNanos();
        while (System.nanoTime() - deadline < 0) {
            try {
                Node leader = mesh.describe(topic).partitions().getFirst().leader();
                if (leader != null && leader.id() != victim) {
                    return leader.id();
                }
            } catch (IllegalStateException e) {
                // the admin client's broker was the killed one: ask again
            }
            ClusterMesh.sleep(200);
        }
        throw new AssertionError("partition 0 of " + topic + " still led by the killed broker " + victim + " after 1 min");
    }
}
