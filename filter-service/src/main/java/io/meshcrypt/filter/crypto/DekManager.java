package io.meshcrypt.filter.crypto;

import io.meshcrypt.filter.kms.Printable;
import io.meshcrypt.filter.kms.DekContext;
import io.meshcrypt.filter.kms.KekProvider;
import io.meshcrypt.filter.kms.KekRefusedException;
import io.meshcrypt.filter.kms.KeyNotReadyException;
import io.meshcrypt.filter.kms.TransientKmsException;
import io.meshcrypt.filter.kms.WrappedDek;
import java.nio.ByteBuffer;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.LongSupplier;
import javax.crypto.spec.SecretKeySpec;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Data encryption keys: one current DEK per topic for encrypting, and a cache of unwrapped DEKs for decrypting.
 *
 * <p>The per-record paths ({@link #forEncryption}, {@link #forDecryption}) never wait for the KMS. While a usable DEK
 * is cached they are a map lookup and a counter. Otherwise they start the KMS work on a small dedicated pool
 * (single-flight per topic for a new DEK, per wrapped DEK for an unwrap) and throw {@link KeyNotReadyException},
 * whose future tells the caller (the connection) when to retry; the retry finds the key cached or gets the real
 * outcome ({@link TransientKmsException}, {@link KekRefusedException}). A DEK is replaced in the background once
 * it reaches 90% of its record count or age limit, so under steady traffic nobody is told to wait.
 *
 * <p>Client-chosen input cannot drive the KMS: a DEK for a topic that has none costs a token of a bucket
 * ({@code newDataKeysPerSecond}, {@code newDataKeysBurst}), so a Produce naming thousands of new topics gets them
 * keys at that rate instead of flooding the KMS and pushing every KMS call into backoff; and an envelope is unwrapped
 * only if its KEK id is known (the provider's current and listed KEKs, plus {@code knownKekIds}), so a forged header
 * never makes the KMS see a key id the attacker chose. After a failed KMS call, further calls back off exponentially
 * (failing fast without contacting the KMS), and failed unwraps are remembered for a while, so an outage or a
 * disabled key cannot turn traffic into a flood of KMS requests.
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
     * @param kmsTimeout after this long a KMS call still running counts as failed for the records waiting on it
     * @param backoffMin first wait after a failed KMS call; doubles per consecutive failure
     * @param backoffMax longest wait between KMS attempts
     * @param kekCheckInterval how often the current KEK id is checked, so a KEK rotated elsewhere reaches new DEKs
     * @param newDataKeysPerSecond sustained rate of DEKs for topics that have none (the KMS wraps this causes)
     * @param newDataKeysBurst how many such DEKs may be generated at once (e.g. at startup, for this many topics)
     * @param maxTopicsWaitingForDek topics without a DEK that may wait for a token, served first come first served (a
     *     flood of new names cannot overtake a topic that asked earlier); beyond it a new topic fails at once with
     *     {@link TransientKmsException}, which closes that Produce connection
     * @param maxWrappedDekBytes longest wrapped DEK accepted in an envelope (providers write 60-300 bytes); bounds what a
     *     forged header can make the cache hold
     * @param knownKekIds KEK ids accepted besides those the provider reports (e.g. KEKs an AWS alias pointed to before,
     *     when the service may not list keys)
     * @param kekListMinInterval an envelope naming a KEK id not known makes the provider's KEK list be read again at
     *     most this often (a KEK rotated by another process); within it such an envelope is refused at once
     * @param unwrapsPerSecond sustained rate of KMS unwraps of wrapped DEKs that never unwrapped here (cache misses
     *     other than an expired good DEK): a hostile broker can forge one per partition under a known KEK id
     * @param unwrapsBurst how many such unwraps may start at once (e.g. a consumer starting on many topics)
     * @param maxFailedUnwraps unwraps in flight or failed (remembered for their backoff), kept apart from the DEK cache
     *     so forged wrapped DEKs never evict good DEKs; beyond it failures are forgotten first (a retry costs a token)
     */
    public record Settings(long maxRecordsPerDek, Duration maxDekAge, Duration cacheTtl, int cacheMaxEntries,
                           Duration kmsTimeout, Duration backoffMin, Duration backoffMax, Duration kekCheckInterval,
                           double newDataKeysPerSecond, int newDataKeysBurst, int maxTopicsWaitingForDek,
                           int maxWrappedDekBytes, Set<String> knownKekIds, Duration kekListMinInterval,
                           double unwrapsPerSecond, int unwrapsBurst, int maxFailedUnwraps) {
        public static final long DEFAULT_MAX_RECORDS = 1L << 30;
        public static final double DEFAULT_NEW_DATA_KEYS_PER_SECOND = 50;
        public static final int DEFAULT_NEW_DATA_KEYS_BURST = 200;
        /** 20 s of new DEKs at the default rate. */
        public static final int DEFAULT_MAX_TOPICS_WAITING_FOR_DEK = 1000;
        public static final int DEFAULT_MAX_WRAPPED_DEK_BYTES = 2048;
        public static final Duration DEFAULT_KEK_LIST_MIN_INTERVAL = Duration.ofSeconds(60);
        /** Far above what legitimate DEK churn needs (one DEK per topic per producing replica per hour). */
        public static final double DEFAULT_UNWRAPS_PER_SECOND = 100;
        public static final int DEFAULT_UNWRAPS_BURST = 200;
        public static final int DEFAULT_MAX_FAILED_UNWRAPS = 1000;

        public Settings {
            if (maxRecordsPerDek <= 0 || maxRecordsPerDek > 1L << 32) {
                throw new IllegalArgumentException("maxRecordsPerDek must be 1..2^32");
            }
            for (Duration d : new Duration[] {maxDekAge, cacheTtl, kmsTimeout, backoffMin, backoffMax, kekCheckInterval, kekListMinInterval}) {
                if (d.isNegative() || d.isZero()) {
                    throw new IllegalArgumentException("durations must be positive");
                }
            }
            if (cacheMaxEntries <= 0) {
                throw new IllegalArgumentException("cacheMaxEntries must be positive");
            }
            if (!(newDataKeysPerSecond > 0) || Double.isInfinite(newDataKeysPerSecond) || newDataKeysBurst < 1) {
                throw new IllegalArgumentException("newDataKeysPerSecond must be positive and newDataKeysBurst at least 1");
            }
            if (maxTopicsWaitingForDek < 0) {
                throw new IllegalArgumentException("maxTopicsWaitingForDek must not be negative");
            }
            if (maxWrappedDekBytes < 1 || maxWrappedDekBytes > 0xFFFF) {
                throw new IllegalArgumentException("maxWrappedDekBytes must be 1..65535");
            }
            if (!(unwrapsPerSecond > 0) || Double.isInfinite(unwrapsPerSecond) || unwrapsBurst < 1) {
                throw new IllegalArgumentException("unwrapsPerSecond must be positive and unwrapsBurst at least 1");
            }
            if (maxFailedUnwraps < 1) {
                throw new IllegalArgumentException("maxFailedUnwraps must be positive");
            }
            knownKekIds = Set.copyOf(knownKekIds);
        }

        /** The limits before the unwrap rate limit: it takes its defaults. */
        public Settings(long maxRecordsPerDek, Duration maxDekAge, Duration cacheTtl, int cacheMaxEntries,
                        Duration kmsTimeout, Duration backoffMin, Duration backoffMax, Duration kekCheckInterval,
                        double newDataKeysPerSecond, int newDataKeysBurst, int maxTopicsWaitingForDek,
                        int maxWrappedDekBytes, Set<String> knownKekIds, Duration kekListMinInterval) {
            this(maxRecordsPerDek, maxDekAge, cacheTtl, cacheMaxEntries, kmsTimeout, backoffMin, backoffMax, kekCheckInterval,
                    newDataKeysPerSecond, newDataKeysBurst, maxTopicsWaitingForDek, maxWrappedDekBytes, knownKekIds,
                    kekListMinInterval, DEFAULT_UNWRAPS_PER_SECOND, DEFAULT_UNWRAPS_BURST, DEFAULT_MAX_FAILED_UNWRAPS);
        }

        /** The limits before new-DEK rate limiting and known KEK ids: those take their defaults. */
        public Settings(long maxRecordsPerDek, Duration maxDekAge, Duration cacheTtl, int cacheMaxEntries,
                        Duration kmsTimeout, Duration backoffMin, Duration backoffMax, Duration kekCheckInterval) {
            this(maxRecordsPerDek, maxDekAge, cacheTtl, cacheMaxEntries, kmsTimeout, backoffMin, backoffMax, kekCheckInterval,
                    DEFAULT_NEW_DATA_KEYS_PER_SECOND, DEFAULT_NEW_DATA_KEYS_BURST, DEFAULT_MAX_TOPICS_WAITING_FOR_DEK,
                    DEFAULT_MAX_WRAPPED_DEK_BYTES, Set.of(),
                    DEFAULT_KEK_LIST_MIN_INTERVAL);
        }

        public static Settings defaults() {
            return new Settings(DEFAULT_MAX_RECORDS, Duration.ofHours(1), Duration.ofHours(1), 10_000,
                    Duration.ofSeconds(2), Duration.ofMillis(200), Duration.ofSeconds(30), Duration.ofMinutes(5));
        }

        public Settings withNewDataKeyRate(double perSecond, int burst) {
            return new Settings(maxRecordsPerDek, maxDekAge, cacheTtl, cacheMaxEntries, kmsTimeout, backoffMin, backoffMax,
                    kekCheckInterval, perSecond, burst, maxTopicsWaitingForDek, maxWrappedDekBytes, knownKekIds, kekListMinInterval,
                    unwrapsPerSecond, unwrapsBurst, maxFailedUnwraps);
        }

        public Settings withMaxTopicsWaitingForDek(int max) {
            return new Settings(maxRecordsPerDek, maxDekAge, cacheTtl, cacheMaxEntries, kmsTimeout, backoffMin, backoffMax,
                    kekCheckInterval, newDataKeysPerSecond, newDataKeysBurst, max, maxWrappedDekBytes, knownKekIds, kekListMinInterval,
                    unwrapsPerSecond, unwrapsBurst, maxFailedUnwraps);
        }

        public Settings withKnownKekIds(Set<String> ids) {
            return new Settings(maxRecordsPerDek, maxDekAge, cacheTtl, cacheMaxEntries, kmsTimeout, backoffMin, backoffMax,
                    kekCheckInterval, newDataKeysPerSecond, newDataKeysBurst, maxTopicsWaitingForDek, maxWrappedDekBytes, ids,
                    kekListMinInterval, unwrapsPerSecond, unwrapsBurst, maxFailedUnwraps);
        }

        public Settings withMaxWrappedDekBytes(int max) {
            return new Settings(maxRecordsPerDek, maxDekAge, cacheTtl, cacheMaxEntries, kmsTimeout, backoffMin, backoffMax,
                    kekCheckInterval, newDataKeysPerSecond, newDataKeysBurst, maxTopicsWaitingForDek, max, knownKekIds,
                    kekListMinInterval, unwrapsPerSecond, unwrapsBurst, maxFailedUnwraps);
        }

        public Settings withKekListMinInterval(Duration interval) {
            return new Settings(maxRecordsPerDek, maxDekAge, cacheTtl, cacheMaxEntries, kmsTimeout, backoffMin, backoffMax,
                    kekCheckInterval, newDataKeysPerSecond, newDataKeysBurst, maxTopicsWaitingForDek, maxWrappedDekBytes,
                    knownKekIds, interval, unwrapsPerSecond, unwrapsBurst, maxFailedUnwraps);
        }

        public Settings withUnwrapRate(double perSecond, int burst) {
            return new Settings(maxRecordsPerDek, maxDekAge, cacheTtl, cacheMaxEntries, kmsTimeout, backoffMin, backoffMax,
                    kekCheckInterval, newDataKeysPerSecond, newDataKeysBurst, maxTopicsWaitingForDek, maxWrappedDekBytes,
                    knownKekIds, kekListMinInterval, perSecond, burst, maxFailedUnwraps);
        }

        public Settings withMaxFailedUnwraps(int max) {
            return new Settings(maxRecordsPerDek, maxDekAge, cacheTtl, cacheMaxEntries, kmsTimeout, backoffMin, backoffMax,
                    kekCheckInterval, newDataKeysPerSecond, newDataKeysBurst, maxTopicsWaitingForDek, maxWrappedDekBytes,
                    knownKekIds, kekListMinInterval, unwrapsPerSecond, unwrapsBurst, max);
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
        final LongAdder keysNotReady = new LongAdder();
        final LongAdder newDeksDelayed = new LongAdder();
        final LongAdder newDeksRefused = new LongAdder();
        final LongAdder unknownKeks = new LongAdder();
        final LongAdder unwrapsDelayed = new LongAdder();

        /** @return KMS requests actually sent (wrap, unwrap, current-KEK checks, KEK listings) */
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

        /** @return times a caller was told to retry later ({@link KeyNotReadyException}), for any reason */
        public long keysNotReady() {
            return keysNotReady.sum();
        }

        /** @return topics without a DEK that had to queue for a new-DEK token (counted once per wait) */
        public long newDeksDelayed() {
            return newDeksDelayed.sum();
        }

        /** @return topics without a DEK refused at once because {@code maxTopicsWaitingForDek} topics already waited */
        public long newDeksRefused() {
            return newDeksRefused.sum();
        }

        /** @return envelopes refused without a KMS call because they name a KEK id that is not known */
        public long unknownKeks() {
            return unknownKeks.sum();
        }

        /** @return unwraps of never-seen wrapped DEKs told to wait for a token of the unwrap rate limit */
        public long unwrapsDelayed() {
            return unwrapsDelayed.sum();
        }

        @Override
        public String toString() {
            return "kmsCalls=" + kmsCalls() + " kmsFailures=" + kmsFailures() + " kmsSkipped=" + kmsSkipped()
                    + " deksGenerated=" + deksGenerated() + " unwraps=" + unwraps() + " decryptCacheMisses=" + cacheMisses()
                    + " keysNotReady=" + keysNotReady() + " newDeksDelayed=" + newDeksDelayed() + " newDeksRefused=" + newDeksRefused() + " unknownKeks=" + unknownKeks()
                    + " unwrapsDelayed=" + unwrapsDelayed();
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
    private final ScheduledThreadPoolExecutor timer;
    private final ConcurrentHashMap<String, TopicState> topics = new ConcurrentHashMap<>();
    /** The DEK cache: only DEKs that unwrapped (or that this instance generated). */
    private final ConcurrentHashMap<CacheKey, CacheEntry> unwrapped = new ConcurrentHashMap<>();
    /**
     * Unwraps in flight (bounded by the unwrap tokens) and failed unwraps, kept for their backoff so a partition of
     * undecryptable records polled again costs no KMS call (bounded by {@code maxFailedUnwraps}). Apart from
     * {@link #unwrapped}, so that forged wrapped DEKs can never push good DEKs out of the cache; an unwrap that
     * succeeds moves to it.
     */
    private final ConcurrentHashMap<CacheKey, CacheEntry> unsettled = new ConcurrentHashMap<>();
    private final ThreadLocal<CacheEntry> lastUsed = new ThreadLocal<>();
    private final Backoff backoff = new Backoff();
    private final TokenBucket newDeks;
    private final UnwrapTokens unwrapTokens;
    private final KnownKeks knownKeks;

    public DekManager(KekProvider provider, Settings settings) {
        this(provider, settings, System::nanoTime);
    }

    DekManager(KekProvider provider, Settings settings, LongSupplier nanoTime) {
        this.provider = Objects.requireNonNull(provider, "provider");
        this.settings = Objects.requireNonNull(settings, "settings");
        this.nanoTime = nanoTime;
        this.newDeks = new TokenBucket(settings.newDataKeysPerSecond(), settings.newDataKeysBurst(), settings.maxTopicsWaitingForDek());
        this.knownKeks = new KnownKeks();
        this.unwrapTokens = new UnwrapTokens(settings.unwrapsPerSecond(), settings.unwrapsBurst());
        this.kmsPool = Executors.newFixedThreadPool(4, Thread.ofPlatform().daemon().name("meshcrypt-kms-", 0).factory());
        this.timer = new ScheduledThreadPoolExecutor(1, Thread.ofPlatform().daemon().name("meshcrypt-keys").factory());
        // Every KMS call schedules its timeout and cancels it when done: do not let cancelled ones pile up.
        timer.setRemoveOnCancelPolicy(true);
        long check = settings.kekCheckInterval().toMillis();
        // The check calls the KMS: on the KMS pool, never on the timer, which must stay free to end waits on time.
        timer.scheduleWithFixedDelay(() -> {
            try {
                kmsPool.execute(this::checkCurrentKek);
            } catch (RejectedExecutionException closing) {
                // closed
            }
        }, check, check, TimeUnit.MILLISECONDS);
        timer.scheduleWithFixedDelay(new MetricsLog(), 1, 1, TimeUnit.MINUTES);
        timer.scheduleWithFixedDelay(this::sweepIdleTopics, 1, 1, TimeUnit.MINUTES);
        // Learn the known KEK ids now, so the first envelopes of each KEK are not told to wait for the listing.
        knownKeks.refresh();
    }

    public Metrics metrics() {
        return metrics;
    }

    public KekProvider provider() {
        return provider;
    }

    /**
     * Never waits for the KMS.
     *
     * @return the DEK to encrypt one record of {@code topic} with, its use already counted
     * @throws KeyNotReadyException when a new DEK is being generated (or waits for a rate-limit token): retry the call
     *     once its future completes
     * @throws TransientKmsException when the last attempt to generate the DEK failed and the KMS is backing off
     * @throws KekRefusedException when the current KEK refused to wrap
     */
    public Dek forEncryption(String topic) throws GeneralSecurityException {
        TopicState state = topics.get(topic);
        if (state == null) {
            state = newTopic(topic);
        }
        for (int attempt = 0; attempt < 3; attempt++) {
            Dek dek = state.current;
            if (dek != null) {
                long now = nanoTime.getAsLong();
                long uses = dek.uses.incrementAndGet();
                long age = now - dek.createdNanos;
                if (uses <= settings.maxRecordsPerDek() && age < settings.maxDekAge().toNanos()) {
                    if (dek.retired || uses >= settings.maxRecordsPerDek() / 10 * 9 || age >= settings.maxDekAge().toNanos() / 10 * 9) {
                        state.replaceInBackground(dek);
                    }
                    return dek;
                }
            }
            KmsWork<Dek> work = state.replace(dek);
            if (work != null) {
                work.poll(topic, null);
            }
            // Done already, or another thread installed a DEK: look again.
        }
        throw new TransientKmsException("no usable DEK for topic '" + topic + "' (DEKs exhausted as fast as they were generated)", null);
    }

    /**
     * Starts whatever {@link #forEncryption} would wait for, without using a DEK, so that a request naming several
     * topics costs one KMS round trip instead of one per topic (the caller prepares every topic of the request, then
     * parks once on {@code allOf} the futures). Same rules as {@link #forEncryption}: a topic without a DEK takes a
     * rate-limit token; errors are not thrown here, the later {@code forEncryption} reports them.
     *
     * @return null when {@code forEncryption(topic)} will not throw {@link KeyNotReadyException} now, else the future
     *     to wait for (as {@link KeyNotReadyException#ready()})
     */
    public CompletableFuture<Void> prepareForEncryption(String topic) {
        try {
            TopicState state = topics.get(topic);
            if (state == null) {
                state = newTopic(topic);
            }
            Dek dek = state.current;
            if (dek != null && dek.uses.get() < settings.maxRecordsPerDek()
                    && nanoTime.getAsLong() - dek.createdNanos < settings.maxDekAge().toNanos()) {
                return null;
            }
            KmsWork<Dek> work = state.replace(dek);
            return work == null || !work.running() ? null : work.ready.copy();
        } catch (KeyNotReadyException e) {
            return e.ready();
        } catch (TransientKmsException e) {
            return null; // too many topics wait: forEncryption reports it
        }
    }

    /**
     * A topic without a DEK: its first DEK costs a token, taken before the topic gets any state, so names that never
     * get a token cost no memory here.
     */
    private TopicState newTopic(String topic) throws TransientKmsException {
        CompletableFuture<Void> wait = newDeks.acquireOrQueue(topic);
        if (wait != null) {
            metrics.keysNotReady.increment();
            throw new KeyNotReadyException("new-DEK rate limit (" + settings.newDataKeysPerSecond() + "/s, burst "
                    + settings.newDataKeysBurst() + ") reached: the first DEK for topic '" + topic + "' waits for a token", wait);
        }
        TopicState created = new TopicState(topic, true);
        TopicState existing = topics.putIfAbsent(topic, created);
        if (existing != null) {
            newDeks.refund();
            return existing;
        }
        return created;
    }

    /**
     * Never waits for the KMS; never asks it about a KEK id that is not known.
     *
     * @param envelope a version-2 envelope (position..limit) whose header {@code info} describes
     * @return the unwrapped DEK for it, from the cache when possible
     * @throws KeyNotReadyException when the DEK is being unwrapped (or the known KEK ids are being read, or the unwrap
     *     rate limit has no token for a wrapped DEK never unwrapped here): retry the call once its future completes
     * @throws UnknownKekException when the envelope names a KEK id the configuration does not know (no KMS call)
     * @throws EnvelopeException when the wrapped DEK is longer than {@code maxWrappedDekBytes} (no KMS call)
     * @throws KekRefusedException when the KEK is missing or disabled, or the wrapped DEK does not unwrap
     * @throws TransientKmsException when the KMS failed or did not answer within {@code kmsTimeout}
     */
    public SecretKeySpec forDecryption(String topic, ByteBuffer envelope, ValueEnvelopeV2.Info info) throws GeneralSecurityException {
        int from = envelope.position() + info.keyOffset();
        int length = info.headerLength() - info.keyOffset();
        long now = nanoTime.getAsLong();
        CacheEntry last = lastUsed.get();
        if (last != null && last.usableAt(now) && last.matches(envelope, from, length, topic)) {
            return last.key();
        }
        if (info.wrappedDekLength() > settings.maxWrappedDekBytes()) {
            throw new EnvelopeException("value" + ValueEnvelope.onTopic(topic) + " names a wrapped DEK of " + info.wrappedDekLength()
                    + " bytes, more than keys allow (" + settings.maxWrappedDekBytes() + "): not written by meshcrypt");
        }
        byte[] keyBytes = new byte[length];
        envelope.get(from, keyBytes);
        CacheKey cacheKey = new CacheKey(topic, keyBytes);
        CacheEntry entry = unwrapped.get(cacheKey);
        if (entry == null || !entry.validAt(now)) {
            CacheEntry pending = unsettled.get(cacheKey);
            if (pending != null && pending.validAt(now)) {
                entry = pending; // running: KeyNotReadyException; failed recently: that error, no KMS call
            } else {
                entry = startUnwrap(cacheKey, info, topic, now, entry != null && entry.work.succeeded());
            }
        }
        SecretKeySpec key = entry.work.poll(topic, info);
        lastUsed.set(entry);
        return key;
    }

    /**
     * The allocation-free fast path for a run of records under one DEK: nothing is parsed or decoded.
     *
     * @param keySectionLength {@link ValueEnvelopeV2#keySectionLength} of {@code envelope}
     * @return the key when the envelope's key section is the one this thread decrypted with last and it is still
     *     cached, else null: then parse the envelope and call {@link #forDecryption}
     */
    SecretKeySpec cachedForDecryption(String topic, ByteBuffer envelope, int keySectionLength) {
        CacheEntry last = lastUsed.get();
        if (last != null && last.usableAt(nanoTime.getAsLong())
                && last.matches(envelope, envelope.position() + ValueEnvelopeV2.KEK_ID_LENGTH_OFFSET, keySectionLength, topic)) {
            return last.key();
        }
        return null;
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

    /**
     * A cache miss: checks the KEK id, takes an unwrap token unless this wrapped DEK unwrapped here before (an expired
     * good DEK), and starts the unwrap unless another thread did.
     */
    private CacheEntry startUnwrap(CacheKey cacheKey, ValueEnvelopeV2.Info info, String topic, long now, boolean seen)
            throws GeneralSecurityException {
        // Before anything reaches the KMS: the KEK id comes from the record, which anyone may have written.
        knownKeks.check(info.kekId(), topic);
        metrics.cacheMisses.increment();
        if (!seen) {
            // A hostile broker can serve one forged wrapped DEK (under a known KEK id) per partition: each would be
            // an unwrap the KMS refuses. The bucket bounds what it can make the KMS do.
            CompletableFuture<Void> wait = unwrapTokens.tryAcquire();
            if (wait != null) {
                metrics.keysNotReady.increment();
                metrics.unwrapsDelayed.increment();
                throw new KeyNotReadyException("unwrap rate limit (" + settings.unwrapsPerSecond() + "/s, burst "
                        + settings.unwrapsBurst() + ") reached: DEK " + info.dekIdText() + ValueEnvelope.onTopic(topic)
                        + " waits for a token", wait);
            }
        }
        boolean[] started = new boolean[1];
        CacheEntry entry = unsettled.compute(cacheKey, (k, existing) -> {
            if (existing != null && existing.validAt(now)) {
                return existing;
            }
            CacheEntry cached = unwrapped.get(k);
            if (cached != null && cached.validAt(now)) {
                return null; // unwrapped meanwhile by another thread (moved out of this map); drops a stale failure
            }
            started[0] = true;
            return newUnwrap(k, info, now);
        });
        if (entry == null) {
            entry = unwrapped.get(cacheKey);
            if (entry == null) {
                // Unwrapped by another thread and evicted at once: rare, and the retry finds it or starts it.
                throw new KeyNotReadyException("DEK " + info.dekIdText() + ValueEnvelope.onTopic(topic) + " was evicted",
                        CompletableFuture.completedFuture(null));
            }
        }
        if (started[0]) {
            boundUnsettled(now, cacheKey);
        } else if (!seen) {
            unwrapTokens.refund(); // another thread started it first
        }
        return entry;
    }

    private CacheEntry newUnwrap(CacheKey key, ValueEnvelopeV2.Info info, long now) {
        byte[] wrapped = Arrays.copyOfRange(key.bytes(), key.bytes().length - info.wrappedDekLength(), key.bytes().length);
        DekContext context = new DekContext(key.topic(), info.dekId());
        CacheEntry entry = new CacheEntry(key);
        entry.expiresAtNanos = now + settings.cacheTtl().toNanos();
        // Assigned before the task can run: the task publishes the entry to the DEK cache, where readers poll its work.
        entry.work = new KmsWork<>();
        startKmsWork(entry.work, () -> {
            try {
                byte[] dek = kmsCall(() -> provider.unwrap(info.kekId(), wrapped, context));
                metrics.unwraps.increment();
                if (dek.length != DEK_BYTES) {
                    throw new KekRefusedException("KEK " + info.kekIdText() + " unwrapped a DEK of " + dek.length + " bytes, expected " + DEK_BYTES);
                }
                SecretKeySpec spec;
                try {
                    spec = new SecretKeySpec(dek, "AES");
                } finally {
                    Arrays.fill(dek, (byte) 0);
                }
                // Into the DEK cache before the work completes, so the caller's retry finds it there.
                unwrapped.put(key, entry);
                unsettled.remove(key, entry);
                evictIfFull(nanoTime.getAsLong(), key);
                return spec;
            } catch (GeneralSecurityException e) {
                // A failure is remembered (set before the work completes, so a retry sees it), and a partition of
                // undecryptable records polled again and again costs one KMS call per period: the current backoff for
                // an outage, the longest backoff for a missing or disabled KEK.
                long hold = e instanceof KekRefusedException
                        ? settings.backoffMax().toNanos()
                        : Math.max(settings.backoffMin().toNanos(), backoff.currentDelayNanos());
                entry.expiresAtNanos = nanoTime.getAsLong() + hold;
                log.warn("cannot unwrap DEK {}{} with KEK {} ({}): {}", context.dekIdText(), ValueEnvelope.onTopic(key.topic()),
                        info.kekIdText(), provider.name(), e.getMessage());
                throw e;
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
            if (wrapped.bytes().length > settings.maxWrappedDekBytes()) {
                // Never write an envelope this service would refuse to read.
                throw new KekRefusedException("KEK " + wrapped.kekId() + " wrapped a DEK into " + wrapped.bytes().length
                        + " bytes, more than keys allow (" + settings.maxWrappedDekBytes() + ")");
            }
            knownKeks.learn(wrapped.kekId());
            SecretKeySpec key = new SecretKeySpec(dek, "AES");
            byte[] header = ValueEnvelopeV2.header(wrapped.kekId(), dekId, wrapped.bytes());
            long now = nanoTime.getAsLong();
            metrics.deksGenerated.increment();
            // The producer's own DEK decrypts its records on this instance without an unwrap call.
            byte[] keyBytes = Arrays.copyOfRange(header, ValueEnvelopeV2.KEK_ID_LENGTH_OFFSET, header.length);
            CacheEntry entry = new CacheEntry(new CacheKey(topic, keyBytes));
            entry.work = completedWork(key);
            entry.expiresAtNanos = now + settings.cacheTtl().toNanos();
            unwrapped.put(entry.key, entry);
            evictIfFull(now, entry.key);
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
            if (!knownKeks.contains(current)) {
                knownKeks.learn(current);
                // A rotation happened elsewhere: read the list too, so KEKs in between are known.
                knownKeks.refresh();
            }
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

    /** Drops topics whose DEK has expired (or never came) and that nothing is generating for: bounds the topic map. */
    void sweepIdleTopics() {
        long now = nanoTime.getAsLong();
        topics.values().removeIf(state -> state.idleAt(now));
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
        } catch (KekRefusedException e) {
            // The KMS answered: the key is the problem, not the KMS, so other keys keep working.
            metrics.kmsFailures.increment();
            backoff.succeeded();
            throw e;
        } catch (GeneralSecurityException | RuntimeException e) {
            metrics.kmsFailures.increment();
            backoff.failed(e);
            throw new TransientKmsException("KMS call to " + provider.name() + " failed: " + e.getMessage(), e);
        }
    }

    /**
     * Runs {@code task} on the KMS pool. The work's {@code ready} future completes when the task has finished (after
     * its own bookkeeping) or when {@code kmsTimeout} has passed, whichever comes first.
     */
    private <T> KmsWork<T> startKmsWork(KmsCall<T> task) {
        return startKmsWork(new KmsWork<>(), task);
    }

    private <T> KmsWork<T> startKmsWork(KmsWork<T> work, KmsCall<T> task) {
        try {
            work.timeout = timer.schedule(work::timedOut, settings.kmsTimeout().toNanos(), TimeUnit.NANOSECONDS);
            kmsPool.execute(() -> work.run(task));
        } catch (RejectedExecutionException e) {
            work.finish(null, new TransientKmsException("the key manager is closed", e));
        }
        return work;
    }

    private <T> KmsWork<T> completedWork(T value) {
        KmsWork<T> work = new KmsWork<>();
        work.finish(value, null);
        return work;
    }

    /** Expired entries go first; never {@code keep}, the entry just added (evicting it would only repeat its KMS call). */
    private void evictIfFull(long now, CacheKey keep) {
        if (unwrapped.size() <= settings.cacheMaxEntries()) {
            return;
        }
        unwrapped.values().removeIf(e -> !e.validAt(now));
        Iterator<CacheKey> it = unwrapped.keySet().iterator();
        while (unwrapped.size() > settings.cacheMaxEntries() && it.hasNext()) {
            if (!it.next().equals(keep)) {
                it.remove();
            }
        }
    }

    /**
     * Bounds the in-flight and failed unwraps by {@code maxFailedUnwraps}: expired failures go first, never {@code keep}
     * (just started). Forgetting a failure early only means its next poll asks the KMS again, which costs a token;
     * forgetting one in flight, that its caller's retry starts it again.
     */
    private void boundUnsettled(long now, CacheKey keep) {
        if (unsettled.size() <= settings.maxFailedUnwraps()) {
            return;
        }
        unsettled.values().removeIf(e -> !e.validAt(now));
        Iterator<Map.Entry<CacheKey, CacheEntry>> it = unsettled.entrySet().iterator();
        while (unsettled.size() > settings.maxFailedUnwraps() && it.hasNext()) {
            Map.Entry<CacheKey, CacheEntry> e = it.next();
            // Failures first: a running unwrap has cost its token already.
            if (!e.getKey().equals(keep) && !e.getValue().work.running()) {
                it.remove();
            }
        }
        it = unsettled.entrySet().iterator();
        while (unsettled.size() > settings.maxFailedUnwraps() && it.hasNext()) {
            if (!it.next().getKey().equals(keep)) {
                it.remove();
            }
        }
    }

    /** Stops KMS work; callers parked on a {@link KeyNotReadyException} are released (their retry fails). */
    @Override
    public void close() {
        timer.shutdownNow();
        kmsPool.shutdownNow();
        newDeks.closeWaiting();
        provider.close();
    }

    /**
     * One KMS operation that per-record callers may ask about without waiting: its result when done, else a
     * {@link KeyNotReadyException} carrying {@link #ready}.
     */
    private final class KmsWork<T> {
        private final CompletableFuture<T> result = new CompletableFuture<>();
        private final CompletableFuture<Void> ready = new CompletableFuture<>();
        private volatile boolean timedOut;
        private volatile ScheduledFuture<?> timeout;

        void run(KmsCall<T> task) {
            try {
                finish(task.call(), null);
            } catch (GeneralSecurityException | RuntimeException e) {
                finish(null, e);
            } catch (Error e) {
                finish(null, new TransientKmsException("KMS call failed: " + e, e));
                throw e;
            }
        }

        void finish(T value, Throwable error) {
            if (error == null) {
                result.complete(value);
            } else {
                result.completeExceptionally(error);
            }
            ScheduledFuture<?> t = timeout;
            if (t != null) {
                t.cancel(false);
            }
            ready.complete(null);
        }

        void timedOut() {
            timedOut = true;
            ready.complete(null);
        }

        boolean running() {
            return !result.isDone();
        }

        boolean succeeded() {
            return result.isDone() && !result.isCompletedExceptionally();
        }

        T value() {
            return result.getNow(null);
        }

        /**
         * @param topic the topic of the DEK asked for, null for the KEK listing
         * @param info the envelope whose DEK is unwrapped, null for a new DEK or the KEK listing
         * @return the result when the work succeeded
         * @throws GeneralSecurityException its error when it failed; {@link TransientKmsException} when it has run
         *     longer than {@code kmsTimeout}; {@link KeyNotReadyException} while it runs
         */
        T poll(String topic, ValueEnvelopeV2.Info info) throws GeneralSecurityException {
            if (result.isDone()) {
                if (!result.isCompletedExceptionally()) {
                    return result.getNow(null);
                }
                Throwable cause = result.exceptionNow();
                if (cause instanceof GeneralSecurityException g) {
                    throw g;
                }
                throw new TransientKmsException("cannot get " + describe(topic, info) + ": " + cause, cause);
            }
            if (timedOut) {
                throw new TransientKmsException("KMS " + provider.name() + " did not provide " + describe(topic, info)
                        + " within " + settings.kmsTimeout().toMillis() + " ms", null);
            }
            metrics.keysNotReady.increment();
            throw new KeyNotReadyException("waiting for KMS " + provider.name() + " to provide " + describe(topic, info), ready);
        }

        /** Built only when something is thrown: the per-record path concatenates nothing. */
        private static String describe(String topic, ValueEnvelopeV2.Info info) {
            if (topic == null) {
                return "the list of known KEKs";
            }
            return info == null ? "a new DEK for topic '" + topic + "'"
                    : "DEK " + info.dekIdText() + ValueEnvelope.onTopic(topic) + " (KEK " + info.kekIdText() + ")";
        }
    }

    private final class TopicState {
        final String topic;
        volatile Dek current;
        /** Written under this lock; volatile so the per-record background check reads it without the lock. */
        private volatile KmsWork<Dek> pending;
        private long retryAfterNanos;
        /** The token newTopic took for this topic's first DEK, not yet spent. */
        private boolean tokenPaid;

        TopicState(String topic, boolean tokenPaid) {
            this.topic = topic;
            this.tokenPaid = tokenPaid;
        }

        /**
         * Starts generating a replacement for {@code seen} unless one is running, or the last attempt failed and its
         * backoff has not passed (then that failed work is returned, so the caller gets its error).
         *
         * <p>Only a topic that has never had a DEK needs a rate-limit token: replacing an existing DEK (at its limit,
         * retired, or its KEK rotated) is driven by record counts, age and operators, not by names a client picks; the
         * topics that can have one are already bounded by the tokens; and the old DEK keeps serving while the
         * replacement is generated at 90% of its limits, so making rotations wait behind a flood of new names would
         * only let that flood stall topics that were fine.
         *
         * @return the work to poll, or null when another DEK is already installed (look again)
         * @throws KeyNotReadyException when a DEK for a topic without one waits for a rate-limit token
         * @throws TransientKmsException when too many topics already wait for one
         */
        synchronized KmsWork<Dek> replace(Dek seen) throws TransientKmsException {
            if (current != seen) {
                return null;
            }
            KmsWork<Dek> work = pending;
            if (work != null && (work.running() || (!work.succeeded() && nanoTime.getAsLong() - retryAfterNanos < 0))) {
                return work;
            }
            if (seen == null && !tokenPaid) {
                // A topic whose first DEK failed: trying again is a new DEK again.
                CompletableFuture<Void> wait = newDeks.acquireOrQueue(topic);
                if (wait != null) {
                    metrics.keysNotReady.increment();
                    throw new KeyNotReadyException("new-DEK rate limit reached: the first DEK for topic '" + topic
                            + "' waits for a token", wait);
                }
            }
            tokenPaid = false;
            pending = startKmsWork(() -> {
                try {
                    Dek dek = generate(topic);
                    current = dek;
                    return dek;
                } catch (GeneralSecurityException e) {
                    synchronized (this) {
                        retryAfterNanos = nanoTime.getAsLong() + Math.max(settings.backoffMin().toNanos(), backoff.currentDelayNanos());
                    }
                    log.warn("cannot generate a DEK for topic '{}' ({}): {}", topic, provider.name(), e.getMessage());
                    throw e;
                }
            });
            return pending;
        }

        /** The current DEK is past 90% of a limit or retired: get the next one ready while it keeps serving. */
        void replaceInBackground(Dek seen) {
            KmsWork<Dek> work = pending;
            if (work != null && work.running()) {
                return;
            }
            try {
                replace(seen);
            } catch (TransientKmsException impossible) {
                // seen is not null: replacing a DEK takes no token.
            }
        }

        /** Called by the token queue: this topic's first DEK has its token now. */
        void grantToken(CompletableFuture<Void> ticket) {
            KmsWork<Dek> work;
            try {
                synchronized (this) {
                    tokenPaid = true;
                    // Got a DEK meanwhile: nothing to start (a replacement takes no token), the token goes back.
                    work = current != null ? null : replace(null);
                }
            } catch (TransientKmsException impossible) {
                work = null; // the token is paid: replace takes none
            }
            if (work == null || !work.running()) {
                boolean unused;
                synchronized (this) {
                    unused = tokenPaid;
                    tokenPaid = false;
                }
                if (unused) {
                    newDeks.refund(); // a DEK came another way, or the last attempt's backoff still runs
                }
                ticket.complete(null);
            } else {
                // The waiters retry when the DEK is there (or failed, or kmsTimeout passed), not before.
                work.ready.whenComplete((v, e) -> ticket.complete(null));
            }
        }

        synchronized boolean idleAt(long now) {
            if (tokenPaid || pending != null && (pending.running() || now - retryAfterNanos < 0)) {
                return false;
            }
            Dek dek = current;
            return dek == null || now - dek.createdNanos >= settings.maxDekAge().toNanos();
        }
    }

    /**
     * Tokens for DEKs of topics that have none. When none is left, topics queue first come first served: when a token
     * is due the timer hands it to the oldest waiting topic and starts its DEK, so a stream of new names cannot
     * overtake a topic that asked earlier, and nobody polls. The queue is bounded ({@code maxTopicsWaitingForDek}).
     */
    private final class TokenBucket {
        private final double perNano;
        private final double capacity;
        private final int maxWaiting;
        private double tokens;
        private long lastNanos;
        private final LinkedHashMap<String, CompletableFuture<Void>> waiting = new LinkedHashMap<>();
        private boolean drainScheduled;
        private boolean closed;

        TokenBucket(double perSecond, int burst, int maxWaiting) {
            this.perNano = perSecond / 1e9;
            this.capacity = burst;
            this.maxWaiting = maxWaiting;
            this.tokens = burst;
            this.lastNanos = nanoTime.getAsLong();
        }

        /**
         * @return null when a token was taken for {@code topic}, else the future of its place in the queue (the same
         *     one when asked again), completed once its DEK is made or failed
         * @throws TransientKmsException when {@code maxTopicsWaitingForDek} topics already wait
         */
        synchronized CompletableFuture<Void> acquireOrQueue(String topic) throws TransientKmsException {
            if (closed) {
                throw new TransientKmsException("the key manager is closed", null);
            }
            CompletableFuture<Void> queued = waiting.get(topic);
            if (queued != null) {
                return queued;
            }
            refill();
            if (waiting.isEmpty() && tokens >= 1) {
                tokens -= 1;
                return null;
            }
            if (waiting.size() >= maxWaiting) {
                metrics.newDeksRefused.increment();
                throw new TransientKmsException("new-DEK rate limit (" + settings.newDataKeysPerSecond() + "/s): "
                        + maxWaiting + " topics already wait for a first DEK; refusing topic '" + topic + "'", null);
            }
            CompletableFuture<Void> ticket = new CompletableFuture<>();
            waiting.put(topic, ticket);
            metrics.newDeksDelayed.increment();
            scheduleDrain();
            return ticket;
        }

        synchronized void closeWaiting() {
            closed = true;
            TransientKmsException error = new TransientKmsException("the key manager is closed", null);
            waiting.values().forEach(f -> f.completeExceptionally(error));
            waiting.clear();
        }

        synchronized void refund() {
            refill();
            tokens = Math.min(capacity, tokens + 1);
        }

        private void refill() {
            long now = nanoTime.getAsLong();
            tokens = Math.min(capacity, tokens + (now - lastNanos) * perNano);
            lastNanos = now;
        }

        private void scheduleDrain() {
            if (drainScheduled) {
                return;
            }
            long delay = Math.max(1, (long) Math.ceil((1 - tokens) / perNano));
            try {
                timer.schedule(this::drain, delay, TimeUnit.NANOSECONDS);
                drainScheduled = true;
            } catch (RejectedExecutionException rejected) {
                closeWaiting(); // the timer only refuses work once the manager is closing
            }
        }

        /** Timer: hands the tokens that are due to the oldest waiting topics, and starts their DEKs. */
        private void drain() {
            List<Map.Entry<String, CompletableFuture<Void>>> granted = new ArrayList<>();
            synchronized (this) {
                drainScheduled = false;
                refill();
                Iterator<Map.Entry<String, CompletableFuture<Void>>> it = waiting.entrySet().iterator();
                while (tokens >= 1 && it.hasNext()) {
                    granted.add(it.next());
                    it.remove();
                    tokens -= 1;
                }
                if (!waiting.isEmpty()) {
                    scheduleDrain();
                }
            }
            for (Map.Entry<String, CompletableFuture<Void>> e : granted) {
                try {
                    topics.computeIfAbsent(e.getKey(), t -> new TopicState(t, false)).grantToken(e.getValue());
                } catch (RuntimeException failed) {
                    e.getValue().complete(null); // the retry reports whatever is wrong
                    log.warn("cannot start the first DEK for topic '{}': {}", e.getKey(), failed.toString());
                }
            }
        }
    }

    /**
     * Tokens for unwraps of wrapped DEKs never unwrapped here. Without a token the caller is told to retry when the
     * next token is due; every such caller shares one timer-completed future, so a flood of forged envelopes costs one
     * scheduled task, not one per partition. No queue: retries race for the token (unlike new DEKs, no client-chosen
     * name is at stake, and a legitimate consumer's retry of a cached DEK needs no token at all).
     */
    private final class UnwrapTokens {
        private final double perNano;
        private final double capacity;
        private double tokens;
        private long lastNanos;
        private CompletableFuture<Void> nextToken;

        UnwrapTokens(double perSecond, int burst) {
            this.perNano = perSecond / 1e9;
            this.capacity = burst;
            this.tokens = burst;
            this.lastNanos = nanoTime.getAsLong();
        }

        /** @return null when a token was taken, else a future that completes when the next one is due */
        synchronized CompletableFuture<Void> tryAcquire() {
            long now = nanoTime.getAsLong();
            tokens = Math.min(capacity, tokens + (now - lastNanos) * perNano);
            lastNanos = now;
            if (tokens >= 1) {
                tokens -= 1;
                return null;
            }
            if (nextToken == null || nextToken.isDone()) {
                CompletableFuture<Void> due = new CompletableFuture<>();
                long delay = Math.max(1, (long) Math.ceil((1 - tokens) / perNano));
                try {
                    timer.schedule(() -> due.complete(null), delay, TimeUnit.NANOSECONDS);
                } catch (RejectedExecutionException closing) {
                    due.completeExceptionally(new TransientKmsException("the key manager is closed", closing));
                }
                nextToken = due;
            }
            return nextToken;
        }

        synchronized void refund() {
            tokens = Math.min(capacity, tokens + 1);
        }
    }

    /**
     * The KEK ids an envelope may name: {@code knownKekIds} from the settings, every KEK the provider reports
     * (current and listed), and every KEK our own wraps used. The set only grows, and only from the provider and the
     * configuration, never from an envelope. An unknown id read from a record makes the list be read again (at most
     * every {@code kekListMinInterval}, so a KEK rotated by another process is found) and is refused otherwise.
     */
    private final class KnownKeks {
        private volatile Set<String> ids = Set.copyOf(settings.knownKekIds());
        private KmsWork<Void> listing;
        private long listedAtNanos;
        private long fullyListedAtNanos;
        private long retryAfterNanos;
        private boolean listed;
        private boolean fullyListed;
        private boolean listRefusedLogged;

        boolean contains(String kekId) {
            return ids.contains(kekId);
        }

        synchronized void learn(String kekId) {
            if (!ids.contains(kekId)) {
                Set<String> next = new HashSet<>(ids);
                next.add(kekId);
                ids = Set.copyOf(next);
            }
        }

        /** @throws UnknownKekException, KeyNotReadyException, TransientKmsException: see {@link #forDecryption} */
        void check(String kekId, String topic) throws GeneralSecurityException {
            if (ids.contains(kekId)) {
                return;
            }
            KmsWork<Void> work;
            synchronized (this) {
                long now = nanoTime.getAsLong();
                if (listed && now - listedAtNanos < settings.kekListMinInterval().toNanos()) {
                    work = null; // listed recently: decide now, without any KMS call
                } else {
                    work = listing;
                    if (work == null || (!work.running() && (work.succeeded() || now - retryAfterNanos >= 0))) {
                        work = refresh();
                    }
                }
            }
            if (work != null && !work.succeeded()) {
                // Running: KeyNotReadyException. Failed: its error (an outage is no reason to call a record forged).
                work.poll(null, null);
            }
            if (!ids.contains(kekId)) {
                metrics.unknownKeks.increment();
                // The id is attacker-chosen: escaped and cut, so it can neither forge log lines nor flood them.
                throw new UnknownKekException("value" + ValueEnvelope.onTopic(topic) + " names KEK "
                        + Printable.of(kekId, Printable.UNKNOWN_KEK_ID_CHARS) + ", which is not a KEK of " + provider.name() + " this configuration knows (forged, or written"
                        + " under another key store; add it to keys.knownKekIds if it is legitimate)", kekId);
            }
        }

        /**
         * Starts reading the current KEK, and the provider's KEK list when it was last read {@code kekCheckInterval} ago
         * or more, unless a read is running. The current KEK is what a rotation elsewhere adds (one cheap call); the
         * full list (on AWS, a DescribeKey per key of the account) is read at start and then rarely.
         */
        synchronized KmsWork<Void> refresh() {
            if (listing != null && listing.running()) {
                return listing;
            }
            listing = startKmsWork(() -> {
                try {
                    list();
                    synchronized (this) {
                        listed = true;
                        listedAtNanos = nanoTime.getAsLong();
                    }
                    return null;
                } catch (GeneralSecurityException e) {
                    synchronized (this) {
                        retryAfterNanos = nanoTime.getAsLong() + Math.max(settings.backoffMin().toNanos(), backoff.currentDelayNanos());
                    }
                    log.warn("cannot read the KEKs of {}: {}", provider.name(), e.getMessage());
                    throw e;
                }
            });
            return listing;
        }

        private void list() throws GeneralSecurityException {
            boolean full;
            synchronized (this) {
                full = !fullyListed || nanoTime.getAsLong() - fullyListedAtNanos >= settings.kekCheckInterval().toNanos();
            }
            String current = null;
            TransientKmsException outage = null;
            try {
                current = kmsCall(provider::currentKekId);
            } catch (TransientKmsException e) {
                outage = e;
            } catch (KekRefusedException e) {
                log.warn("KEK provider {} has no usable current KEK: {}", provider.name(), e.getMessage());
            }
            List<KekProvider.KekInfo> listedKeks = List.of();
            try {
                if (full) {
                    listedKeks = kmsCall(provider::list);
                }
            } catch (TransientKmsException e) {
                outage = e;
            } catch (KekRefusedException e) {
                // E.g. AWS without kms:ListKeys: only the current KEK and keys.knownKekIds are accepted.
                synchronized (this) {
                    if (!listRefusedLogged) {
                        listRefusedLogged = true;
                        log.warn("KEK provider {} does not list its KEKs ({}): envelopes are accepted only under the current"
                                + " KEK, KEKs current while this service ran, and keys.knownKekIds", provider.name(), e.getMessage());
                    }
                }
            }
            if (outage != null) {
                // Partial knowledge is not a reason to refuse records as forged: report the outage, retry later.
                if (current != null) {
                    learn(current);
                }
                throw outage;
            }
            Set<String> next = new HashSet<>(ids);
            if (current != null) {
                next.add(current);
            }
            for (KekProvider.KekInfo k : listedKeks) {
                next.add(k.kekId());
            }
            synchronized (this) {
                next.addAll(ids);
                ids = Set.copyOf(next);
                if (full) {
                    fullyListed = true;
                    fullyListedAtNanos = nanoTime.getAsLong();
                }
            }
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
        volatile KmsWork<SecretKeySpec> work;
        volatile long expiresAtNanos;

        CacheEntry(CacheKey key) {
            this.key = key;
        }

        boolean validAt(long now) {
            return now - expiresAtNanos < 0;
        }

        boolean usableAt(long now) {
            return validAt(now) && work.succeeded();
        }

        SecretKeySpec key() {
            return work.value();
        }

        /** Compares without allocating: this runs for every record whose DEK is the one last used on this thread. */
        boolean matches(ByteBuffer envelope, int from, int length, String topic) {
            byte[] bytes = key.bytes;
            if (bytes.length != length || !key.topic.equals(topic)) {
                return false;
            }
            if (envelope.hasArray()) {
                int offset = envelope.arrayOffset() + from;
                return Arrays.equals(envelope.array(), offset, offset + length, bytes, 0, length);
            }
            for (int i = 0; i < length; i++) {
                if (envelope.get(from + i) != bytes[i]) {
                    return false;
                }
            }
            return true;
        }
    }

    /** Exponential backoff shared by all KMS calls of this manager. */
    private final class Backoff {
        private int failures;
        private long nextAttemptNanos;
        private String lastError = "";

        synchronized void checkAllowed() throws TransientKmsException {
            long now = nanoTime.getAsLong();
            if (failures > 0 && now - nextAttemptNanos < 0) {
                metrics.kmsSkipped.increment();
                throw new TransientKmsException("KMS " + provider.name() + " is backing off after " + failures
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
