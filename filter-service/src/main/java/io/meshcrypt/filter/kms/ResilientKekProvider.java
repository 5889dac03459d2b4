package io.meshcrypt.filter.kms;

import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import java.util.function.Predicate;
import javax.crypto.spec.SecretKeySpec;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A {@link KekProvider} that an outage, a disabled key or a hostile broker cannot turn into a flood of KMS requests,
 * and whose {@link #unwrap} never waits for the KMS.
 *
 * <ul>
 *   <li>Backoff: after a failed call, further calls back off exponentially (failing fast with
 *       {@link TransientKmsException}, no request sent) until one succeeds.</li>
 *   <li>{@link #unwrap} is single-flight per wrapped DEK on a small bounded pool: it returns the DEK once unwrapped,
 *       else throws {@link KeyNotReadyException} (retry when its future completes) or the outcome. Failures are
 *       remembered (the current backoff for an outage, the longest backoff for a refused KEK), bounded by
 *       {@code maxFailedUnwraps}, so a partition of undecryptable records polled again costs no KMS call; wrapped DEKs
 *       never unwrapped here take a token of the unwrap rate limit first. A finished unwrap waits for its caller's
 *       retry apart from the failures, so forged wrapped DEKs never push a good DEK out before it is collected, and
 *       good DEKs never push out the memory of failures.</li>
 *   <li>The KEK ids an envelope may name ({@link #isKnownKek}) are learnt from the provider and the configuration
 *       only, so a forged header never makes the KMS see a key id the attacker chose.</li>
 *   <li>The other calls block, with backoff: run them on the pool with {@link #submit}.</li>
 * </ul>
 */
public final class ResilientKekProvider implements KekProvider {
    private static final Logger log = LoggerFactory.getLogger(ResilientKekProvider.class);

    /**
     * @param cacheTtl how long an unwrap in flight (or unwrapped but not yet collected) is remembered
     * @param kmsTimeout after this long a KMS call still running counts as failed for the callers waiting on it
     * @param backoffMin first wait after a failed KMS call; doubles per consecutive failure
     * @param backoffMax longest wait between KMS attempts
     * @param kekCheckInterval how often the full KEK list may be read again
     * @param knownKekIds KEK ids accepted besides those the provider reports
     * @param kekListMinInterval an unknown KEK id makes the KEKs be read again at most this often
     * @param unwrapsPerSecond sustained rate of unwraps of wrapped DEKs never unwrapped here
     * @param unwrapsBurst how many such unwraps may start at once
     * @param maxFailedUnwraps unwraps in flight or failed that are remembered; apart from them, as many finished ones
     *     waiting for their callers
     */
    public record Settings(Duration cacheTtl, Duration kmsTimeout, Duration backoffMin, Duration backoffMax,
                           Duration kekCheckInterval, Set<String> knownKekIds, Duration kekListMinInterval,
                           double unwrapsPerSecond, int unwrapsBurst, int maxFailedUnwraps) {
        public Settings {
            knownKekIds = Set.copyOf(knownKekIds);
        }
    }

    private final KekProvider inner;
    private final Settings settings;
    private final KeyMetrics metrics;
    private final LongSupplier nanoTime;
    private final ExecutorService kmsPool;
    private final ScheduledExecutorService timer;
    private final Backoff backoff = new Backoff();
    private final UnwrapTokens unwrapTokens;
    private final KnownKeks knownKeks;
    /** Unwraps in flight (bounded by the unwrap tokens) and failed (kept for their backoff); bounded by {@code maxFailedUnwraps}. */
    private final ConcurrentHashMap<UnwrapKey, Unwrap> unsettled = new ConcurrentHashMap<>();
    /**
     * Unwraps that succeeded, until their caller's retry collects them (or {@code cacheTtl} after they started): apart
     * from {@link #unsettled}, as the DEK cache was before the split. Bounded by {@code maxFailedUnwraps} of its own.
     */
    private final ConcurrentHashMap<UnwrapKey, Unwrap> uncollected = new ConcurrentHashMap<>();

    /**
     * @param kmsPool runs the KMS calls (bounded: the number of KMS requests in flight)
     * @param timer ends waits after {@code kmsTimeout} and hands out unwrap tokens; never runs a KMS call
     */
    public ResilientKekProvider(KekProvider inner, Settings settings, KeyMetrics metrics, LongSupplier nanoTime,
                                ExecutorService kmsPool, ScheduledExecutorService timer) {
        this.inner = Objects.requireNonNull(inner, "inner");
        this.settings = Objects.requireNonNull(settings, "settings");
        this.metrics = Objects.requireNonNull(metrics, "metrics");
        this.nanoTime = nanoTime;
        this.kmsPool = kmsPool;
        this.timer = timer;
        this.unwrapTokens = new UnwrapTokens(settings.unwrapsPerSecond(), settings.unwrapsBurst());
        this.knownKeks = new KnownKeks();
    }

    @Override
    public String name() {
        return inner.name();
    }

    /** Blocks. Learns the id; a KEK id not known before (a rotation elsewhere) makes the KEK list be read again. */
    @Override
    public String currentKekId() throws GeneralSecurityException {
        String current = kmsCall(inner::currentKekId);
        if (!knownKeks.contains(current)) {
            knownKeks.learn(current);
            // A rotation happened elsewhere: read the list too, so KEKs in between are known.
            knownKeks.refresh();
        }
        return current;
    }

    /** Blocks (run it with {@link #submit}). The wrapping KEK becomes a known KEK id. */
    @Override
    public WrappedDek wrap(byte[] dek, DekContext context) throws GeneralSecurityException {
        WrappedDek wrapped = kmsCall(() -> inner.wrap(dek, context));
        knownKeks.learn(wrapped.kekId());
        return wrapped;
    }

    /** As {@link #unwrap(String, byte[], DekContext, boolean)} for a wrapped DEK never unwrapped here. */
    @Override
    public byte[] unwrap(String kekId, byte[] wrapped, DekContext context) throws GeneralSecurityException {
        return unwrap(kekId, wrapped, context, false).dek();
    }

    /**
     * A DEK as {@link #unwrap(String, byte[], DekContext, boolean)} hands it over.
     *
     * @param dek a copy, for the caller to keep
     * @param expiresAtNanos {@code cacheTtl} after its unwrap started: a cache keeps it no longer, however late it was
     *     collected
     */
    public record Unwrapped(byte[] dek, long expiresAtNanos) {
    }

    /**
     * Never waits for the KMS. Call it only for a KEK id {@link #isKnownKek known}.
     *
     * @param unwrappedBefore this wrapped DEK unwrapped here before (an expired cached DEK): it takes no rate-limit token
     * @return the DEK, once unwrapped
     * @throws KeyNotReadyException while it is being unwrapped, or while the unwrap rate limit has no token for it
     * @throws KekRefusedException when the KEK is missing or disabled, or the wrapped DEK does not unwrap
     * @throws TransientKmsException when the KMS failed or did not answer within {@code kmsTimeout}
     */
    public Unwrapped unwrap(String kekId, byte[] wrapped, DekContext context, boolean unwrappedBefore)
            throws GeneralSecurityException {
        UnwrapKey key = new UnwrapKey(kekId, wrapped, context);
        long now = nanoTime.getAsLong();
        Unwrap done = uncollected.get(key);
        if (done != null && done.validAt(now)) {
            return collect(key, done);
        }
        Unwrap pending = unsettled.get(key);
        if (pending == null || !pending.validAt(now)) {
            metrics.cacheMisses.increment();
            if (!unwrappedBefore) {
                // A hostile broker can serve one forged wrapped DEK (under a known KEK id) per partition: each would be
                // an unwrap the KMS refuses. The bucket bounds what it can make the KMS do.
                CompletableFuture<Void> wait = unwrapTokens.tryAcquire();
                if (wait != null) {
                    metrics.keysNotReady.increment();
                    metrics.unwrapsDelayed.increment();
                    throw new KeyNotReadyException("unwrap rate limit (" + settings.unwrapsPerSecond() + "/s, burst "
                            + settings.unwrapsBurst() + ") reached: DEK " + context.dekIdText() + onTopic(context)
                            + " waits for a token", wait);
                }
            }
            boolean[] started = new boolean[1];
            Unwrap[] finished = new Unwrap[1];
            pending = unsettled.compute(key, (k, existing) -> {
                if (existing != null && existing.validAt(now)) {
                    return existing;
                }
                // Finished meanwhile: its task moves it to uncollected before it leaves this map.
                Unwrap succeeded = uncollected.get(k);
                if (succeeded != null && succeeded.validAt(now)) {
                    finished[0] = succeeded;
                    return existing;
                }
                started[0] = true;
                return newUnwrap(k, now);
            });
            if (started[0]) {
                boundUnsettled(now, key);
            } else if (!unwrappedBefore) {
                unwrapTokens.refund(); // another thread started it first
            }
            if (finished[0] != null) {
                return collect(key, finished[0]);
            }
        }
        // Failures stay, for their backoff; a success moved to uncollected when it finished.
        return collect(key, pending);
    }

    /** @return the DEK of a finished unwrap, which the caller caches from now on; else what {@link KmsWork#poll} throws */
    private Unwrapped collect(UnwrapKey key, Unwrap unwrap) throws GeneralSecurityException {
        SecretKeySpec dek = unwrap.work.poll();
        uncollected.remove(key, unwrap);
        return new Unwrapped(dek.getEncoded(), unwrap.expiresAtNanos);
    }

    /**
     * Never waits for the KMS; never asks it about {@code kekId}.
     *
     * @return whether an envelope may name {@code kekId}: the provider's current or listed KEKs, the KEKs this service
     *     wrapped with, and {@code knownKekIds}
     * @throws KeyNotReadyException while the KEK list is being read again (an unknown id reads it at most every
     *     {@code kekListMinInterval})
     * @throws TransientKmsException when reading it failed (an outage is no reason to call a record forged)
     */
    public boolean isKnownKek(String kekId) throws GeneralSecurityException {
        return knownKeks.check(kekId);
    }

    /** Starts reading the current KEK and the KEK list, so the first envelopes of each KEK need not wait for it. */
    public void refreshKnownKeks() {
        knownKeks.refresh();
    }

    /** Blocks. */
    @Override
    public String create() throws GeneralSecurityException {
        return kmsCall(inner::create);
    }

    /** Blocks. */
    @Override
    public String rotate() throws GeneralSecurityException {
        return kmsCall(inner::rotate);
    }

    /** Blocks. */
    @Override
    public List<KekInfo> list() throws GeneralSecurityException {
        return kmsCall(inner::list);
    }

    /** Closes the provider; the pool and timer belong to whoever passed them. */
    @Override
    public void close() {
        inner.close();
    }

    /** @return KMS calls failed in a row since the last success: 0 while the KMS answers (metrics, readiness) */
    public int consecutiveFailures() {
        return backoff.failures();
    }

    /** @return how long a caller whose KMS work failed waits before trying again: the current backoff, at least its minimum */
    public long retryDelayNanos() {
        return Math.max(settings.backoffMin().toNanos(), backoff.currentDelayNanos());
    }

    /**
     * Runs {@code task} on the KMS pool. The work's {@link KmsWork#ready} completes when the task has finished (after
     * its own bookkeeping) or when {@code kmsTimeout} has passed, whichever comes first.
     *
     * @param what what the task provides, for messages ("a new DEK for topic 'x'")
     */
    public <T> KmsWork<T> submit(String what, KmsWork.Task<T> task) {
        KmsWork<T> work = new KmsWork<>(inner.name(), settings.kmsTimeout().toMillis(), metrics, what);
        start(work, task);
        return work;
    }

    private <T> void start(KmsWork<T> work, KmsWork.Task<T> task) {
        try {
            work.timeout = timer.schedule(work::timedOut, settings.kmsTimeout().toNanos(), TimeUnit.NANOSECONDS);
            kmsPool.execute(() -> work.run(task));
        } catch (RejectedExecutionException e) {
            work.finish(null, new TransientKmsException("the key manager is closed", e));
        }
    }

    private <T> T kmsCall(KmsWork.Task<T> call) throws GeneralSecurityException {
        backoff.checkAllowed();
        try {
            T result = call.call();
            backoff.succeeded();
            return result;
        } catch (KekRefusedException e) {
            // The KMS answered: the key is the problem, not the KMS, so other keys keep working.
            backoff.succeeded();
            throw e;
        } catch (GeneralSecurityException | RuntimeException e) {
            backoff.failed(e);
            throw new TransientKmsException("KMS call to " + inner.name() + " failed: " + e.getMessage(), e);
        }
    }

    private Unwrap newUnwrap(UnwrapKey key, long now) {
        DekContext context = key.context();
        String kekIdText = Printable.of(key.kekId(), Printable.KEK_ID_CHARS);
        Unwrap entry = new Unwrap(new KmsWork<>(inner.name(), settings.kmsTimeout().toMillis(), metrics,
                "DEK " + context.dekIdText() + onTopic(context) + " (KEK " + kekIdText + ")"), now + settings.cacheTtl().toNanos());
        // The work exists before its task runs: the task publishes the entry (to uncollected), where readers poll it.
        start(entry.work, () -> {
            try {
                byte[] dek = kmsCall(() -> inner.unwrap(key.kekId(), key.wrapped(), context));
                if (dek.length != DEK_BYTES) {
                    throw new KekRefusedException("KEK " + kekIdText + " unwrapped a DEK of " + dek.length + " bytes, expected " + DEK_BYTES);
                }
                SecretKeySpec spec;
                try {
                    spec = new SecretKeySpec(dek, "AES");
                } finally {
                    Arrays.fill(dek, (byte) 0);
                }
                // Out of the failures' bound before the work completes, so the caller's retry finds it waiting.
                uncollected.put(key, entry);
                unsettled.remove(key, entry);
                boundUncollected(nanoTime.getAsLong(), key);
                return spec;
            } catch (GeneralSecurityException e) {
                // A failure is remembered (set before the work completes, so a retry sees it), and a partition of
                // undecryptable records polled again and again costs one KMS call per period: the current backoff for
                // an outage, the longest backoff for a missing or disabled KEK.
                long hold = e instanceof KekRefusedException ? settings.backoffMax().toNanos() : retryDelayNanos();
                entry.expiresAtNanos = nanoTime.getAsLong() + hold;
                log.warn("cannot unwrap DEK {}{} with KEK {} ({}): {}", context.dekIdText(), onTopic(context),
                        kekIdText, inner.name(), e.getMessage());
                throw e;
            }
        });
        return entry;
    }

    /**
     * Bounds the unwraps remembered by {@code maxFailedUnwraps}: expired ones go first, never {@code keep} (just
     * started). Forgetting a failure early only means its next poll asks the KMS again, which costs a token;
     * forgetting one in flight, that its caller's retry starts it again.
     */
    private void boundUnsettled(long now, UnwrapKey keep) {
        bound(unsettled, now, keep);
    }

    /**
     * Bounds the finished unwraps no caller collected (its connection closed, say) by {@code maxFailedUnwraps}: expired
     * ones go first, never {@code keep} (just finished). Forgetting one means its next poll unwraps it again.
     */
    private void boundUncollected(long now, UnwrapKey keep) {
        bound(uncollected, now, keep);
    }

    private void bound(ConcurrentHashMap<UnwrapKey, Unwrap> unwraps, long now, UnwrapKey keep) {
        if (unwraps.size() <= settings.maxFailedUnwraps()) {
            return;
        }
        unwraps.values().removeIf(e -> !e.validAt(now));
        // Finished ones first: a running unwrap has cost its token already.
        removeWhileOver(unwraps, keep, e -> !e.work.running());
        removeWhileOver(unwraps, keep, e -> true);
    }

    private void removeWhileOver(ConcurrentHashMap<UnwrapKey, Unwrap> unwraps, UnwrapKey keep, Predicate<Unwrap> removable) {
        Iterator<Map.Entry<UnwrapKey, Unwrap>> it = unwraps.entrySet().iterator();
        while (unwraps.size() > settings.maxFailedUnwraps() && it.hasNext()) {
            Map.Entry<UnwrapKey, Unwrap> e = it.next();
            if (!e.getKey().equals(keep) && removable.test(e.getValue())) {
                it.remove();
            }
        }
    }

    /** Topic names of fetched records come from the broker: escaped and bounded. */
    private static String onTopic(DekContext context) {
        return " on topic '" + context.topicText() + "'";
    }

    private record UnwrapKey(String kekId, byte[] wrapped, DekContext context) {
        @Override
        public boolean equals(Object o) {
            return o instanceof UnwrapKey k && kekId.equals(k.kekId) && context.equals(k.context) && Arrays.equals(wrapped, k.wrapped);
        }

        @Override
        public int hashCode() {
            return 31 * (31 * kekId.hashCode() + context.hashCode()) + Arrays.hashCode(wrapped);
        }
    }

    private static final class Unwrap {
        final KmsWork<SecretKeySpec> work;
        volatile long expiresAtNanos;

        Unwrap(KmsWork<SecretKeySpec> work, long expiresAtNanos) {
            this.work = work;
            this.expiresAtNanos = expiresAtNanos;
        }

        boolean validAt(long now) {
            return now - expiresAtNanos < 0;
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

        /** See {@link ResilientKekProvider#isKnownKek}. */
        boolean check(String kekId) throws GeneralSecurityException {
            if (ids.contains(kekId)) {
                return true;
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
                work.poll();
            }
            return ids.contains(kekId);
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
            listing = submit("the list of known KEKs", () -> {
                try {
                    list();
                    synchronized (this) {
                        listed = true;
                        listedAtNanos = nanoTime.getAsLong();
                    }
                    return null;
                } catch (GeneralSecurityException e) {
                    synchronized (this) {
                        retryAfterNanos = nanoTime.getAsLong() + retryDelayNanos();
                    }
                    log.warn("cannot read the KEKs of {}: {}", inner.name(), e.getMessage());
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
                current = kmsCall(inner::currentKekId);
            } catch (TransientKmsException e) {
                outage = e;
            } catch (KekRefusedException e) {
                log.warn("KEK provider {} has no usable current KEK: {}", inner.name(), e.getMessage());
            }
            List<KekProvider.KekInfo> listedKeks = List.of();
            try {
                if (full) {
                    listedKeks = kmsCall(inner::list);
                }
            } catch (TransientKmsException e) {
                outage = e;
            } catch (KekRefusedException e) {
                // E.g. AWS without kms:ListKeys: only the current KEK and keys.knownKekIds are accepted.
                synchronized (this) {
                    if (!listRefusedLogged) {
                        listRefusedLogged = true;
                        log.warn("KEK provider {} does not list its KEKs ({}): envelopes are accepted only under the current"
                                + " KEK, KEKs current while this service ran, and keys.knownKekIds", inner.name(), e.getMessage());
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

    /** Exponential backoff shared by all calls to the KMS. */
    private final class Backoff {
        private int failures;
        private long nextAttemptNanos;
        private String lastError = "";

        synchronized void checkAllowed() throws TransientKmsException {
            long now = nanoTime.getAsLong();
            if (failures > 0 && now - nextAttemptNanos < 0) {
                metrics.kmsSkipped.increment();
                throw new TransientKmsException("KMS " + inner.name() + " is backing off after " + failures
                        + " failed call(s), next attempt in " + TimeUnit.NANOSECONDS.toMillis(nextAttemptNanos - now)
                        + " ms; last error: " + lastError, null);
            }
        }

        synchronized void succeeded() {
            if (failures > 0) {
                log.info("KMS {} reachable again after {} failed call(s)", inner.name(), failures);
            }
            failures = 0;
        }

        synchronized void failed(Exception e) {
            failures++;
            lastError = String.valueOf(e.getMessage());
            nextAttemptNanos = nanoTime.getAsLong() + currentDelayNanosLocked();
        }

        synchronized int failures() {
            return failures;
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
}
