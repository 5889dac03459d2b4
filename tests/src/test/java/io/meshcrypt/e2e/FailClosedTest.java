package io.meshcrypt.e2e;

import static io.meshcrypt.e2e.support.Records.text;
import static io.meshcrypt.e2e.support.Records.utf8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.e2e.support.Await;
import io.meshcrypt.e2e.support.Envelope;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.e2e.support.MeshExtension;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** With the filter-service gone, Envoy must stop traffic rather than forward plaintext (failure_mode_allow: false). */
@ExtendWith(MeshExtension.class)
class FailClosedTest {

    private static final String FILTER_SERVICE = "filter-service";
    private static final Duration RECOVERY_TIMEOUT = Duration.ofSeconds(90);

    private final LocalMesh mesh;

    FailClosedTest(LocalMesh mesh) {
        this.mesh = mesh;
    }

    @Test
    void givenSteadyProducer_whenFilterServiceKilledAndRestarted_thenNoPlaintextEverAtRestAndProducerRecovers() throws Exception {
        // Given a producer sending a steady stream through Envoy, with a delivery timeout that outlasts the outage
        String topic = mesh.createTopic("fail-closed", 1);
        AtomicInteger nextSeq = new AtomicInteger();
        AtomicInteger highestAcked = new AtomicInteger(-1);
        Set<Integer> acked = ConcurrentHashMap.newKeySet();
        Map<Integer, Exception> failed = new ConcurrentHashMap<>();
        ScheduledExecutorService stream = Executors.newSingleThreadScheduledExecutor();
        boolean restarted = false;
        KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Map.of(
                ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 120_000,
                ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 5_000,
                ProducerConfig.MAX_BLOCK_MS_CONFIG, 60_000,
                ProducerConfig.LINGER_MS_CONFIG, 0));
        try {
            stream.scheduleWithFixedDelay(() -> {
                int seq = nextSeq.getAndIncrement();
                try {
                    producer.send(new ProducerRecord<>(topic, utf8("steady"), utf8(value(seq))), (md, e) -> {
                        if (e == null) {
                            acked.add(seq);
                            highestAcked.accumulateAndGet(seq, Math::max);
                        } else {
                            failed.put(seq, e);
                        }
                    });
                } catch (RuntimeException e) {
                    // an exception escaping the task would silently cancel the schedule
                    failed.put(seq, e);
                }
            }, 0, 10, TimeUnit.MILLISECONDS);
            Await.until(Duration.ofSeconds(30), () -> acked.size() >= 20, () -> acked.size() + " records acked before the kill");

            // When the filter-service is killed with SIGKILL while the stream goes on
            double closesBeforeKill = connectionCloses(producer);
            killForcibly(mesh.pid(FILTER_SERVICE));
            // the producer has felt the outage once Envoy dropped its connection and refused a reconnect
            // (send() itself may block meanwhile: the producer cannot refresh metadata either)
            Await.until(Duration.ofSeconds(30), () -> connectionCloses(producer) >= closesBeforeKill + 2,
                    () -> "the producer's connections through Envoy closing during the outage (closes "
                            + connectionCloses(producer) + ", before the kill " + closesBeforeKill + ")");

            // Then nothing the broker stored during the outage is plaintext
            assertAllEnvelopes(mesh.readDirect(topic), "during the outage");

            // When the filter-service is started again
            mesh.start(FILTER_SERVICE);
            restarted = true;
            int sentAtRestart = nextSeq.get();
            Await.until(RECOVERY_TIMEOUT, () -> highestAcked.get() >= sentAtRestart,
                    () -> "an ack for a record sent after the restart (sent " + nextSeq.get() + ", acked "
                            + acked.size() + ", failed " + failed.size() + ", highest acked " + highestAcked.get() + ")");
            stream.shutdown();
            assertTrue(stream.awaitTermination(10, TimeUnit.SECONDS), "producer stream stopped");
            producer.flush();
            int sent = nextSeq.get();

            // Then every send completed, those after the restart all succeeded
            assertEquals(sent, acked.size() + failed.size(), "completed sends");
            Map<Integer, Exception> failedAfterRestart = failed.entrySet().stream()
                    .filter(e -> e.getKey() >= sentAtRestart)
                    .collect(Collectors.toMap(Map.Entry::getKey, Map.Entry::getValue));
            assertTrue(failedAfterRestart.isEmpty(), () -> "sends after the restart failed: " + failedAfterRestart);
        } finally {
            stream.shutdownNow();
            if (!restarted) {
                // later test classes share this mesh; restart before close() waits on undeliverable sends
                mesh.start(FILTER_SERVICE);
            }
            producer.close(Duration.ofSeconds(30));
        }

        // and everything stored is ciphertext that still decrypts, acked records included
        List<ConsumerRecord<byte[], byte[]>> direct = mesh.readDirect(topic);
        assertAllEnvelopes(direct, "after recovery");
        List<ConsumerRecord<byte[], byte[]>> consumed = mesh.readThroughEnvoy(topic, Map.of());
        assertEquals(direct.size(), consumed.size(), "records readable through Envoy");
        Set<String> consumedValues = new HashSet<>();
        consumed.forEach(r -> consumedValues.add(text(r.value())));
        Set<String> missing = acked.stream().map(FailClosedTest::value)
                .filter(v -> !consumedValues.contains(v)).collect(Collectors.toSet());
        assertTrue(missing.isEmpty(), () -> missing.size() + " acked records not readable through Envoy, e.g. "
                + missing.stream().limit(5).toList());
    }

    private static double connectionCloses(KafkaProducer<byte[], byte[]> producer) {
        return producer.metrics().entrySet().stream()
                .filter(e -> e.getKey().group().equals("producer-metrics") && e.getKey().name().equals("connection-close-total"))
                .mapToDouble(e -> ((Number) e.getValue().metricValue()).doubleValue())
                .sum();
    }

    private static String value(int seq) {
        return "steady secret " + seq;
    }

    private static void assertAllEnvelopes(List<ConsumerRecord<byte[], byte[]>> atRest, String when) {
        for (ConsumerRecord<byte[], byte[]> r : atRest) {
            String where = r.topic() + "@" + r.offset() + " " + when;
            Envelope.assertEnvelope(r.value(), where);
            Envelope.assertNoPlaintext(utf8("steady secret"), r.value(), where);
        }
    }

    private static void killForcibly(long pid) throws Exception {
        ProcessHandle process = ProcessHandle.of(pid)
                .orElseThrow(() -> new AssertionError("filter-service pid " + pid + " is not running"));
        // a wrapper script must not leave the JVM serving behind it
        List<ProcessHandle> tree = process.descendants().toList();
        assertTrue(process.destroyForcibly(), "SIGKILL sent to filter-service " + pid);
        tree.forEach(ProcessHandle::destroyForcibly);
        process.onExit().get(10, TimeUnit.SECONDS);
        for (ProcessHandle child : tree) {
            child.onExit().get(10, TimeUnit.SECONDS);
        }
    }
}
