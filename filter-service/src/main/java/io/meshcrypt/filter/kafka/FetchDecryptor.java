package io.meshcrypt.filter.kafka;

import io.meshcrypt.filter.audit.AccessAudit;
import io.meshcrypt.filter.framing.RewriteDeferred;
import io.meshcrypt.filter.policy.TopicPlan;
import io.meshcrypt.filter.policy.TopicPlans;
import io.meshcrypt.filter.records.FrameBudget;
import io.meshcrypt.filter.records.FrameBudgetExceededException;
import io.meshcrypt.filter.records.RecordBatchRewriter;
import io.meshcrypt.filter.records.RecordRewriteException;
import io.meshcrypt.filter.records.ValueRewriter;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Consumer;
import java.util.function.LongSupplier;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.message.ShareFetchRequestData;
import org.apache.kafka.common.message.ShareFetchResponseData;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.record.internal.BaseRecords;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Decrypts the record values (and encrypted record keys) of Fetch and ShareFetch responses in place. A partition whose
 * values or keys do not decrypt gets CORRUPT_MESSAGE and no records: clients surface an error for that partition, never
 * ciphertext posing as data and never an empty-looking topic. When only the KMS is unreachable (a data key not cached
 * yet), the partition gets the retriable KAFKA_STORAGE_ERROR instead, and no records.
 *
 * <p>Only topics the policy encrypts, or lists under {@code decryptOnly}, are looked at: every other partition's
 * records object passes untouched (not decoded, not decompressed), so a value shaped like an envelope on a passthrough
 * topic is just data.
 *
 * <p>Share groups and KMS outages. The broker counts a delivery when it acquires records for a ShareFetch, not when the
 * consumer sees them (SharePartition: ACQUIRED with DeliveryCountOps.INCREASE; lock timeout and RELEASE leave the count
 * as it is, and at group.share.delivery.count.limit the records are archived). A consumer drops the acquired records
 * of a partition answered with an error (ShareFetchCollector.handleInitializeErrors), and treats acquired offsets
 * missing from the records as gaps, which archives them at once; so while the KMS is down every ShareFetch that
 * acquires an encrypted record burns one of its deliveries, and an outage longer than limit x lock duration loses it.
 * Answering differently cannot help, only not acquiring does: once a fetch meets an unreachable KMS, {@link
 * #holdShareFetch} rewrites ShareFetch requests (v1+) to {@code MaxRecords=0}, for which the broker acquires nothing
 * (SharePartition.acquire returns early), and {@code MinBytes=MAX} so it waits the client's MaxWaitMs instead of
 * answering at once (no busy loop); piggybacked acknowledgements still apply. At most once per probe interval the
 * filter asks the KMS itself, by decrypting the head of an envelope that failed, and lets ShareFetch acquire again only
 * once the KMS has answered {@link KmsOutage#DEFAULT_PROBES_TO_RELEASE} consecutive probes (a flapping KMS would
 * otherwise cost a delivery per lift). A record thus loses at most the deliveries of the fetches already in flight
 * when the outage was noticed, however long it lasts. The hold lives in a {@link KmsOutage} owned by {@link
 * KafkaProxy}, so a policy reload, which builds a new decryptor, does not lift it.
 *
 * <p>One {@link FrameBudget} per response bounds what all its batches together may decompress to and rewrite into.
 * A partition that would exceed it after earlier partitions of the same response used part of it is answered with no
 * records (Fetch: no error, the consumer fetches it again; ShareFetch: the retriable KAFKA_STORAGE_ERROR, because a
 * share consumer archives acquired offsets missing from the records); one that alone exceeds the whole budget is
 * CORRUPT_MESSAGE, as before.
 */
final class FetchDecryptor {
    private static final Logger log = LoggerFactory.getLogger(FetchDecryptor.class);

    /** How often, at most, a held ShareFetch asks the KMS whether it is back. */
    static final Duration DEFAULT_KMS_PROBE_INTERVAL = Duration.ofSeconds(5);
    /**
     * A failing value up to this size is kept whole for the probe (a field-level value must parse as JSON); of a larger
     * one only the head, which still reaches the wrapped data key of a whole-value envelope. Kept only while the KMS
     * is down.
     */
    static final int PROBE_BYTES = 64 * 1024;

    private final TopicPlans plans;
    private final TopicNames topicNames;
    private final ValueCrypto crypto;
    private final int maxDecompressedBytes;
    private final long maxOutputBytes;
    private final WarnLimiter warnings;
    private final Consumer<String> warn;
    private final KmsOutage outage;

    /**
     * @param maxDecompressedBytes the most the compressed batches of one response may decompress to, together
     * @param maxOutputBytes the most bytes the decrypted records of one response may occupy, together
     * @param outage the ShareFetch hold, shared by every decryptor the proxy builds (it survives policy reloads)
     */
    FetchDecryptor(TopicPlans plans, TopicNames topicNames, ValueCrypto crypto, int maxDecompressedBytes,
                   long maxOutputBytes, KmsOutage outage) {
        this(plans, topicNames, crypto, maxDecompressedBytes, maxOutputBytes, new WarnLimiter(
                WarnLimiter.DEFAULT_SUMMARY_INTERVAL, WarnLimiter.DEFAULT_MAX_KEYS, System::nanoTime), log::warn, outage);
    }

    /**
     * @param warn where rate-limited warnings go (the logger; a list in tests)
     * @param kmsProbeInterval how often, at most, the KMS is asked whether it is back while ShareFetch is held
     */
    FetchDecryptor(TopicPlans plans, TopicNames topicNames, ValueCrypto crypto, int maxDecompressedBytes,
                   long maxOutputBytes, WarnLimiter warnings, Consumer<String> warn, LongSupplier nanoTime,
                   Duration kmsProbeInterval) {
        this(plans, topicNames, crypto, maxDecompressedBytes, maxOutputBytes, warnings,
                warn, new KmsOutage(nanoTime, kmsProbeInterval, KmsOutage.DEFAULT_PROBES_TO_RELEASE));
    }

    FetchDecryptor(TopicPlans plans, TopicNames topicNames, ValueCrypto crypto, int maxDecompressedBytes,
                   long maxOutputBytes, WarnLimiter warnings, Consumer<String> warn, KmsOutage outage) {
        if (maxDecompressedBytes <= 0 || maxOutputBytes <= 0) {
            throw new IllegalArgumentException("maxDecompressedBytes and maxOutputBytes must be positive, got "
                    + maxDecompressedBytes + " and " + maxOutputBytes);
        }
        this.plans = plans;
        this.topicNames = topicNames;
        this.crypto = crypto;
        this.maxDecompressedBytes = maxDecompressedBytes;
        this.maxOutputBytes = maxOutputBytes;
        this.warnings = warnings;
        this.warn = warn;
        this.outage = Objects.requireNonNull(outage, "outage");
    }

    /**
     * @param version the Fetch version: up to 5 clients do not know KAFKA_STORAGE_ERROR (the broker downgrades it too)
     * @return whether anything in {@code response} changed; when false the original frame can be forwarded as is
     */
    boolean decrypt(FetchResponseData response, short version) throws RewriteDeferred {
        return decrypt(response, version, null, AccessAudit.NONE);
    }

    /**
     * As {@link #decrypt(FetchResponseData, short)} for a stream authenticated as {@code identity}: a topic whose rule
     * lists readers without it passes as stored (ciphertext) or is denied, as the rule says.
     *
     * @param audit where the connection reports what it fetched of covered topics
     */
    boolean decrypt(FetchResponseData response, short version, String identity, AccessAudit audit)
            throws RewriteDeferred {
        boolean changed = false;
        FrameBudget budget = new FrameBudget(maxDecompressedBytes, maxOutputBytes);
        for (FetchResponseData.FetchableTopicResponse topic : response.responses()) {
            String name = nameOf(topic.topic(), topic.topicId());
            for (FetchResponseData.PartitionData p : topic.partitions()) {
                Outcome o = decrypt(name, topic.topicId(), p.partitionIndex(), p.records(), budget, identity, audit);
                if (o.overBudget()) {
                    // The consumer fetches this partition again from the same offset; the partitions before it advanced.
                    p.setRecords(MemoryRecords.EMPTY);
                    changed = true;
                } else if (o.error() != Errors.NONE) {
                    Errors error = o.error() == Errors.KAFKA_STORAGE_ERROR && version <= 5 ? Errors.NOT_LEADER_OR_FOLLOWER : o.error();
                    p.setErrorCode(error.code()).setRecords(MemoryRecords.EMPTY);
                    if (error == Errors.TOPIC_AUTHORIZATION_FAILED) {
                        // Nothing of the partition may reach the client: no aborted-transaction list or replica hint.
                        p.setAbortedTransactions(null).setPreferredReadReplica(-1);
                    }
                    changed = true;
                } else if (o.records() != p.records()) {
                    p.setRecords(o.records());
                    changed = true;
                }
            }
        }
        return changed;
    }

    /** @return whether anything in {@code response} changed; when false the original frame can be forwarded as is */
    boolean decrypt(ShareFetchResponseData response) throws RewriteDeferred {
        return decrypt(response, null, AccessAudit.NONE);
    }

    /** As {@link #decrypt(ShareFetchResponseData)} for a stream authenticated as {@code identity}. */
    boolean decrypt(ShareFetchResponseData response, String identity, AccessAudit audit) throws RewriteDeferred {
        boolean changed = false;
        FrameBudget budget = new FrameBudget(maxDecompressedBytes, maxOutputBytes);
        for (ShareFetchResponseData.ShareFetchableTopicResponse topic : response.responses()) {
            String name = nameOf(null, topic.topicId());
            for (ShareFetchResponseData.PartitionData p : topic.partitions()) {
                Outcome o = decrypt(name, topic.topicId(), p.partitionIndex(), p.records(), budget, identity, audit);
                if (o.error() != Errors.NONE || o.overBudget()) {
                    // The consumer ignores acquired records of a partition with an error; they stay acquired at the
                    // broker until the lock times out (see the class comment for why none are acquired again). Over
                    // budget too: acquired offsets missing from records would be archived, an error keeps them.
                    Errors error = o.overBudget() ? Errors.KAFKA_STORAGE_ERROR : o.error();
                    p.setErrorCode(error.code()).setErrorMessage(o.message()).setRecords(MemoryRecords.EMPTY)
                            .setAcquiredRecords(new ArrayList<>());
                    changed = true;
                } else if (o.records() != p.records()) {
                    p.setRecords(o.records());
                    changed = true;
                }
            }
        }
        return changed;
    }

    /** @return whether ShareFetch requests are currently held from acquiring records (cheap: one volatile read) */
    boolean holdsShareFetch() {
        return outage.holding();
    }

    /**
     * Called for each ShareFetch request a client sends while {@link #holdsShareFetch()}: unless probes find the KMS
     * back (see {@link KmsOutage}), rewrites the request so that the broker acquires no records (MaxRecords=0) and
     * waits the client's MaxWaitMs (MinBytes=MAX). Acknowledgements and session changes in the request stay as they
     * are. Version 0 has no MaxRecords and renew-only requests acquire nothing anyway: both pass unchanged.
     *
     * @return whether the request changed (then it must be re-encoded)
     */
    boolean holdShareFetch(ShareFetchRequestData request, short version) {
        if (!outage.holding() || version < 1 || request.isRenewAck() || request.shareSessionEpoch() == -1) {
            return false;
        }
        if (outage.probeDue() && outage.probed(kmsAnswers(outage.probe()))) {
            log.info("the KMS answered {} consecutive probes: share consumers acquire records again",
                    outage.probesToRelease);
            return false;
        }
        if (request.maxRecords() == 0 && request.minBytes() == Integer.MAX_VALUE) {
            return false;
        }
        request.setMaxRecords(0).setMinBytes(Integer.MAX_VALUE);
        return true;
    }

    /** Decrypts the remembered envelope head: anything but an unreachable KMS means the KMS answered. */
    private boolean kmsAnswers(KmsOutage.Probe p) {
        if (p == null) {
            return true;
        }
        try {
            crypto.decryptor(p.topic(), plans.of(p.topic())).rewrite(ByteBuffer.wrap(p.head()));
            return true;
        } catch (RecordRewriteException e) {
            // Not ready yet means the probe started the key work: hold on until a later probe sees its outcome.
            return !kmsUnreachable(e);
        }
    }

    /**
     * The ShareFetch hold of one proxy (see the class comment): outlives the decryptors a policy reload replaces, and is
     * lifted only after {@code probesToRelease} consecutive probes, one probe interval apart, find the KMS answering;
     * a value that meets an unreachable KMS meanwhile starts the count again. Thread-safe.
     */
    static final class KmsOutage {
        static final int DEFAULT_PROBES_TO_RELEASE = 2;

        record Probe(String topic, byte[] head) {
        }

        private final LongSupplier nanoTime;
        private final long probeIntervalNanos;
        final int probesToRelease;
        /** While true, ShareFetch requests are held from acquiring. */
        private volatile boolean holding;
        /** The head of a value that met an unreachable KMS, with its topic: what the probe decrypts. */
        private volatile Probe probe;
        private final AtomicLong nextProbe = new AtomicLong();
        /** Consecutive probes the KMS answered since the hold began or a value last met it unreachable. */
        private final AtomicInteger answered = new AtomicInteger();

        /**
         * @param probeInterval how often, at most, the KMS is asked whether it is back while ShareFetch is held
         * @param probesToRelease how many consecutive probes must find it answering before the hold is lifted
         */
        KmsOutage(LongSupplier nanoTime, Duration probeInterval, int probesToRelease) {
            if (probeInterval.isNegative() || probeInterval.isZero()) {
                throw new IllegalArgumentException("kmsProbeInterval must be positive, got " + probeInterval);
            }
            if (probesToRelease <= 0) {
                throw new IllegalArgumentException("probesToRelease must be positive, got " + probesToRelease);
            }
            this.nanoTime = nanoTime;
            this.probeIntervalNanos = probeInterval.toNanos();
            this.probesToRelease = probesToRelease;
        }

        boolean holding() {
            return holding;
        }

        Probe probe() {
            return probe;
        }

        /** @return true for exactly one caller per probe interval while holding */
        boolean probeDue() {
            long now = nanoTime.getAsLong();
            long due = nextProbe.get();
            return now - due >= 0 && nextProbe.compareAndSet(due, now + probeIntervalNanos);
        }

        /** Records a probe's result; @return whether it lifted the hold */
        boolean probed(boolean kmsAnswered) {
            if (!kmsAnswered) {
                answered.set(0);
                return false;
            }
            if (answered.incrementAndGet() < probesToRelease) {
                return false;
            }
            answered.set(0);
            probe = null;
            holding = false;
            return true;
        }

        /** A value of {@code topic} met an unreachable KMS: hold ShareFetch (again), and count probes from zero. */
        void kmsDown(String topic, ByteBuffer value) {
            // Copy a fresh head only when starting or when a probe had already succeeded (the old head's key is likely
            // cached by now): no copy per failing partition while the outage simply goes on.
            if (probe == null || !holding || answered.get() > 0) {
                byte[] head = new byte[Math.min(PROBE_BYTES, value.remaining())];
                value.duplicate().get(head);
                probe = new Probe(topic, head);
            }
            answered.set(0);
            if (!holding) {
                nextProbe.set(nanoTime.getAsLong() + probeIntervalNanos);
                holding = true;
                log.warn("the KMS is unreachable: share consumers acquire no records until it answers {} consecutive"
                        + " probes (one at most every {} ms)", probesToRelease, probeIntervalNanos / 1_000_000);
            }
        }
    }

    private record Outcome(BaseRecords records, Errors error, String message, boolean overBudget) {
        Outcome(BaseRecords records, Errors error, String message) {
            this(records, error, message, false);
        }

        static Outcome ok(BaseRecords records) {
            return new Outcome(records, Errors.NONE, null);
        }
    }

    /**
     * @throws RewriteDeferred when a data key is still on its way from the KMS: the connection parks the response and
     *     retries it from its original bytes (this decryptor keeps no per-response state)
     */
    private Outcome decrypt(String topic, Uuid topicId, int partition, BaseRecords records, FrameBudget budget,
                            String identity, AccessAudit audit) throws RewriteDeferred {
        if (!(records instanceof MemoryRecords memory) || memory.sizeInBytes() == 0) {
            // Denied even without records: the consumer learns at once, not when the first record arrives.
            if (topic != null && plans.policy().anyDeny() && plans.of(topic).readBy(identity) == TopicPlan.Read.DENIED) {
                audit.access(topic, AccessAudit.Direction.FETCH, AccessAudit.Outcome.DENIED, 0, 0);
                return denied(topic, identity);
            }
            return Outcome.ok(records);
        }
        if (topic == null) {
            // An id no Metadata response has named yet: the client refreshes metadata on this error.
            warnLimited(null, topicId, partition, WarnLimiter.Reason.UNKNOWN_TOPIC_ID,
                    "fetch of unknown topic id " + topicId + " partition " + partition + ": answering UNKNOWN_TOPIC_ID");
            return new Outcome(MemoryRecords.EMPTY, Errors.UNKNOWN_TOPIC_ID, "topic id not yet known to meshcrypt");
        }
        TopicPlan plan = plans.of(topic);
        if (!plan.decryptsOnFetch()) {
            // Not encrypted and not decryptOnly: byte for byte, never decompressed, never shown to the KMS.
            return Outcome.ok(records);
        }
        switch (plan.readBy(identity)) {
            case CIPHERTEXT -> {
                // Not a reader: the envelopes as stored, never decompressed, never shown to the KMS.
                audit.access(topic, AccessAudit.Direction.FETCH, AccessAudit.Outcome.CIPHERTEXT,
                        audit == AccessAudit.NONE ? 0 : RecordCounts.of(memory), memory.sizeInBytes());
                return Outcome.ok(records);
            }
            case DENIED -> {
                audit.access(topic, AccessAudit.Direction.FETCH, AccessAudit.Outcome.DENIED,
                        audit == AccessAudit.NONE ? 0 : RecordCounts.of(memory), memory.sizeInBytes());
                return denied(topic, identity);
            }
            case PLAINTEXT -> audit.access(topic, AccessAudit.Direction.FETCH, AccessAudit.Outcome.ALLOWED,
                    audit == AccessAudit.NONE ? 0 : RecordCounts.of(memory), memory.sizeInBytes());
        }
        try {
            ValueRewriter values = crypto.decryptor(topic, plan, identity);
            ValueRewriter watched = value -> {
                try {
                    return values.rewrite(value);
                } catch (RecordRewriteException e) {
                    if (kmsUnreachable(e) && e.retryWhen() == null) {
                        outage.kmsDown(topic, value);
                    }
                    throw e;
                }
            };
            boolean budgetUsed = budget.used();
            try {
                return Outcome.ok(RecordBatchRewriter.rewrite(memory, watched, crypto.keyDecryptor(topic, plan),
                        crypto.headerDecryptor(topic, plan), RecordBatchRewriter.TruncatedTail.PASS_THROUGH, budget));
            } catch (FrameBudgetExceededException e) {
                if (!budgetUsed) {
                    throw e; // alone larger than a whole response may be: corrupt, as a single batch always was
                }
                log.debug("fetch {}-{}: {}; answered without records, fetched again", TopicNames.describe(topic),
                        partition, e.getMessage());
                return new Outcome(MemoryRecords.EMPTY, Errors.NONE,
                        "meshcrypt's per-response decompression budget was used by other partitions; retry", true);
            }
        } catch (RecordRewriteException e) {
            if (e.retryWhen() != null) {
                throw new RewriteDeferred("fetch " + TopicNames.describe(topic) + "-" + partition + ": data key not ready",
                        e.retryWhen());
            }
            if (kmsUnreachable(e)) {
                // Transient: clients retry a storage error after a metadata refresh, so consumers pause until the
                // KMS answers again instead of failing with an error that says the data is bad.
                warnLimited(topic, null, partition, WarnLimiter.Reason.KMS_UNAVAILABLE, "fetch " + TopicNames.describe(topic)
                        + "-" + partition + " at offset " + e.offset() + ": " + printable(e.getMessage())
                        + "; answering KAFKA_STORAGE_ERROR (retriable)");
                return new Outcome(MemoryRecords.EMPTY, Errors.KAFKA_STORAGE_ERROR,
                        "meshcrypt could not reach its key service for the record at offset " + e.offset() + "; retry");
            }
            warnLimited(topic, null, partition, WarnLimiter.Reason.CORRUPT, "fetch " + TopicNames.describe(topic) + "-"
                    + partition + " at offset " + e.offset() + ": " + printable(e.getMessage())
                    + "; answering " + e.answer().name());
            return new Outcome(MemoryRecords.EMPTY, e.answer(),
                    "meshcrypt could not decrypt the record at offset " + e.offset());
        }
    }

    private static Outcome denied(String topic, String identity) {
        return new Outcome(MemoryRecords.EMPTY, Errors.TOPIC_AUTHORIZATION_FAILED, "meshcrypt: "
                + (identity == null ? "a stream without a workload identity" : identity)
                + " is not among the readers of " + topic);
    }

    /** The message is built only by callers on an error path (per failing partition, never per record). */
    private void warnLimited(String topic, Uuid topicId, int partition, WarnLimiter.Reason reason, String message) {
        if (warnings.first(topic != null ? topic : String.valueOf(topicId), partition, reason)) {
            warn.accept(message + " (repeats for this partition are counted and summarized)");
        }
        String summary = warnings.summaryDue();
        if (summary != null) {
            warn.accept(summary);
        }
    }

    /** Longest exception message a warning carries. */
    static final int MAX_LOGGED_MESSAGE = 512;

    /**
     * An exception message fit for a log line: it may quote broker-chosen text (topic names, key ids), so control and
     * non-ASCII characters are escaped and the length is bounded. Only built on error paths.
     */
    static String printable(String message) {
        if (message == null) {
            return "null";
        }
        int shown = Math.min(message.length(), MAX_LOGGED_MESSAGE);
        StringBuilder b = new StringBuilder(shown + 32);
        for (int i = 0; i < shown; i++) {
            char c = message.charAt(i);
            if (c < 0x20 || c > 0x7e || c == '\\') {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        if (shown < message.length()) {
            b.append("... (").append(message.length()).append(" characters)");
        }
        return b.toString();
    }

    /** Transient: the KMS did not answer, or a data key is still on its way from it (see ValueCrypto#failure). */
    private static boolean kmsUnreachable(RecordRewriteException e) {
        return e.answer() == Errors.KAFKA_STORAGE_ERROR;
    }

    private String nameOf(String name, Uuid id) {
        if (name != null && !name.isEmpty()) {
            return name;
        }
        return topicNames.nameOf(id);
    }

    /**
     * Rate limit for decrypt-error warnings: the first error of each topic-partition and reason is logged in full; later
     * ones are only counted, and at most one summary line per interval reports the counts. Without it a consumer stuck
     * on one bad record logs one line per partition per fetch, many per second. Thread-safe; the set of partitions
     * already reported is bounded and forgotten at each summary after {@code forgetAfter}, so a partition that fails
     * again much later is reported in full again.
     */
    static final class WarnLimiter {
        static final Duration DEFAULT_SUMMARY_INTERVAL = Duration.ofSeconds(30);
        static final int DEFAULT_MAX_KEYS = 10_000;
        /** Partitions reported once are reported in full again after this long. */
        static final Duration FORGET_AFTER = Duration.ofMinutes(10);

        enum Reason { CORRUPT, KMS_UNAVAILABLE, UNKNOWN_TOPIC_ID }

        private record Key(String topic, int partition, Reason reason) {
        }

        private final long intervalNanos;
        private final long forgetNanos;
        private final int maxKeys;
        private final LongSupplier nanoTime;
        private final Set<Key> reported = ConcurrentHashMap.newKeySet();
        private final LongAdder[] suppressed = new LongAdder[Reason.values().length];
        private final AtomicLong nextSummary;
        private final AtomicLong forgetAt;

        WarnLimiter(Duration summaryInterval, int maxKeys, LongSupplier nanoTime) {
            if (summaryInterval.isNegative() || summaryInterval.isZero() || maxKeys <= 0) {
                throw new IllegalArgumentException("summaryInterval and maxKeys must be positive");
            }
            this.intervalNanos = summaryInterval.toNanos();
            this.forgetNanos = Math.max(intervalNanos, FORGET_AFTER.toNanos());
            this.maxKeys = maxKeys;
            this.nanoTime = nanoTime;
            for (int i = 0; i < suppressed.length; i++) {
                suppressed[i] = new LongAdder();
            }
            long now = nanoTime.getAsLong();
            this.nextSummary = new AtomicLong(now + intervalNanos);
            this.forgetAt = new AtomicLong(now + forgetNanos);
        }

        /** @return true when this is the first error of the partition and reason: log it in full; else it is counted */
        boolean first(String topic, int partition, Reason reason) {
            Key key = new Key(topic, partition, reason);
            if (!reported.contains(key) && reported.size() < maxKeys && reported.add(key)) {
                return true;
            }
            suppressed[reason.ordinal()].increment();
            return false;
        }

        /** @return the summary line when one is due and anything was counted since the last one; else null */
        String summaryDue() {
            long now = nanoTime.getAsLong();
            long due = nextSummary.get();
            if (now - due < 0 || !nextSummary.compareAndSet(due, now + intervalNanos)) {
                return null;
            }
            long forget = forgetAt.get();
            if (now - forget >= 0 && forgetAt.compareAndSet(forget, now + forgetNanos)) {
                reported.clear();
            }
            long corrupt = suppressed[Reason.CORRUPT.ordinal()].sumThenReset();
            long kms = suppressed[Reason.KMS_UNAVAILABLE.ordinal()].sumThenReset();
            long unknown = suppressed[Reason.UNKNOWN_TOPIC_ID.ordinal()].sumThenReset();
            if (corrupt + kms + unknown == 0) {
                return null;
            }
            return "fetch errors not logged one by one in the last " + intervalNanos / 1_000_000_000L + " s: "
                    + corrupt + " CORRUPT_MESSAGE, " + kms + " KAFKA_STORAGE_ERROR (KMS unreachable), " + unknown
                    + " UNKNOWN_TOPIC_ID partition answers";
        }
    }
}
