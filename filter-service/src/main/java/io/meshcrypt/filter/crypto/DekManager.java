package io.meshcrypt.filter.crypto;

import io.meshcrypt.filter.kms.DekContext;
import io.meshcrypt.filter.kms.KekProvider;
import io.meshcrypt.filter.kms.KekUnavailableException;
import io.meshcrypt.filter.kms.KmsUnavailableException;
import io.meshcrypt.filter.kms.WrappedDek;
import java.nio.ByteBuffer;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Arrays;
import java.util.Iterator;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.LongSupplier;
import javax.crypto.spec.SecretKeySpec;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Data encryption keys: one current DEK per topic for encrypting, and a cache of unwrapped DEKs for decrypting.
 *
 * <p>The per-record paths ({@link #forEncryption}, {@link #forDecryption}) never call the KMS while a usable DEK is
 * cached: they are a map lookup and a counter. KMS calls run on a small dedicated pool, single-flight per topic
 * (new DEK) and per wrapped DEK (unwrap); a connection worker waits for one only when nothing cached can serve the
 * record, and at most {@code kmsTimeout}. A DEK is replaced in the background once it reaches 90% of its record
 * count or age limit, so under steady traffic workers never wait. After a failed KMS call, further calls back off
 * exponentially (failing fast without contacting the KMS), and failed unwraps are remembered for a while, so an
 * outage or a disabled key cannot turn traffic into a flood of KMS requests.
 */
public final class DekManager implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(DekManager.class);
    private static final int DEK_BYTES = 32;

    /**
     * @param maxRecordsPerDek records one DEK encrypts before a new one is generated (random 96-bit nonces: NIST
     *     SP 800-38D caps one key at 2^32 invocations; the default 2^30 keeps the nonce collision probability near 2^-37 per DEK)
     * @param maxDekAge age after which a DEK encrypts no more records
     * @param cacheTtl how long an unwrapped DEK stays cached for decrypting
     * @param cacheMaxEntries bound of the unwrapped DEK cache
     * @param kmsTimeout the longest a connection worker waits for a KMS call
     * @param backoffMin first wait after a failed KMS call; doubles per consecutive failure
     * @param backoffMax longest wait between KMS attempts
     * @param kekCheckInterval how often the current KEK id is checked, so a KEK rotated elsewhere reaches new DEKs
     */
    public record Settings(long maxRecordsPerDek, Duration maxDekAge, Duration cacheTtl, int cacheMaxEntries,
                           Duration kmsTimeout, Duration backoffMin, Duration backoffMax, Duration kekCheckInterval) {
        public static final long DEFAULT_MAX_RECORDS = 1L << 30;

        public Settings {
            if (maxRecordsPerDek <= 0 || maxRecordsPerDek > 1L << 32) {
                throw new IllegalArgumentException("maxRecordsPerDek must be 1..2^32");
            }
            for (Duration d : new Duration[] {maxDekAge, cacheTtl, kmsTimeout, backoffMin, backoffMax, kekCheckInterval}) {
                if (d.isNegative() || d.isZero()) {
                    throw new IllegalArgumentException("durations must be positive");
                }
            }
            if (cacheMaxEntries <= 0) {
                throw new IllegalArgumentException("cacheMaxEntries must be positive");
            }
        }

        public static Settings defaults() {
            return new Settings(DEFAULT_MAX_RECORDS, Duration.ofHours(1), Duration.ofHours(1), 10_000,
                    Duration.ofSeconds(2), Duration.ofMillis(200), Duration.ofSeconds(30), Duration.ofMinutes(5));
        }
    }

    /** Counters, readable at any time; also logged once a minute while they change. */
    public static final class Metrics {
        final LongAdder kmsCalls = new LongAdder();
        final LongAdder kmsFailures = new LongAdder();
        final LongAdder kmsSkipped = new LongAdder();
        final LongAdder deksGenerated = new LongAdder();
        final LongAdder unwraps = new LongAdder();
        final LongAdder cacheMisses = new LongAdder();

        /** @return KMS requests actually sent (wrap, unwrap, current-KEK checks) */
        public long kmsCalls() {
            return kmsCalls.sum();
        }

        public long kmsFailures() {
            return kmsFailures.sum();
        }

        /** @return KMS calls not sent because the KMS was backing off */
        public long kmsSkipped() {
            return kmsSkipped.sum();
        }

        public long deksGenerated() {
            return deksGenerated.sum();
        }

        public long unwraps() {
            return unwraps.sum();
        }

        public long cacheMisses() {
            return cacheMisses.sum();
        }

        @Override
        public String toString() {
            return "kmsCalls=" + kmsCalls() + " kmsFailures=" + kmsFailures() + " kmsSkipped=" + kmsSkipped()
                    + " deksGenerated=" + deksGenerated() + " unwraps=" + unwraps() + " decryptCacheMisses=" + cacheMisses();
        }
    }

    /** A DEK for encrypting: its key and the envelope header every record under it starts with. */
    public static final class Dek {
        final String kekId;
        final long dekId;
        final SecretKeySpec key;
        final byte[] header;
        final long createdNanos;
        final AtomicLong uses = new AtomicLong();
        volatile boolean retired;

        Dek(String kekId, long dekId, SecretKeySpec key, byte[] header, long createdNanos) {
            this.kekId = kekId;
            this.dekId = dekId;
            this.key = key;
            this.header = header;
            this.createdNanos = createdNanos;
        }

        public String kekId() {
            return kekId;
        }

        public long dekId() {
            return dekId;
        }
    }

    private final KekProvider provider;
    private final Settings settings;
    private final LongSupplier nanoTime;
    private final SecureRandom random = new SecureRandom();
    private final Metrics metrics = new Metrics();
    private final ExecutorService kmsPool;
    private final ScheduledExecutorService timer;
    private final ConcurrentHashMap<String, TopicState> topics = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<CacheKey, CacheEntry> unwrapped = new ConcurrentHashMap<>();
    private final ThreadLocal<CacheEntry> lastUsed = new ThreadLocal<>();
    private final Backoff backoff = new Backoff();

    public DekManager(KekProvider provider, Settings settings) {
        this(provider, settings, System::nanoTime);
    }

    DekManager(KekProvider provider, Settings settings, LongSupplier nanoTime) {
        this.provider = Objects.requireNonNull(provider, "provider");
        this.settings = Objects.requireNonNull(settings, "settings");
        this.nanoTime = nanoTime;
        this.kmsPool = Executors.newFixedThreadPool(4, Thread.ofPlatform().daemon().name("meshcrypt-kms-", 0).factory());
        this.timer = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().daemon().name("meshcrypt-keys").factory());
        long check = settings.kekCheckInterval().toMillis();
        timer.scheduleWithFixedDelay(this::checkCurrentKek, check, check, TimeUnit.MILLISECONDS);
        timer.scheduleWithFixedDelay(new MetricsLog(), 1, 1, TimeUnit.MINUTES);
    }

    public Metrics metrics() {
        return metrics;
    }

    public KekProvider provider() {
        return provider;
    }

    /**
     * @return the DEK to encrypt one record of {@code topic} with, its use already counted
     * @throws KmsUnavailableException when a new DEK is needed and the KMS cannot provide one in time
     */
    public Dek forEncryption(String topic) throws GeneralSecurityException {
        TopicState state = topics.get(topic);
        if (state == null) {
            state = topics.computeIfAbsent(topic, TopicState::new);
        }
        Dek dek = state.current;
        for (int attempt = 0; attempt < 3; attempt++) {
            if (dek != null) {
                long now = nanoTime.getAsLong();
                long uses = dek.uses.incrementAndGet();
                long age = now - dek.createdNanos;
                if (uses <= settings.maxRecordsPerDek() && age < settings.maxDekAge().toNanos()) {
                    if (dek.retired || uses >= settings.maxRecordsPerDek() / 10 * 9 || age >= settings.maxDekAge().toNanos() / 10 * 9) {
                        state.refresh(dek);
                    }
                    return dek;
                }
            }
            dek = await(state.refresh(dek), "a new DEK for topic '" + topic + "'");
        }
        throw new KmsUnavailableException("no usable DEK for topic '" + topic + "' (DEKs exhausted as fast as they were generated)", null);
    }

    /**
     * @param envelope a version-2 envelope (position..limit) whose header {@code info} describes
     * @return the unwrapped DEK for it, from the cache when possible
     * @throws KekUnavailableException when the KEK is missing or disabled, or the wrapped DEK does not unwrap
     * @throws KmsUnavailableException when the KMS cannot be reached in time
     */
    public SecretKeySpec forDecryption(String topic, ByteBuffer envelope, EnvelopeV2.Info info) throws GeneralSecurityException {
        int from = envelope.position() + info.keyOffset();
        int length = info.headerLength() - info.keyOffset();
        long now = nanoTime.getAsLong();
        CacheEntry last = lastUsed.get();
        if (last != null && last.usableAt(now) && last.matches(envelope, from, length, topic)) {
            return last.key();
        }
        byte[] keyBytes = new byte[length];
        envelope.get(from, keyBytes);
        CacheKey cacheKey = new CacheKey(topic, keyBytes);
        CacheEntry entry = unwrapped.get(cacheKey);
        if (entry == null || !entry.validAt(now)) {
            metrics.cacheMisses.increment();
            entry = unwrapped.compute(cacheKey, (k, existing) -> existing != null && existing.validAt(now)
                    ? existing : startUnwrap(k, info, now));
            evictIfFull(now);
        }
        SecretKeySpec key = await(entry.future, "DEK " + info.dekIdText() + " (KEK " + info.kekId() + ") of topic '" + topic + "'");
        lastUsed.set(entry);
        return key;
    }

    /** Retires every current DEK: the next record of each topic gets a new one (generated in the background). */
    public void rotateDeks() {
        for (TopicState state : topics.values()) {
            Dek dek = state.current;
            if (dek != null) {
                dek.retired = true;
            }
        }
        log.info("DEK rotation requested for {} topic(s)", topics.size());
    }

    private CacheEntry startUnwrap(CacheKey key, EnvelopeV2.Info info, long now) {
        byte[] wrapped = Arrays.copyOfRange(key.bytes(), key.bytes().length - info.wrappedDekLength(), key.bytes().length);
        DekContext context = new DekContext(key.topic(), info.dekId());
        CacheEntry entry = new CacheEntry(key);
        entry.future = CompletableFuture.supplyAsync(() -> {
            try {
                byte[] dek = kmsCall(() -> provider.unwrap(info.kekId(), wrapped, context));
                metrics.unwraps.increment();
                if (dek.length != DEK_BYTES) {
                    throw new KekUnavailableException("KEK " + info.kekId() + " unwrapped a DEK of " + dek.length + " bytes, expected " + DEK_BYTES);
                }
                try {
                    return new SecretKeySpec(dek, "AES");
                } finally {
                    Arrays.fill(dek, (byte) 0);
                }
            } catch (GeneralSecurityException e) {
                log.warn("cannot unwrap DEK {} of topic '{}' with KEK {} ({}): {}", context.dekIdText(), key.topic(),
                        info.kekId(), provider.name(), e.getMessage());
                throw new CompletionException(e);
            }
        }, kmsPool);
        entry.expiresAtNanos = now + settings.cacheTtl().toNanos();
        // A failure is remembered, so a partition of undecryptable records polled again and again costs one KMS
        // call per period: the current backoff for an outage, the longest backoff for a missing or disabled KEK.
        entry.future.whenComplete((k, e) -> {
            if (e != null) {
                long hold = e.getCause() instanceof KekUnavailableException
                        ? settings.backoffMax().toNanos()
                        : Math.max(settings.backoffMin().toNanos(), backoff.currentDelayNanos());
                entry.expiresAtNanos = nanoTime.getAsLong() + hold;
            }
        });
        return entry;
    }

    private Dek generate(String topic) throws GeneralSecurityException {
        byte[] dek = new byte[DEK_BYTES];
        random.nextBytes(dek);
        try {
            long dekId = random.nextLong();
            DekContext context = new DekContext(topic, dekId);
            WrappedDek wrapped = kmsCall(() -> provider.wrap(dek, context));
            SecretKeySpec key = new SecretKeySpec(dek, "AES");
            byte[] header = EnvelopeV2.header(wrapped.kekId(), dekId, wrapped.bytes());
            long now = nanoTime.getAsLong();
            metrics.deksGenerated.increment();
            // The producer's own DEK decrypts its records on this instance without an unwrap call.
            byte[] keyBytes = Arrays.copyOfRange(header, EnvelopeV2.KEK_ID_LENGTH_OFFSET, header.length);
            CacheEntry entry = new CacheEntry(new CacheKey(topic, keyBytes));
            entry.future = CompletableFuture.completedFuture(key);
            entry.expiresAtNanos = now + settings.cacheTtl().toNanos();
            unwrapped.put(entry.key, entry);
            evictIfFull(now);
            log.info("new DEK {} for topic '{}' wrapped by KEK {} ({})", context.dekIdText(), topic, wrapped.kekId(), provider.name());
            return new Dek(wrapped.kekId(), dekId, key, header, now);
        } finally {
            Arrays.fill(dek, (byte) 0);
        }
    }

    /** Retires DEKs wrapped by a KEK that is no longer current; runs every {@code kekCheckInterval}. */
    void checkCurrentKek() {
        try {
            String current = kmsCall(provider::currentKekId);
            int retired = 0;
            for (TopicState state : topics.values()) {
                Dek dek = state.current;
                if (dek != null && !dek.retired && !dek.kekId.equals(current)) {
                    dek.retired = true;
                    retired++;
                }
            }
            if (retired > 0) {
                log.info("KEK {} ({}) is current: {} DEK(s) wrapped by an older KEK will be replaced", current, provider.name(), retired);
            }
        } catch (GeneralSecurityException | RuntimeException e) {
            log.warn("cannot check the current KEK ({}): {}", provider.name(), e.getMessage());
        }
    }

    private interface KmsCall<T> {
        T call() throws GeneralSecurityException;
    }

    private <T> T kmsCall(KmsCall<T> call) throws GeneralSecurityException {
        backoff.checkAllowed();
        metrics.kmsCalls.increment();
        try {
            T result = call.call();
            backoff.succeeded();
            return result;
        } catch (KekUnavailableException e) {
            // The KMS answered: the key is the problem, not the KMS, so other keys keep working.
            metrics.kmsFailures.increment();
            backoff.succeeded();
            throw e;
        } catch (GeneralSecurityException | RuntimeException e) {
            metrics.kmsFailures.increment();
            backoff.failed(e);
            throw new KmsUnavailableException("KMS call to " + provider.name() + " failed: " + e.getMessage(), e);
        }
    }

    private <T> T await(CompletableFuture<T> future, String what) throws GeneralSecurityException {
        try {
            return future.get(settings.kmsTimeout().toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new KmsUnavailableException("KMS " + provider.name() + " did not provide " + what + " within "
                    + settings.kmsTimeout().toMillis() + " ms", null);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause() instanceof CompletionException c && c.getCause() != null ? c.getCause() : e.getCause();
            if (cause instanceof GeneralSecurityException g) {
                throw g;
            }
            throw new KmsUnavailableException("cannot get " + what + ": " + cause, cause);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new KmsUnavailableException("interrupted while waiting for " + what, e);
        }
    }

    private void evictIfFull(long now) {
        if (unwrapped.size() <= settings.cacheMaxEntries()) {
            return;
        }
        unwrapped.values().removeIf(e -> !e.validAt(now));
        Iterator<CacheKey> it = unwrapped.keySet().iterator();
        while (unwrapped.size() > settings.cacheMaxEntries() && it.hasNext()) {
            it.next();
            it.remove();
        }
    }

    @Override
    public void close() {
        timer.shutdownNow();
        kmsPool.shutdownNow();
        provider.close();
    }

    private final class TopicState {
        final String topic;
        volatile Dek current;
        private CompletableFuture<Dek> pending;
        private volatile long retryAfterNanos;

        TopicState(String topic) {
            this.topic = topic;
        }

        /** Starts generating a replacement for {@code seen} unless one is running or already installed. */
        synchronized CompletableFuture<Dek> refresh(Dek seen) {
            Dek now = current;
            if (now != seen && now != null && !now.retired) {
                return CompletableFuture.completedFuture(now);
            }
            // After a failure, wait out the backoff before trying again: every record asking would only fail fast.
            if (pending == null || (pending.isDone() && nanoTime.getAsLong() - retryAfterNanos >= 0)) {
                pending = CompletableFuture.supplyAsync(() -> {
                    try {
                        Dek dek = generate(topic);
                        current = dek;
                        return dek;
                    } catch (GeneralSecurityException e) {
                        retryAfterNanos = nanoTime.getAsLong() + Math.max(settings.backoffMin().toNanos(), backoff.currentDelayNanos());
                        log.warn("cannot generate a DEK for topic '{}' ({}): {}", topic, provider.name(), e.getMessage());
                        throw new CompletionException(e);
                    }
                }, kmsPool);
            }
            return pending;
        }
    }

    private record CacheKey(String topic, byte[] bytes) {
        @Override
        public boolean equals(Object o) {
            return o instanceof CacheKey k && topic.equals(k.topic) && Arrays.equals(bytes, k.bytes);
        }

        @Override
        public int hashCode() {
            return 31 * topic.hashCode() + Arrays.hashCode(bytes);
        }
    }

    private static final class CacheEntry {
        final CacheKey key;
        volatile CompletableFuture<SecretKeySpec> future;
        volatile long expiresAtNanos;

        CacheEntry(CacheKey key) {
            this.key = key;
        }

        boolean validAt(long now) {
            return now - expiresAtNanos < 0;
        }

        boolean usableAt(long now) {
            return validAt(now) && future.isDone() && !future.isCompletedExceptionally();
        }

        SecretKeySpec key() {
            return future.join();
        }

        boolean matches(ByteBuffer envelope, int from, int length, String topic) {
            return key.bytes.length == length && key.topic.equals(topic)
                    && envelope.slice(from, length).mismatch(ByteBuffer.wrap(key.bytes)) < 0;
        }
    }

    /** Exponential backoff shared by all KMS calls of this manager. */
    private final class Backoff {
        private int failures;
        private long nextAttemptNanos;
        private String lastError = "";

        synchronized void checkAllowed() throws KmsUnavailableException {
            long now = nanoTime.getAsLong();
            if (failures > 0 && now - nextAttemptNanos < 0) {
                metrics.kmsSkipped.increment();
                throw new KmsUnavailableException("KMS " + provider.name() + " is backing off after " + failures
                        + " failed call(s), next attempt in " + TimeUnit.NANOSECONDS.toMillis(nextAttemptNanos - now)
                        + " ms; last error: " + lastError, null);
            }
        }

        synchronized void succeeded() {
            if (failures > 0) {
                log.info("KMS {} reachable again after {} failed call(s)", provider.name(), failures);
            }
            failures = 0;
        }

        synchronized void failed(Exception e) {
            failures++;
            lastError = String.valueOf(e.getMessage());
            nextAttemptNanos = nanoTime.getAsLong() + currentDelayNanosLocked();
        }

        synchronized long currentDelayNanos() {
            return failures == 0 ? 0 : currentDelayNanosLocked();
        }

        private long currentDelayNanosLocked() {
            long min = settings.backoffMin().toNanos();
            int shift = Math.min(failures - 1, 30);
            long delay = min << shift;
            return delay <= 0 || delay > settings.backoffMax().toNanos() ? settings.backoffMax().toNanos() : delay;
        }
    }

    private final class MetricsLog implements Runnable {
        private String previous = "";

        @Override
        public void run() {
            String now = metrics.toString();
            if (!now.equals(previous)) {
                log.info("keys: {}", now);
                previous = now;
            }
        }
    }
}
