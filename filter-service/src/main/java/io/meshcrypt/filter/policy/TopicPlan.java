package io.meshcrypt.filter.policy;

import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.Forgotten;
import io.meshcrypt.meshconfig.policy.Identities;
import io.meshcrypt.meshconfig.policy.SubjectSource;
import io.meshcrypt.meshconfig.policy.TopicDecision;
import io.meshcrypt.meshconfig.policy.TopicRule;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Everything the policy says about one topic, resolved once so that a partition consults the policy once.
 *
 * @param decision what Produce does with the topic's values
 * @param decryptOnly not encrypted on produce, yet envelopes are decrypted on fetch ({@code decryptOnly} globs)
 * @param fields the JSON fields encrypted in its values; empty for whole values or an unencrypted topic
 * @param deterministicKeys whether record keys are encrypted too (only ever true for an encrypted topic)
 * @param readers who fetches plaintext of an encrypted topic; null: every stream
 * @param writers who may produce to an encrypted topic; null: every stream
 * @param others what a fetch by a stream outside {@code readers} gets
 * @param fieldReaders of the {@code fields} with readers of their own, who reads each in plaintext
 * @param headers the record headers whose values are encrypted (only ever listed for an encrypted topic)
 * @param subject where a produced record names its subject (values then go under subject keys), or null
 * @param scope with a subject: the subject keys' scope, the matching entry's topic pattern; else null
 * @param forgotten what a reader gets for a value of a forgotten subject (on topics with a subject; a decryptOnly or
 *     other topic that meets a version-3 envelope of a forgotten subject gets {@link Forgotten#NULL})
 */
public record TopicPlan(TopicDecision decision, boolean decryptOnly, List<JsonPointer> fields,
                        boolean deterministicKeys, Identities readers, Identities writers, TopicRule.Others others,
                        Map<JsonPointer, Identities> fieldReaders, HeaderNames headers, SubjectSource subject,
                        String scope, Forgotten forgotten) {

    /** What one stream's fetch of the topic gets. */
    public enum Read {
        /** Decrypted values (or, for a topic the fetch path does not decrypt, what the broker stored). */
        PLAINTEXT,
        /** The stored envelopes, unchanged. */
        CIPHERTEXT,
        /** TOPIC_AUTHORIZATION_FAILED and no records. */
        DENIED
    }

    public TopicPlan {
        Objects.requireNonNull(decision, "decision");
        Objects.requireNonNull(others, "others");
        fields = List.copyOf(fields);
        fieldReaders = Map.copyOf(fieldReaders);
        Objects.requireNonNull(headers, "headers");
        Objects.requireNonNull(forgotten, "forgotten");
        if ((subject == null) != (scope == null)) {
            throw new IllegalArgumentException("a scope is given exactly with a subject");
        }
    }

    /** No subject keys. */
    public TopicPlan(TopicDecision decision, boolean decryptOnly, List<JsonPointer> fields, boolean deterministicKeys,
                     Identities readers, Identities writers, TopicRule.Others others,
                     Map<JsonPointer, Identities> fieldReaders, HeaderNames headers) {
        this(decision, decryptOnly, fields, deterministicKeys, readers, writers, others, fieldReaders, headers, null,
                null, Forgotten.NULL);
    }

    /** No header is encrypted. */
    public TopicPlan(TopicDecision decision, boolean decryptOnly, List<JsonPointer> fields, boolean deterministicKeys,
                     Identities readers, Identities writers, TopicRule.Others others,
                     Map<JsonPointer, Identities> fieldReaders) {
        this(decision, decryptOnly, fields, deterministicKeys, readers, writers, others, fieldReaders, HeaderNames.NONE);
    }

    /** Every stream reads and writes. */
    public TopicPlan(TopicDecision decision, boolean decryptOnly, List<JsonPointer> fields, boolean deterministicKeys) {
        this(decision, decryptOnly, fields, deterministicKeys, null, null, TopicRule.Others.CIPHERTEXT, Map.of());
    }

    /** Resolves {@code topic} against {@code policy} (uncached: see {@link TopicPlans}). */
    public static TopicPlan resolve(EncryptionPolicy policy, String topic) {
        TopicDecision decision = policy.decide(topic);
        if (decision != TopicDecision.ENCRYPT) {
            return new TopicPlan(decision, policy.decryptsOnFetch(topic), List.of(), false);
        }
        TopicRule rule = policy.ruleOf(topic);
        return new TopicPlan(decision, false, rule.fields(), rule.deterministicKeys(), rule.readers(), rule.writers(),
                rule.others(), rule.fieldReaders(), HeaderNames.of(rule.headers()), rule.subject(),
                rule.subjectScope(),
                rule.forgotten() == null ? Forgotten.NULL : rule.forgotten());
    }

    public boolean encrypts() {
        return decision == TopicDecision.ENCRYPT;
    }

    /**
     * @return whether fetched batches are decrypted (encrypted or decryptOnly); when false they pass byte for byte,
     *     never decompressed and never shown to the KMS
     */
    public boolean decryptsOnFetch() {
        return encrypts() || decryptOnly;
    }

    /** @param identity the stream's authenticated workload identity, or null when it has none */
    public Read readBy(String identity) {
        if (readers == null || readers.contains(identity)) {
            return Read.PLAINTEXT;
        }
        return others == TopicRule.Others.DENY ? Read.DENIED : Read.CIPHERTEXT;
    }

    /**
     * @param identity the stream's authenticated workload identity, or null when it has none
     * @return the {@link #fields} {@code identity} reads in plaintext (a reader of the topic may still be outside the
     *     readers of some field); all of them when no field names readers of its own
     */
    public List<JsonPointer> fieldsReadableBy(String identity) {
        if (fieldReaders.isEmpty()) {
            return fields;
        }
        return fields.stream().filter(f -> {
            Identities readersOfField = fieldReaders.get(f);
            return readersOfField == null || readersOfField.contains(identity);
        }).toList();
    }

    /**
     * @param identity the stream's authenticated workload identity, or null when it has none
     * @return false when the topic is encrypted and lists writers that do not include {@code identity}
     */
    public boolean writableBy(String identity) {
        return writers == null || writers.contains(identity);
    }
}
