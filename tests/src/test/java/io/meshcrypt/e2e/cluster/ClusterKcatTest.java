package io.meshcrypt.e2e.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.e2e.support.Envelope;
import io.meshcrypt.e2e.support.LocalMesh;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** librdkafka (kcat) through the mesh on the 3-broker cluster: it learns the sidecar's listeners and follows the leaders. */
class ClusterKcatTest {

    private static ClusterMesh mesh;

    @BeforeAll
    static void cluster() {
        ClusterMesh.kcatBinary();
        mesh = ClusterMesh.shared();
    }

    @Test
    void givenKcatThroughTheMesh_whenItListsTheCluster_thenItSeesThreeBrokersAtTheSidecarListenersOnly() throws Exception {
        String listing = kcat("", "-b", mesh.kafkaBootstrap(), "-L");

        assertTrue(listing.contains(" 3 brokers:"), listing);
        mesh.sidecarListeners().forEach((id, address) -> assertTrue(listing.contains("broker " + id + " at " + address), listing));
        mesh.brokerAddresses().forEach(address -> assertTrue(!listing.contains(address), "a broker's own address: " + listing));
    }

    @Test
    void givenKcatThroughTheMesh_whenItProducesToAndConsumesFromThreePartitions_thenPlaintextBackAndEnvelopesAtRest() throws Exception {
        String topic = mesh.createTopic("kcat", 3);
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 90; i++) {
            lines.add("key-" + i + "|kcat secret " + i + " on a 3-broker cluster");
        }

        kcat(String.join("\n", lines) + "\n", "-b", mesh.kafkaBootstrap(), "-P", "-t", topic, "-K", "|", "-X", "acks=all");
        String consumed = kcat("", "-b", mesh.kafkaBootstrap(), "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k|%s\\n");

        // Then kcat reads every line back (partition by partition, so compared as sets) and the brokers hold envelopes
        assertEquals(new TreeSet<>(lines), new TreeSet<>(consumed.lines().toList()));
        assertEquals(lines.size(), consumed.lines().count(), "records consumed");
        List<ConsumerRecord<byte[], byte[]>> atRest;
        try (KafkaConsumer<byte[], byte[]> direct = new KafkaConsumer<>(ClusterTraffic.consumerProps(mesh.brokerDirect(), null))) {
            atRest = LocalMesh.drain(direct, topic);
        }
        assertEquals(lines.size(), atRest.size(), "records at rest");
        Set<Integer> partitions = new TreeSet<>();
        for (ConsumerRecord<byte[], byte[]> r : atRest) {
            String key = new String(r.key(), StandardCharsets.UTF_8);
            String line = lines.stream().filter(l -> l.startsWith(key + "|")).findFirst().orElseThrow();
            Envelope.assertEnvelopeOf(line.substring(key.length() + 1).getBytes(StandardCharsets.UTF_8), r.value(),
                    topic + "-" + r.partition() + "@" + r.offset());
            partitions.add(r.partition());
        }
        assertEquals(Set.of(0, 1, 2), partitions, "kcat spread its keys over the three partitions (three leaders)");
    }

    /** Runs kcat with {@code stdin}; its output, failing with its error output unless it exits 0. */
    private static String kcat(String stdin, String... args) throws IOException, InterruptedException {
        ClusterMesh.Kcat run = ClusterMesh.kcat(stdin, args);
        assertEquals(0, run.exit(), () -> "kcat " + String.join(" ", args) + " failed: " + run.err());
        return run.out();
    }
}
