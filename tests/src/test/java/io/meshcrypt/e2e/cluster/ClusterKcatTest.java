package io.meshcrypt.e2e.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.e2e.support.Envelope;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.testsupport.Prerequisite;
import java.io.File;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** librdkafka (kcat) through the mesh on the 3-broker cluster: it learns the sidecar's listeners and follows the leaders. */
class ClusterKcatTest {

    private static Path kcat;
    private static ClusterMesh mesh;

    @BeforeAll
    static void cluster() {
        kcat = List.of(System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)).stream()
                .map(dir -> Path.of(dir, "kcat")).filter(Files::isExecutable).findFirst().orElse(null);
        Prerequisite.require(kcat != null, "kcat is not installed");
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

    /** Runs kcat with {@code stdin}; returns stdout, failing with stderr if it fails or hangs. */
    private static String kcat(String stdin, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(kcat.toString()));
        command.addAll(List.of(args));
        Path err = Files.createTempFile("kcat", ".err");
        try {
            Process p = new ProcessBuilder(command).redirectError(err.toFile()).start();
            try (OutputStream in = p.getOutputStream()) {
                in.write(stdin.getBytes(StandardCharsets.UTF_8));
            }
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("kcat " + String.join(" ", args) + " hung; stderr: " + Files.readString(err));
            }
            assertEquals(0, p.exitValue(), () -> "kcat " + String.join(" ", args) + " failed: " + read(err));
            return out;
        } finally {
            Files.deleteIfExists(err);
        }
    }

    private static String read(Path f) {
        try {
            return Files.readString(f);
        } catch (IOException e) {
            return e.toString();
        }
    }
}
