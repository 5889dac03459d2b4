package io.meshcrypt.e2e.support;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * A well-behaved producer and consumer on their own connections through the hostile mesh's Envoy (in front of the real
 * broker, encrypted topic), run while a test attacks the same filter-service. Every ack and every consumed record is
 * timestamped, so a test asserts throughput over the attack window, not only that the clients survived.
 */
public final class HealthyTraffic implements AutoCloseable {

    /** One record per this many milliseconds: the offered rate is 1000 / PACE_MILLIS records/s. */
    public static final int PACE_MILLIS = 5;

    private final String topic;
    private final ConcurrentLinkedQueue<Long> acks = new ConcurrentLinkedQueue<>();
    private final ConcurrentLinkedQueue<Long> consumed = new ConcurrentLinkedQueue<>();
    private final ConcurrentLinkedQueue<String> problems = new ConcurrentLinkedQueue<>();
    private final AtomicBoolean stop = new AtomicBoolean();
    private final AtomicInteger sent = new AtomicInteger();
    private final AtomicReference<Throwable> threadFailure = new AtomicReference<>();
    private final Thread producerThread;
    private final Thread consumerThread;

    public HealthyTraffic(String bootstrap, String topic) {
        this.topic = topic;
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.CLIENT_ID_CONFIG, "healthy-producer");
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.LINGER_MS_CONFIG, 0);
        pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30_000);
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 15_000);
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.CLIENT_ID_CONFIG, "healthy-consumer");
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        cp.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 100);
        cp.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        producerThread = Thread.ofPlatform().daemon().name("healthy-producer").unstarted(() -> produce(pp));
        consumerThread = Thread.ofPlatform().daemon().name("healthy-consumer").unstarted(() -> consume(cp));
    }

    public HealthyTraffic start() {
        producerThread.start();
        consumerThread.start();
        return this;
    }

    /** Waits until the clients are warm: {@code n} records acked and consumed. */
    public void awaitWarm(int n, Duration timeout) {
        Await.until(timeout, () -> acks.size() >= n && consumed.size() >= n || threadFailure.get() != null,
                () -> "healthy traffic warming up: " + acks.size() + " acked, " + consumed.size() + " consumed, problems "
                        + problems.stream().limit(3).toList());
        if (threadFailure.get() != null) {
            throw new AssertionError("healthy traffic failed", threadFailure.get());
        }
    }

    /**
     * Asserts that between {@code from} and {@code to} (System.nanoTime) both clients moved at least
     * {@code minPerSecond} records/s and neither stalled for longer than {@code maxGap}.
     */
    public void assertFlowed(long from, long to, double minPerSecond, Duration maxGap, String during) {
        double seconds = (to - from) / 1e9;
        assertTrue(seconds > 0.5, "attack window too short to measure: " + seconds + " s");
        check("acked", acks, from, to, seconds, minPerSecond, maxGap, during);
        check("consumed", consumed, from, to, seconds, minPerSecond, maxGap, during);
        assertTrue(problems.isEmpty(), () -> "healthy traffic saw errors " + during + ": " + problems.stream().limit(5).toList());
        if (threadFailure.get() != null) {
            throw new AssertionError("healthy traffic failed " + during, threadFailure.get());
        }
    }

    /** Rates and longest gaps over the window, for the test's log: what the assertions judged. */
    public String summary(long from, long to) {
        double seconds = (to - from) / 1e9;
        return String.format("acked %.0f records/s (longest gap %d ms), consumed %.0f records/s (longest gap %d ms) over %.1f s",
                rate(acks, from, to, seconds), gapMillis(acks, from, to), rate(consumed, from, to, seconds),
                gapMillis(consumed, from, to), seconds);
    }

    private static double rate(ConcurrentLinkedQueue<Long> times, long from, long to, double seconds) {
        return times.stream().filter(t -> t >= from && t <= to).count() / seconds;
    }

    private static long gapMillis(ConcurrentLinkedQueue<Long> times, long from, long to) {
        long gap = 0;
        long prev = from;
        for (long t : times.stream().filter(x -> x >= from && x <= to).sorted().toList()) {
            gap = Math.max(gap, t - prev);
            prev = t;
        }
        return Math.max(gap, to - prev) / 1_000_000;
    }

    private static void check(String what, ConcurrentLinkedQueue<Long> times, long from, long to, double seconds,
            double minPerSecond, Duration maxGap, String during) {
        List<Long> in = times.stream().filter(t -> t >= from && t <= to).sorted().toList();
        double rate = in.size() / seconds;
        assertTrue(rate >= minPerSecond, () -> String.format("healthy %s throughput %s: %.1f records/s over %.1f s, expected at least %.1f",
                what, during, rate, seconds, minPerSecond));
        long gap = 0;
        long prev = from;
        for (long t : in) {
            gap = Math.max(gap, t - prev);
            prev = t;
        }
        gap = Math.max(gap, to - prev);
        long maxGapNanos = gap;
        assertTrue(maxGapNanos <= maxGap.toNanos(), () -> String.format("healthy %s stalled %s for %d ms (limit %d ms)",
                what, during, maxGapNanos / 1_000_000, maxGap.toMillis()));
    }

    public int sent() {
        return sent.get();
    }

    public String topic() {
        return topic;
    }

    private void produce(Properties pp) {
        KafkaProducer<byte[], byte[]> producer = null;
        try {
            producer = new KafkaProducer<>(pp);
            long next = System.nanoTime();
            while (!stop.get()) {
                int seq = sent.getAndIncrement();
                producer.send(new ProducerRecord<>(topic, ("healthy secret " + seq).getBytes(StandardCharsets.UTF_8)), (md, e) -> {
                    if (e == null) {
                        acks.add(System.nanoTime());
                    } else {
                        problems.add("send " + seq + ": " + e);
                    }
                });
                next += PACE_MILLIS * 1_000_000L;
                long wait = next - System.nanoTime();
                if (wait > 0) {
                    Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
                } else if (wait < -1_000_000_000L) {
                    next = System.nanoTime(); // blocked in send(): do not burst to catch up
                }
            }
        } catch (Throwable t) {
            threadFailure.compareAndSet(null, t);
        } finally {
            if (producer != null) {
                // bounded: after an attack that killed the filter-service, pending sends would hold close() for the
                // whole delivery timeout
                producer.close(Duration.ofSeconds(3));
            }
        }
    }

    private void consume(Properties cp) {
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(cp)) {
            TopicPartition tp = new TopicPartition(topic, 0);
            consumer.assign(List.of(tp));
            consumer.seek(tp, 0);
            int expected = 0;
            while (!stop.get()) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(100))) {
                    String value = new String(r.value(), StandardCharsets.UTF_8);
                    if (!value.equals("healthy secret " + expected)) {
                        problems.add("consumed " + Envelope.preview(r.value()) + " at offset " + r.offset()
                                + ", expected \"healthy secret " + expected + "\"");
                    }
                    expected++;
                    consumed.add(System.nanoTime());
                }
            }
        } catch (Throwable t) {
            threadFailure.compareAndSet(null, t);
        }
    }

    @Override
    public void close() throws InterruptedException {
        stop.set(true);
        producerThread.join(Duration.ofSeconds(40));
        consumerThread.join(Duration.ofSeconds(20));
    }

    /** For a failure message: how much moved in total. */
    @Override
    public String toString() {
        return Map.of("sent", sent.get(), "acked", acks.size(), "consumed", consumed.size()).toString();
    }
}
