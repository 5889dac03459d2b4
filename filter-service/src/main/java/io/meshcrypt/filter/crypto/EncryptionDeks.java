package io.meshcrypt.filter.crypto;

import io.meshcrypt.filter.kms.DekContext;
import io.meshcrypt.filter.kms.KekProvider;
import io.meshcrypt.filter.kms.KekRefusedException;
import io.meshcrypt.filter.kms.KeyAudit;
import io.meshcrypt.filter.kms.KeyMetrics;
import io.meshcrypt.filter.kms.KeyNotReadyException;
import io.meshcrypt.filter.kms.KmsWork;
import io.meshcrypt.filter.kms.ResilientKekProvider;
import io.meshcrypt.filter.kms.TransientKmsException;
import io.meshcrypt.filter.kms.WrappedDek;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import javax.crypto.spec.SecretKeySpec;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The DEKs for encrypting: one current DEK per topic, replaced in the background at 90% of its record count or age
 * limit (or when retired: DEK rotation, a KEK rotated elsewhere). A topic that has none gets its first DEK for a token
 * of the new-DEK bucket ({@code newDataKeysPerSecond}, {@code newDataKeysBurst}), so a Produce naming thousands of new
 * topics gets them keys at that rate instead of flooding the KMS. Generating runs on the KMS pool
 * ({@link ResilientKekProvider#submit}), single-flight per topic; callers never wait.
 */
final class EncryptionDeks {

    /** The limits that concern encrypting (documented on the facade's settings). */
    record Settings(long maxRecordsPerDek, Duration maxDekAge, double newDataKeysPerSecond, int newDataKeysBurst,
                    int maxTopicsWaitingForDek, int maxWrappedDekBytes) {
    }

    private static final Logger log = LoggerFactory.getLogger(EncryptionDeks.class);
    private static final int DEK_BYTES = KekProvider.DEK_BYTES;

    private final ResilientKekProvider kms;
    private final DecryptionDeks decryption;
    private final Settings settings;
    private final KeyMetrics metrics;
    private final LongSupplier nanoTime;
    private final ScheduledExecutorService timer;
    private final SecureRandom random = new SecureRandom();
    private final ConcurrentHashMap<String, TopicState> topics = new ConcurrentHashMap<>();
    private final TokenBucket newDeks;
    private final KeyAudit audit;

    /** @param decryption where each new DEK is cached too, so this instance decrypts its own records without an unwrap */
    EncryptionDeks(ResilientKekProvider kms, DecryptionDeks decryption, Settings settings, KeyMetrics metrics,
                   LongSupplier nanoTime, ScheduledExecutorService timer) {
        this(kms, decryption, settings, metrics, nanoTime, timer, KeyAudit.NONE);
    }

    /** @param audit told of every DEK this instance creates */
    EncryptionDeks(ResilientKekProvider kms, DecryptionDeks decryption, Settings settings, KeyMetrics metrics,
                   LongSupplier nanoTime, ScheduledExecutorService timer, KeyAudit audit) {
        this.audit = audit;
        this.kms = kms;
        this.decryption = decryption;
        this.settings = settings;
        this.metrics = metrics;
        this.nanoTime = nanoTime;
        this.timer = timer;
        this.newDeks = new TokenBucket(settings.newDataKeysPerSecond(), settings.newDataKeysBurst(), settings.maxTopicsWaitingForDek());
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
    Dek forEncryption(String topic) throws GeneralSecurityException {
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
                work.poll();
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
    CompletableFuture<Void> prepareForEncryption(String topic) {
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
            return work == null || !work.running() ? null : work.ready().copy();
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

    /** Retires every current DEK: the next record of each topic gets a new one (generated in the background). */
    /** @return topics with a current DEK (possibly expired or used up: it is replaced on the next record); O(topics) */
    int topicsWithDek() {
        int n = 0;
        for (TopicState state : topics.values()) {
            if (state.current != null) {
                n++;
            }
        }
        return n;
    }

    void rotateDeks() {
        for (TopicState state : topics.values()) {
            Dek dek = state.current;
            if (dek != null) {
                dek.retired = true;
            }
        }
        log.info("DEK rotation requested for {} topic(s)", topics.size());
    }

    /** Retires the DEKs wrapped by a KEK other than {@code current}: a rotation reaches new DEKs. */
    void retireDeksNotWrappedBy(String current) {
        int retired = 0;
        for (TopicState state : topics.values()) {
            Dek dek = state.current;
            if (dek != null && !dek.retired && !dek.kekId.equals(current)) {
                dek.retired = true;
                retired++;
            }
        }
        if (retired > 0) {
            log.info("KEK {} ({}) is current: {} DEK(s) wrapped by an older KEK will be replaced", current, kms.name(), retired);
        }
    }

    /** Drops topics whose DEK has expired (or never came) and that nothing is generating for: bounds the topic map. */
    void sweepIdleTopics() {
        long now = nanoTime.getAsLong();
        topics.values().removeIf(state -> state.idleAt(now));
    }

    /** Callers parked on a token are released (their retry fails). */
    void closeWaiting() {
        newDeks.closeWaiting();
    }

    private Dek generate(String topic) throws GeneralSecurityException {
        byte[] dek = new byte[DEK_BYTES];
        random.nextBytes(dek);
        try {
            long dekId = random.nextLong();
            DekContext context = new DekContext(topic, dekId);
            WrappedDek wrapped = kms.wrap(dek, context);
            if (wrapped.bytes().length > settings.maxWrappedDekBytes()) {
                // Never write an envelope this service would refuse to read.
                throw new KekRefusedException("KEK " + wrapped.kekId() + " wrapped a DEK into " + wrapped.bytes().length
                        + " bytes, more than keys allow (" + settings.maxWrappedDekBytes() + ")");
            }
            SecretKeySpec key = new SecretKeySpec(dek, "AES");
            byte[] header = ValueEnvelopeV2.header(wrapped.kekId(), dekId, wrapped.bytes());
            long now = nanoTime.getAsLong();
            metrics.deksGenerated.increment();
            decryption.remember(topic, header, key, now);
            log.info("new DEK {} for topic '{}' wrapped by KEK {} ({})", context.dekIdText(), topic, wrapped.kekId(), kms.name());
            audit.succeeded(KeyAudit.Operation.DEK_CREATED, kms.name(), wrapped.kekId(), context, wrapped.bytes());
            return new Dek(wrapped.kekId(), dekId, key, header, now);
        } finally {
            Arrays.fill(dek, (byte) 0);
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
            pending = kms.submit("a new DEK for topic '" + topic + "'", () -> {
                try {
                    Dek dek = generate(topic);
                    current = dek;
                    return dek;
                } catch (GeneralSecurityException e) {
                    synchronized (this) {
                        retryAfterNanos = nanoTime.getAsLong() + kms.retryDelayNanos();
                    }
                    log.warn("cannot generate a DEK for topic '{}' ({}): {}", topic, kms.name(), e.getMessage());
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
                work.ready().whenComplete((v, e) -> ticket.complete(null));
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
}
