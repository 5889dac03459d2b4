package io.meshcrypt.filter.crypto;

import io.meshcrypt.filter.kms.AuditedKekProvider;
import io.meshcrypt.filter.kms.InstrumentedKekProvider;
import io.meshcrypt.filter.kms.KekProvider;
import io.meshcrypt.filter.kms.KekRefusedException;
import io.meshcrypt.filter.kms.KeyAudit;
import io.meshcrypt.filter.kms.KeyMetrics;
import io.meshcrypt.filter.kms.KeyNotReadyException;
import io.meshcrypt.filter.kms.ResilientKekProvider;
import io.meshcrypt.filter.kms.TransientKmsException;
import java.nio.ByteBuffer;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import javax.crypto.spec.SecretKeySpec;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Data encryption keys for {@link ValueCipherV2}: the facade over the DEK caches and the KMS decorators they share,
 * composed as {@code ResilientKekProvider(InstrumentedKekProvider(AuditedKekProvider(provider)))}, with {@link EncryptionDeks} (one
 * current DEK per topic) and {@link DecryptionDeks} (the unwrapped DEK cache). It owns the KMS pool and the timer.
 *
 * <p>The per-record paths ({@link #forEncryption}, {@link #forDecryption}) never wait for the KMS. While a usable DEK
 * is cached they are a map lookup and a counter. Otherwise they start the KMS work on a small dedicated pool
 * (single-flight per topic for a new DEK, per wrapped DEK for an unwrap) and throw {@link KeyNotReadyException},
 * whose future tells the caller (the connection) when to retry; the retry finds the key cached or gets the real
 * outcome ({@link TransientKmsException}, {@link KekRefusedException}).
 */
public final class DekManager implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(DekManager.class);

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

        EncryptionDeks.Settings encryption() {
            return new EncryptionDeks.Settings(maxRecordsPerDek, maxDekAge, newDataKeysPerSecond, newDataKeysBurst,
                    maxTopicsWaitingForDek, maxWrappedDekBytes);
        }

        DecryptionDeks.Settings decryption() {
            return new DecryptionDeks.Settings(cacheTtl, cacheMaxEntries, maxWrappedDekBytes);
        }

        /** The limits that belong to the KMS decorator. */
        ResilientKekProvider.Settings resilience() {
            return new ResilientKekProvider.Settings(cacheTtl, kmsTimeout, backoffMin, backoffMax, kekCheckInterval,
                    knownKekIds, kekListMinInterval, unwrapsPerSecond, unwrapsBurst, maxFailedUnwraps);
        }
    }

    private final KekProvider provider;
    private final KeyMetrics metrics = new KeyMetrics();
    private final ExecutorService kmsPool;
    private final ScheduledThreadPoolExecutor timer;
    private final ResilientKekProvider kms;
    private final DecryptionDeks decryption;
    private final EncryptionDeks encryption;

    public DekManager(KekProvider provider, Settings settings) {
        this(provider, settings, KeyAudit.NONE);
    }

    /** @param audit where key operations are reported (the audit trail) */
    public DekManager(KekProvider provider, Settings settings, KeyAudit audit) {
        this(provider, settings, System::nanoTime, audit);
    }

    DekManager(KekProvider provider, Settings settings, LongSupplier nanoTime) {
        this(provider, settings, nanoTime, KeyAudit.NONE);
    }

    DekManager(KekProvider provider, Settings settings, LongSupplier nanoTime, KeyAudit audit) {
        this.provider = Objects.requireNonNull(provider, "provider");
        Objects.requireNonNull(audit, "audit");
        Objects.requireNonNull(settings, "settings");
        this.kmsPool = Executors.newFixedThreadPool(4, Thread.ofPlatform().daemon().name("meshcrypt-kms-", 0).factory());
        this.timer = new ScheduledThreadPoolExecutor(1, Thread.ofPlatform().daemon().name("meshcrypt-keys").factory());
        // Every KMS call schedules its timeout and cancels it when done: do not let cancelled ones pile up.
        timer.setRemoveOnCancelPolicy(true);
        InstrumentedKekProvider instrumented = new InstrumentedKekProvider(new AuditedKekProvider(provider, audit), metrics);
        this.kms = new ResilientKekProvider(instrumented, settings.resilience(), metrics, nanoTime, kmsPool, timer);
        this.decryption = new DecryptionDeks(kms, settings.decryption(), metrics, nanoTime, audit);
        this.encryption = new EncryptionDeks(kms, decryption, settings.encryption(), metrics, nanoTime, timer, audit);
        long check = settings.kekCheckInterval().toMillis();
        // The check calls the KMS: on the KMS pool, never on the timer, which must stay free to end waits on time.
        timer.scheduleWithFixedDelay(() -> {
            try {
                kmsPool.execute(this::checkCurrentKek);
            } catch (RejectedExecutionException closing) {
                // closed
            }
        }, check, check, TimeUnit.MILLISECONDS);
        timer.scheduleWithFixedDelay(instrumented.metricsLog(), 1, 1, TimeUnit.MINUTES);
        timer.scheduleWithFixedDelay(encryption::sweepIdleTopics, 1, 1, TimeUnit.MINUTES);
        // Learn the known KEK ids now, so the first envelopes of each KEK are not told to wait for the listing.
        kms.refreshKnownKeks();
    }

    public KeyMetrics metrics() {
        return metrics;
    }

    /** @return whether the last KMS call succeeded (or none failed yet) */
    public boolean kmsReachable() {
        return kms.consecutiveFailures() == 0;
    }

    /** @return KMS calls failed in a row since the last success */
    public int kmsConsecutiveFailures() {
        return kms.consecutiveFailures();
    }

    /** @return unwrapped DEKs cached for decryption */
    public int cachedDecryptionKeys() {
        return decryption.size();
    }

    /** @return topics holding a DEK for encryption (read at scrape time: walks the topics) */
    public int encryptionTopics() {
        return encryption.topicsWithDek();
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
        return encryption.forEncryption(topic);
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
        return encryption.prepareForEncryption(topic);
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
        return decryption.forDecryption(topic, envelope, info);
    }

    /**
     * The allocation-free fast path for a run of records under one DEK: nothing is parsed or decoded.
     *
     * @param keySectionLength {@link ValueValueEnvelopeV2#keySectionLength} of {@code envelope}
     * @return the key when the envelope's key section is the one this thread decrypted with last and it is still
     *     cached, else null: then parse the envelope and call {@link #forDecryption}
     */
    SecretKeySpec cachedForDecryption(String topic, ByteBuffer envelope, int keySectionLength) {
        return decryption.cachedForDecryption(topic, envelope, keySectionLength);
    }

    /** Retires every current DEK: the next record of each topic gets a new one (generated in the background). */
    public void rotateDeks() {
        encryption.rotateDeks();
    }

    /** Retires DEKs wrapped by a KEK that is no longer current; runs every {@code kekCheckInterval}. */
    void checkCurrentKek() {
        try {
            encryption.retireDeksNotWrappedBy(kms.currentKekId());
        } catch (GeneralSecurityException | RuntimeException e) {
            log.warn("cannot check the current KEK ({}): {}", provider.name(), e.getMessage());
        }
    }

    /** Drops topics whose DEK has expired (or never came) and that nothing is generating for: bounds the topic map. */
    void sweepIdleTopics() {
        encryption.sweepIdleTopics();
    }

    /** Stops KMS work; callers parked on a {@link KeyNotReadyException} are released (their retry fails). */
    @Override
    public void close() {
        timer.shutdownNow();
        kmsPool.shutdownNow();
        encryption.closeWaiting();
        kms.close();
    }
}
