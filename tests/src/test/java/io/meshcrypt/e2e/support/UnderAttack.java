package io.meshcrypt.e2e.support;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.consumer.ConsumerRecord;

/**
 * The frame of every hostile case: healthy traffic on other connections through the same filter-service while the
 * attack runs, then its throughput over the attack window, the same filter-service pid, bounded resident memory and
 * ciphertext at rest for the healthy topic. Every failed check is reported, not only the first.
 */
public final class UnderAttack {

    /** The healthy producer offers 200 records/s; under attack each side must keep a quarter of that. */
    public static final double MIN_RATE = 50;
    public static final Duration MAX_STALL = Duration.ofSeconds(3);
    /** -Xmx384m plus metaspace, thread stacks and gRPC's direct buffers. */
    public static final long RSS_LIMIT = 1L << 30;
    private static final byte[] MAGIC = {0x00, 0x4D, 0x43, 0x45};

    @FunctionalInterface
    public interface Attack {
        void run() throws Exception;
    }

    private UnderAttack() {
    }

    public static void run(HostileMesh hostile, String during, Attack attack) throws Exception {
        long pid = hostile.filterServicePid();
        assertTrue(pid > 0, "filter-service running before the attack");
        List<Throwable> failures = new ArrayList<>();
        String topic = hostile.mesh().createTopic("enc-healthy", 1);
        AtomicLong peakRss = new AtomicLong();
        AtomicBoolean sampling = new AtomicBoolean(true);
        // the peak matters, not the value after a GC: sample resident memory through the whole attack
        Thread sampler = Thread.ofPlatform().daemon().name("rss-sampler").start(() -> {
            while (sampling.get()) {
                try {
                    peakRss.accumulateAndGet(hostile.filterServiceRssBytes(), Math::max);
                    Thread.sleep(100);
                } catch (RuntimeException | InterruptedException e) {
                    return; // the process is gone: the liveness check reports it
                }
            }
        });
        try (HealthyTraffic traffic = new HealthyTraffic(hostile.realBootstrap(), topic).start()) {
            traffic.awaitWarm(20, Duration.ofSeconds(60));
            long from = System.nanoTime();
            try {
                attack.run();
            } catch (Throwable t) {
                failures.add(t);
            }
            // measure over at least two seconds even when the attack itself was over sooner
            long minEnd = from + Duration.ofSeconds(2).toNanos();
            while (System.nanoTime() < minEnd) {
                Thread.sleep(50);
            }
            long to = System.nanoTime();
            System.out.printf("[under attack] %s: healthy traffic %s; filter-service peak RSS so far %d MiB%n", during,
                    traffic.summary(from, to), peakRss.get() >> 20);
            try {
                traffic.assertFlowed(from, to, MIN_RATE, MAX_STALL, "during " + during);
            } catch (Throwable t) {
                failures.add(t);
            }
        }
        sampling.set(false);
        sampler.join();
        try {
            assertTrue(hostile.filterServiceAlive(), "filter-service alive after " + during + "; see " + hostile.filterServiceLog());
            assertEquals(pid, hostile.filterServicePid(), "the same filter-service process after " + during);
            long rss = Math.max(peakRss.get(), hostile.filterServiceRssBytes());
            assertTrue(rss < RSS_LIMIT, "filter-service peak resident memory during " + during + ": " + (rss >> 20) + " MiB");
        } catch (Throwable t) {
            failures.add(t);
        }
        try {
            for (ConsumerRecord<byte[], byte[]> r : hostile.mesh().readDirect(topic)) {
                assertEnvelope(r.value(), "healthy topic " + topic + "@" + r.offset());
            }
        } catch (Throwable t) {
            failures.add(t);
        }
        if (!failures.isEmpty()) {
            AssertionError e = new AssertionError(failures.size() + " check(s) failed under " + during + ": "
                    + failures.stream().map(Throwable::getMessage).toList());
            failures.forEach(e::addSuppressed);
            throw e;
        }
    }

    /** The value starts with the meshcrypt envelope magic (any version). */
    public static void assertEnvelope(byte[] value, String where) {
        assertTrue(value != null && value.length > MAGIC.length && Arrays.equals(value, 0, MAGIC.length, MAGIC, 0, MAGIC.length),
                () -> where + ": not an envelope at the broker: " + Envelope.preview(value));
    }
}
