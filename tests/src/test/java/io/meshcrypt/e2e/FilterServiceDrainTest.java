package io.meshcrypt.e2e;

import static io.meshcrypt.e2e.support.Records.text;
import static io.meshcrypt.e2e.support.Records.utf8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.e2e.support.Await;
import io.meshcrypt.e2e.support.Envelope;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.e2e.support.MeshExtension;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * A graceful stop of the filter-service (SIGTERM, as Kubernetes sends on a rollout or a node drain) closes each Kafka
 * connection between two requests, through a real Envoy, instead of resetting it mid-exchange.
 */
@ExtendWith(MeshExtension.class)
class FilterServiceDrainTest {

    private static final String FILTER_SERVICE = "filter-service";
    private static final Pattern CONNECTION_END = Pattern.compile("connection ended: .* close=\"([^\"]*)\"");
    private static final String DRAINED = "drained: filter-service shutting down";

    private final LocalMesh mesh;

    FilterServiceDrainTest(LocalMesh mesh) {
        this.mesh = mesh;
    }

    @Test
    void givenAProducerAndAConsumerStreaming_whenTheFilterServiceStopsGracefully_thenTheirConnectionsAreDrainedNotResetAndNothingIsLost()
            throws Exception {
        // Given an idempotent producer and a consumer streaming through Envoy
        String topic = mesh.createTopic("drain", 1);
        AtomicInteger nextSeq = new AtomicInteger();
        Set<Integer> acked = ConcurrentHashMap.newKeySet();
        Map<Integer, Exception> failed = new ConcurrentHashMap<>();
        List<String> consumed = new CopyOnWriteArrayList<>();
        AtomicBoolean consuming = new AtomicBoolean(true);
        ScheduledExecutorService stream = Executors.newSingleThreadScheduledExecutor();
        Path log = mesh.logs().resolve("filter-service.log");
        long logBefore = Files.size(log);
        boolean started = true;
        KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Map.of(
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true,
                ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 120_000,
                ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 5_000,
                ProducerConfig.MAX_BLOCK_MS_CONFIG, 60_000,
                ProducerConfig.LINGER_MS_CONFIG, 0));
        Thread reader = new Thread(() -> {
            try (KafkaConsumer<byte[], byte[]> consumer = mesh.consumerThroughEnvoy(Map.of(
                    ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest"))) {
                consumer.assign(List.of(new TopicPartition(topic, 0)));
                consumer.seekToBeginning(List.of(new TopicPartition(topic, 0)));
                while (consuming.get()) {
                    for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                        consumed.add(text(r.value()));
                    }
                }
            }
        }, "drain-test-consumer");
        reader.setDaemon(true);
        try {
            reader.start();
            stream.scheduleWithFixedDelay(() -> {
                int seq = nextSeq.getAndIncrement();
                try {
                    producer.send(new ProducerRecord<>(topic, utf8("k"), utf8(value(seq))), (md, e) -> {
                        if (e == null) {
                            acked.add(seq);
                        } else {
                            failed.put(seq, e);
                        }
                    });
                } catch (RuntimeException e) {
                    failed.put(seq, e);
                }
            }, 0, 10, TimeUnit.MILLISECONDS);
            Await.until(Duration.ofSeconds(60), () -> acked.size() >= 20 && consumed.size() >= 10,
                    () -> acked.size() + " acked, " + consumed.size() + " consumed before the stop");

            // When the filter-service is stopped gracefully while both stream, then started again
            long stopStart = System.nanoTime();
            started = false;
            mesh.stop(FILTER_SERVICE);
            long stopMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - stopStart);
            String during = new String(Files.readAllBytes(log), StandardCharsets.UTF_8).substring((int) logBefore);
            mesh.start(FILTER_SERVICE);
            started = true;
            int sentAtRestart = nextSeq.get();
            Await.until(Duration.ofSeconds(90), () -> acked.stream().anyMatch(s -> s >= sentAtRestart),
                    () -> "an ack after the restart (acked " + acked.size() + ", failed " + failed.size() + ")");
            stream.shutdown();
            assertTrue(stream.awaitTermination(10, TimeUnit.SECONDS));
            producer.flush();
            Await.until(Duration.ofSeconds(60), () -> consumed.size() >= acked.size(),
                    () -> consumed.size() + " consumed of " + acked.size() + " acked");

            // Then every connection the service had open ended drained, between requests; none was reset
            Map<String, Integer> ends = new HashMap<>();
            Matcher m = CONNECTION_END.matcher(during);
            while (m.find()) {
                ends.merge(m.group(1), 1, Integer::sum);
            }
            assertTrue(ends.getOrDefault(DRAINED, 0) >= 2,
                    () -> "the producer's and the consumer's connections drained; connection ends seen: " + ends);
            List<String> others = new ArrayList<>(ends.keySet());
            others.remove(DRAINED);
            others.remove("client closed");
            assertTrue(others.isEmpty(), () -> "connections that ended otherwise during the stop: " + ends);
            assertTrue(stopMillis < 15_000, () -> "the stop took " + stopMillis + " ms: the launcher had to kill it");

            // and nothing acked was lost or duplicated, and the broker holds only envelopes
            assertEquals(nextSeq.get(), acked.size() + failed.size(), "completed sends");
            assertTrue(failed.isEmpty(), () -> "sends failed across the drain: " + failed.values().stream().limit(3).toList());
            List<String> expected = acked.stream().sorted().map(FilterServiceDrainTest::value).toList();
            assertEquals(expected, consumed.stream().sorted((a, b) -> Integer.compare(seq(a), seq(b))).toList(),
                    "each acked record consumed exactly once, in order of sequence");
            for (ConsumerRecord<byte[], byte[]> r : mesh.readDirect(topic)) {
                Envelope.assertEnvelope(r.value(), topic + "@" + r.offset());
            }
        } finally {
            stream.shutdownNow();
            consuming.set(false);
            if (!started) {
                mesh.start(FILTER_SERVICE);
            }
            producer.close(Duration.ofSeconds(30));
            reader.join(TimeUnit.SECONDS.toMillis(30));
        }
    }

    private static String value(int seq) {
        return "drained secret " + seq;
    }

    private static int seq(String value) {
        return Integer.parseInt(value.substring(value.lastIndexOf(' ') + 1));
    }
}
