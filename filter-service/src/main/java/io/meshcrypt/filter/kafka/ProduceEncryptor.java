package io.meshcrypt.filter.kafka;

import io.meshcrypt.filter.audit.AccessAudit;
import io.meshcrypt.filter.crypto.ValueEnvelope;
import io.meshcrypt.filter.framing.KafkaFrameException;
import io.meshcrypt.filter.framing.RewriteDeferred;
import io.meshcrypt.filter.policy.TopicPlan;
import io.meshcrypt.filter.policy.TopicPlans;
import io.meshcrypt.filter.records.FrameBudget;
import io.meshcrypt.filter.records.HeaderRewriter;
import io.meshcrypt.filter.records.RecordBatchRewriter;
import io.meshcrypt.filter.records.RecordRewriteException;
import io.meshcrypt.filter.records.ValueRewriter;
import io.meshcrypt.meshconfig.policy.TopicDecision;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.message.ProduceResponseData;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.record.internal.MemoryRecords;

/**
 * Encrypts the record values (and, on topics whose policy says {@code keys: deterministic}, the keys) of a Produce
 * request in place. Anything in doubt (a topic named by id or by an illegal name, a topic the policy rejects, a batch
 * that cannot be rewritten) fails the whole frame, which closes the connection: a Produce request is either fully
 * rewritten by policy or never forwarded. A topic whose rule lists {@code writers} without the stream's identity is
 * taken out of the request and answered TOPIC_AUTHORIZATION_FAILED, as the broker's ACLs would: the client reports a
 * clear error, other topics of the request go on, and the broker never sees those records.
 *
 * <p>One {@link FrameBudget} per request bounds what all its batches together may decompress to and rewrite into:
 * a request of many partitions, each a compression bomb just under a per-batch limit, fails as a whole instead of
 * multiplying the limit. Each partition must carry exactly one data batch (the broker's own rule since v3).
 *
 * <p>On a topic the fetch path decrypts ({@code decryptOnly}) but Produce does not encrypt, a value that starts with
 * the envelope magic fails the request: stored as is, it would reach every proxied consumer as an envelope to decrypt
 * (CORRUPT_MESSAGE for good, a poison pill). Only those topics are scanned.
 *
 * <p>Policy and associated data are decided only from the topic names the client wrote: Produce is capped at v12
 * (see {@link ApiVersionsFilter}), so no broker-supplied id-to-name mapping is ever consulted here. Each topic's
 * {@link TopicPlan} is looked up once per request.
 */
final class ProduceEncryptor {
    private final TopicPlans plans;
    private final ValueCrypto crypto;
    private final int maxDecompressedBytes;
    private final int maxNewDataKeysPerRequest;
    private final long maxOutputBytes;

    /** Refuses what the fetch path would take for an envelope; returns nothing useful (inspect ignores it). */
    private static final ValueRewriter NO_ENVELOPES = value -> {
        if (ValueEnvelope.isEnvelope(value)) {
            throw new RecordRewriteException("a value starts with the meshcrypt envelope magic on a topic whose"
                    + " values are decrypted on fetch but not encrypted on produce", null);
        }
        return value;
    };

    /**
     * @param maxDecompressedBytes the most all compressed batches of one request may decompress to, together
     * @param maxOutputBytes the most bytes the rewritten records of one request may occupy, together: the request is
     *     forwarded to the broker, which refuses one larger than its {@code socket.request.max.bytes} anyway
     * @param maxNewDataKeysPerRequest most topics without a ready data key one request may name: the first ones are
     *     prepared (so a client that retries makes progress), and then the connection is closed, so that one request
     *     naming thousands of topics cannot fill the key manager's queue and starve other connections' new topics
     */
    ProduceEncryptor(TopicPlans plans, ValueCrypto crypto, int maxDecompressedBytes, long maxOutputBytes,
                     int maxNewDataKeysPerRequest) {
        if (maxNewDataKeysPerRequest <= 0) {
            throw new IllegalArgumentException("maxNewDataKeysPerRequest must be positive, got " + maxNewDataKeysPerRequest);
        }
        this.maxNewDataKeysPerRequest = maxNewDataKeysPerRequest;
        if (maxDecompressedBytes <= 0 || maxOutputBytes <= 0) {
            throw new IllegalArgumentException("maxDecompressedBytes and maxOutputBytes must be positive, got "
                    + maxDecompressedBytes + " and " + maxOutputBytes);
        }
        this.plans = plans;
        this.crypto = crypto;
        this.maxDecompressedBytes = maxDecompressedBytes;
        this.maxOutputBytes = maxOutputBytes;
    }

    /** As {@link #encrypt(ProduceRequestData, KafkaSession)} on a stream whose identity every rule lets write. */
    boolean encrypt(ProduceRequestData request) throws KafkaFrameException {
        return encrypt(request, null, AccessAudit.NONE, refused -> {
            throw new IllegalStateException("no rule refuses a writer here");
        });
    }

    /**
     * @return true when the request changed: records rewritten, or topics refused to {@code session}'s identity taken
     *     out (false: the original frame can be forwarded)
     */
    boolean encrypt(ProduceRequestData request, KafkaSession session) throws KafkaFrameException {
        return encrypt(request, session.identity(), session.audit(), session::refuseInResponse);
    }

    private boolean encrypt(ProduceRequestData request, String identity, AccessAudit audit,
                            Consumer<List<ProduceResponseData.TopicProduceResponse>> refuse) throws KafkaFrameException {
        // Every name is checked before any policy decision or key work: a request naming one illegal topic among
        // many costs no KMS call (client-chosen names would otherwise each cost a data key).
        for (ProduceRequestData.TopicProduceData topic : request.topicData()) {
            topicName(topic);
        }
        // In request order: each topic's plan is looked up once. A topic whose rule lists writers without this
        // stream's identity is refused: it costs no key work, and is taken out of the request below.
        List<TopicPlan> planOf = new ArrayList<>(request.topicData().size());
        boolean anyRefused = false;
        for (ProduceRequestData.TopicProduceData topic : request.topicData()) {
            TopicPlan plan = plans.of(topic.name());
            planOf.add(plan);
            anyRefused |= plan.encrypts() && !plan.writableBy(identity);
        }
        awaitDataKeys(request, planOf, identity);
        if (anyRefused) {
            refuse.accept(takeOutRefused(request, planOf, identity, audit));
        }
        FrameBudget budget = new FrameBudget(maxDecompressedBytes, maxOutputBytes);
        boolean changed = anyRefused;
        int i = 0;
        for (ProduceRequestData.TopicProduceData topic : request.topicData()) {
            TopicPlan plan = planOf.get(i++);
            String name = topic.name();
            switch (plan.decision()) {
                case PASSTHROUGH -> {
                    if (plan.decryptOnly()) {
                        refuseEnvelopes(topic, plan, budget);
                    }
                    continue;
                }
                case REJECT -> throw rejected(name);
                case ENCRYPT -> {
                    int records = 0;
                    long bytes = 0;
                    for (ProduceRequestData.PartitionProduceData partition : topic.partitionData()) {
                        if (partition.records() == null) {
                            continue;
                        }
                        MemoryRecords memory = memoryRecords(name, partition);
                        try {
                            // A partial batch in a Produce request would reach the broker as plaintext: refuse it.
                            partition.setRecords(RecordBatchRewriter.rewrite(memory, crypto.encryptor(name, plan),
                                    crypto.keyEncryptor(name, plan), crypto.headerEncryptor(name, plan),
                                    RecordBatchRewriter.TruncatedTail.REJECT, budget));
                        } catch (RecordRewriteException e) {
                            if (e.retryWhen() != null) {
                                // A key expired or rotated since awaitDataKeys: retry the frame from its original bytes.
                                throw new RewriteDeferred("Produce to " + name + ": data key not ready", e.retryWhen());
                            }
                            throw new KafkaFrameException("Produce to " + name + "-" + partition.index() + ": " + e.getMessage(), e);
                        }
                        if (audit != AccessAudit.NONE) {
                            records += RecordCounts.of(memory);
                            bytes += memory.sizeInBytes();
                        }
                        changed = true;
                    }
                    audit.access(name, AccessAudit.Direction.PRODUCE, AccessAudit.Outcome.ALLOWED, records, bytes);
                }
            }
        }
        return changed;
    }

    /**
     * Takes the topics refused to {@code identity} out of {@code request} (and {@code planOf}): the broker never sees
     * their records, plaintext or not.
     *
     * @return their answers: TOPIC_AUTHORIZATION_FAILED for every partition, as the broker's own ACLs would answer
     */
    private static List<ProduceResponseData.TopicProduceResponse> takeOutRefused(ProduceRequestData request,
            List<TopicPlan> planOf, String identity, AccessAudit audit) {
        List<ProduceResponseData.TopicProduceResponse> answers = new ArrayList<>();
        String message = "meshcrypt: " + (identity == null ? "a stream without a workload identity" : identity)
                + " is not among the writers of this topic";
        Iterator<ProduceRequestData.TopicProduceData> topics = request.topicData().iterator();
        Iterator<TopicPlan> plansLeft = planOf.iterator();
        while (topics.hasNext()) {
            ProduceRequestData.TopicProduceData topic = topics.next();
            TopicPlan plan = plansLeft.next();
            if (!plan.encrypts() || plan.writableBy(identity)) {
                continue;
            }
            ProduceResponseData.TopicProduceResponse answer = new ProduceResponseData.TopicProduceResponse()
                    .setName(topic.name());
            int records = 0;
            long bytes = 0;
            for (ProduceRequestData.PartitionProduceData partition : topic.partitionData()) {
                answer.partitionResponses().add(new ProduceResponseData.PartitionProduceResponse()
                        .setIndex(partition.index())
                        .setErrorCode(Errors.TOPIC_AUTHORIZATION_FAILED.code())
                        .setErrorMessage(message)
                        .setBaseOffset(-1).setLogAppendTimeMs(-1).setLogStartOffset(-1));
                if (audit != AccessAudit.NONE && partition.records() instanceof MemoryRecords memory) {
                    records += RecordCounts.of(memory);
                    bytes += memory.sizeInBytes();
                }
            }
            audit.access(topic.name(), AccessAudit.Direction.PRODUCE, AccessAudit.Outcome.DENIED, records, bytes);
            answers.add(answer);
            topics.remove();
            plansLeft.remove();
        }
        return answers;
    }

    /**
     * Adds the answers of the topics a Produce request had taken out ({@link #takeOutRefused}) to the broker's
     * response to it.
     *
     * @param refused the answers, or null when the request had none taken out
     * @return whether the response changed
     */
    static boolean answerRefused(ProduceResponseData response,
                                 List<ProduceResponseData.TopicProduceResponse> refused) {
        if (refused == null) {
            return false;
        }
        for (ProduceResponseData.TopicProduceResponse answer : refused) {
            // Added as copies: a response is re-encoded once, but the same list must not be linked into two collections.
            response.responses().add(answer.duplicate());
        }
        return true;
    }

    /** Fails the request when a value, key or header of a decryptOnly-but-not-encrypted topic would pass for an envelope on fetch. */
    private void refuseEnvelopes(ProduceRequestData.TopicProduceData topic, TopicPlan plan, FrameBudget budget)
            throws KafkaFrameException {
        String name = topic.name();
        // Keys too, where the fetch path would decrypt key envelopes (null when it never does).
        ValueRewriter keys = crypto.keyGuard(name, plan);
        HeaderRewriter headers = crypto.headerGuard(name, plan);
        for (ProduceRequestData.PartitionProduceData partition : topic.partitionData()) {
            if (partition.records() == null) {
                continue;
            }
            try {
                RecordBatchRewriter.inspect(memoryRecords(name, partition), NO_ENVELOPES, keys, headers,
                        RecordBatchRewriter.TruncatedTail.REJECT, budget);
            } catch (RecordRewriteException e) {
                throw new KafkaFrameException("Produce to " + name + "-" + partition.index() + ": " + e.getMessage(), e);
            }
        }
    }

    private static MemoryRecords memoryRecords(String name, ProduceRequestData.PartitionProduceData partition)
            throws KafkaFrameException {
        if (!(partition.records() instanceof MemoryRecords records)) {
            throw new KafkaFrameException("Produce to " + name + " carries records of an unexpected type");
        }
        return records;
    }

    /**
     * Starts the data-key work of every encrypted topic of the request at once and, when any must wait, defers the
     * whole frame until all are ready: one KMS round trip for a request naming many new topics, and the connection's
     * thread never waits (the rate of new data keys is bounded by the key manager). Policy rejections fail first.
     */
    private void awaitDataKeys(ProduceRequestData request, List<TopicPlan> planOf, String identity)
            throws KafkaFrameException {
        List<CompletableFuture<Void>> pending = null;
        int i = 0;
        for (ProduceRequestData.TopicProduceData topic : request.topicData()) {
            String name = topic.name();
            TopicPlan plan = planOf.get(i++);
            if (plan.decision() == TopicDecision.REJECT) {
                throw rejected(name);
            }
            // A topic whose values go under subject keys needs its data key only for listed headers.
            boolean needsDek = plan.subject() == null || !plan.headers().isEmpty();
            CompletableFuture<Void> ready = plan.encrypts() && plan.writableBy(identity) && needsDek
                    ? crypto.prepareForEncryption(name) : null;
            if (ready != null) {
                if (pending == null) {
                    pending = new ArrayList<>();
                }
                if (pending.size() == maxNewDataKeysPerRequest) {
                    throw new KafkaFrameException("Produce names more than " + maxNewDataKeysPerRequest
                            + " topics whose data keys are not ready (limits.maxNewDataKeysPerRequest); the keys of"
                            + " those seen so far are being made, so a retry gets further");
                }
                pending.add(ready);
            }
        }
        if (pending != null) {
            throw new RewriteDeferred("Produce waits for the data keys of " + pending.size() + " topic(s)",
                    CompletableFuture.allOf(pending.toArray(CompletableFuture[]::new)));
        }
        awaitSubjectKeys(request, planOf, identity);
    }

    /**
     * Per-subject keys: one pass over the records of each topic with {@code subject:} starts the key work of every new
     * subject at once (the store's rate limit bounds it), and the frame waits once for all of them. Failures (no
     * subject, a malformed batch) are left to the encrypting pass, which reports them.
     */
    private void awaitSubjectKeys(ProduceRequestData request, List<TopicPlan> planOf, String identity)
            throws KafkaFrameException {
        java.util.Set<CompletableFuture<Void>> pending = null;
        int i = 0;
        for (ProduceRequestData.TopicProduceData topic : request.topicData()) {
            TopicPlan plan = planOf.get(i++);
            if (plan.subject() == null || !plan.encrypts() || !plan.writableBy(identity)) {
                continue;
            }
            if (pending == null) {
                pending = new java.util.HashSet<>();
            }
            ValueRewriter preparer = crypto.subjectPreparer(plan, pending);
            if (preparer == null) {
                continue;
            }
            for (ProduceRequestData.PartitionProduceData partition : topic.partitionData()) {
                if (partition.records() instanceof MemoryRecords records) {
                    try {
                        RecordBatchRewriter.inspect(records, preparer, RecordBatchRewriter.TruncatedTail.REJECT,
                                new FrameBudget(maxDecompressedBytes, maxOutputBytes));
                    } catch (RecordRewriteException e) {
                        // reported by the encrypting pass
                    }
                }
            }
        }
        if (pending != null && !pending.isEmpty()) {
            throw new RewriteDeferred("Produce waits for the keys of " + pending.size() + " subject(s)",
                    CompletableFuture.allOf(pending.toArray(CompletableFuture[]::new)));
        }
    }

    private static KafkaFrameException rejected(String topic) {
        return new PolicyRejectedException("policy rejects producing to topic " + topic
                + " (it matches no encrypt pattern and unmatched is reject)");
    }

    private static String topicName(ProduceRequestData.TopicProduceData topic) throws KafkaFrameException {
        String name = topic.name();
        if (name == null || name.isEmpty()) {
            // Only v13+ names topics by id, and those versions are refused before decoding: never trust an id here.
            throw new KafkaFrameException("Produce names topic id " + topic.topicId() + " without a name; topics are"
                    + " only accepted by name (Produce is capped at v" + TopicNames.LAST_VERSION_NAMING_TOPICS + ")");
        }
        if (!TopicNames.isLegal(name)) {
            throw new KafkaFrameException("Produce names topic " + TopicNames.describe(name)
                    + ", which is not a legal Kafka topic name (1 to " + TopicNames.MAX_NAME_LENGTH
                    + " characters of a-z A-Z 0-9 . _ -, not \".\" or \"..\")");
        }
        return name;
    }
}
