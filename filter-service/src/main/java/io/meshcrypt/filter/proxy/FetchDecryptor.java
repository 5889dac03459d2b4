package io.meshcrypt.filter.proxy;

import io.meshcrypt.filter.kms.KmsUnavailableException;
import io.meshcrypt.filter.policy.EncryptionPolicy;
import io.meshcrypt.filter.policy.TopicDecision;
import io.meshcrypt.filter.records.RecordBatchRewriter;
import io.meshcrypt.filter.records.RecordRewriteException;
import java.util.ArrayList;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.message.FetchResponseData;
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
 */
final class FetchDecryptor {
    private static final Logger log = LoggerFactory.getLogger(FetchDecryptor.class);

    private final EncryptionPolicy policy;
    private final TopicNames topicNames;
    private final ValueCrypto crypto;

    FetchDecryptor(EncryptionPolicy policy, TopicNames topicNames, ValueCrypto crypto) {
        this.policy = policy;
        this.topicNames = topicNames;
        this.crypto = crypto;
    }

    /** @param version the Fetch version: up to 5 clients do not know KAFKA_STORAGE_ERROR (the broker downgrades it too) */
    void decrypt(FetchResponseData response, short version) {
        for (FetchResponseData.FetchableTopicResponse topic : response.responses()) {
            String name = nameOf(topic.topic(), topic.topicId());
            for (FetchResponseData.PartitionData p : topic.partitions()) {
                Outcome o = decrypt(name, topic.topicId(), p.partitionIndex(), p.records());
                if (o.error() != Errors.NONE) {
                    Errors error = o.error() == Errors.KAFKA_STORAGE_ERROR && version <= 5 ? Errors.NOT_LEADER_OR_FOLLOWER : o.error();
                    p.setErrorCode(error.code()).setRecords(MemoryRecords.EMPTY);
                } else {
                    p.setRecords(o.records());
                }
            }
        }
    }

    void decrypt(ShareFetchResponseData response) {
        for (ShareFetchResponseData.ShareFetchableTopicResponse topic : response.responses()) {
            String name = nameOf(null, topic.topicId());
            for (ShareFetchResponseData.PartitionData p : topic.partitions()) {
                Outcome o = decrypt(name, topic.topicId(), p.partitionIndex(), p.records());
                if (o.error() != Errors.NONE) {
                    p.setErrorCode(o.error().code()).setErrorMessage(o.message()).setRecords(MemoryRecords.EMPTY)
                            .setAcquiredRecords(new ArrayList<>());
                } else {
                    p.setRecords(o.records());
                }
            }
        }
    }

    private record Outcome(BaseRecords records, Errors error, String message) {
        static Outcome ok(BaseRecords records) {
            return new Outcome(records, Errors.NONE, null);
        }
    }

    private Outcome decrypt(String topic, Uuid topicId, int partition, BaseRecords records) {
        if (!(records instanceof MemoryRecords memory) || memory.sizeInBytes() == 0) {
            return Outcome.ok(records);
        }
        if (topic == null) {
            // An id no Metadata response has named yet: the client refreshes metadata on this error.
            log.warn("fetch of unknown topic id {} partition {}: answering UNKNOWN_TOPIC_ID", topicId, partition);
            return new Outcome(MemoryRecords.EMPTY, Errors.UNKNOWN_TOPIC_ID, "topic id not yet known to meshcrypt");
        }
        try {
            TopicDecision decision = policy.decide(topic);
            return Outcome.ok(RecordBatchRewriter.rewrite(memory, crypto.decryptor(topic, decision),
                    crypto.keyDecryptor(topic, decision), RecordBatchRewriter.TruncatedTail.PASS_THROUGH));
        } catch (RecordRewriteException e) {
            if (kmsUnavailable(e)) {
                // Transient: clients retry a storage error after a metadata refresh, so consumers pause until the
                // KMS answers again instead of failing with an error that says the data is bad.
                log.warn("fetch {}-{} at offset {}: {}; answering KAFKA_STORAGE_ERROR (retriable)", topic, partition,
                        e.offset(), e.getMessage());
                return new Outcome(MemoryRecords.EMPTY, Errors.KAFKA_STORAGE_ERROR,
                        "meshcrypt could not reach its key service for the record at offset " + e.offset() + "; retry");
            }
            log.warn("fetch {}-{} at offset {}: {}; answering CORRUPT_MESSAGE", topic, partition, e.offset(), e.getMessage());
            return new Outcome(MemoryRecords.EMPTY, Errors.CORRUPT_MESSAGE,
                    "meshcrypt could not decrypt the record at offset " + e.offset());
        }
    }

    private static boolean kmsUnavailable(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof KmsUnavailableException) {
                return true;
            }
        }
        return false;
    }

    private String nameOf(String name, Uuid id) {
        if (name != null && !name.isEmpty()) {
            return name;
        }
        return topicNames.nameOf(id);
    }
}
