package io.meshcrypt.filter.proxy;

import io.meshcrypt.filter.framing.KafkaFrameException;
import io.meshcrypt.filter.policy.EncryptionPolicy;
import io.meshcrypt.filter.records.RecordBatchRewriter;
import io.meshcrypt.filter.records.RecordRewriteException;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.record.internal.MemoryRecords;

/**
 * Encrypts the record values (and, on topics whose policy says {@code keys: deterministic}, the keys) of a Produce
 * request in place. Anything in doubt (an unknown topic id, a
 * topic the policy rejects, a batch that cannot be rewritten) fails the whole frame, which closes the
 * connection: a Produce request is either fully rewritten by policy or never forwarded.
 */
final class ProduceEncryptor {
    private final EncryptionPolicy policy;
    private final TopicNames topicNames;
    private final ValueCrypto crypto;

    ProduceEncryptor(EncryptionPolicy policy, TopicNames topicNames, ValueCrypto crypto) {
        this.policy = policy;
        this.topicNames = topicNames;
        this.crypto = crypto;
    }

    /** @return true when any partition's records were rewritten (false: the original frame can be forwarded) */
    boolean encrypt(ProduceRequestData request) throws KafkaFrameException {
        boolean changed = false;
        for (ProduceRequestData.TopicProduceData topic : request.topicData()) {
            String name = topicName(topic);
            switch (policy.decide(name)) {
                case PASSTHROUGH -> {
                    continue;
                }
                case REJECT -> throw new KafkaFrameException("policy rejects producing to topic " + name
                        + " (it matches no encrypt pattern and unmatched is reject)");
                case ENCRYPT -> {
                    for (ProduceRequestData.PartitionProduceData partition : topic.partitionData()) {
                        if (partition.records() == null) {
                            continue;
                        }
                        if (!(partition.records() instanceof MemoryRecords records)) {
                            throw new KafkaFrameException("Produce to " + name + " carries records of an unexpected type");
                        }
                        try {
                            // A partial batch in a Produce request would reach the broker as plaintext: refuse it.
                            partition.setRecords(RecordBatchRewriter.rewrite(records, crypto.encryptor(name),
                                    crypto.keyEncryptor(name), RecordBatchRewriter.TruncatedTail.REJECT));
                        } catch (RecordRewriteException e) {
                            throw new KafkaFrameException("Produce to " + name + "-" + partition.index() + ": " + e.getMessage(), e);
                        }
                        changed = true;
                    }
                }
            }
        }
        return changed;
    }

    private String topicName(ProduceRequestData.TopicProduceData topic) throws KafkaFrameException {
        if (topic.name() != null && !topic.name().isEmpty()) {
            return topic.name();
        }
        String name = topicNames.nameOf(topic.topicId());
        if (name == null) {
            // Without the name neither policy nor the ciphertext's topic binding can be decided: close, the
            // client reconnects, refreshes metadata through the proxy (which teaches us the id) and retries.
            throw new KafkaFrameException("Produce names topic id " + topic.topicId()
                    + " that no Metadata response through this filter has shown yet");
        }
        return name;
    }
}
