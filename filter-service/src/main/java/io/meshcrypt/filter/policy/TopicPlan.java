package io.meshcrypt.filter.policy;

import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.TopicDecision;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import java.util.List;
import java.util.Objects;

/**
 * Everything the policy says about one topic, resolved once so that a partition consults the policy once.
 *
 * @param decision what Produce does with the topic's values
 * @param decryptOnly not encrypted on produce, yet envelopes are decrypted on fetch ({@code decryptOnly} globs)
 * @param fields the JSON fields encrypted in its values; empty for whole values or an unencrypted topic
 * @param deterministicKeys whether record keys are encrypted too (only ever true for an encrypted topic)
 */
public record TopicPlan(TopicDecision decision, boolean decryptOnly, List<JsonPointer> fields,
                        boolean deterministicKeys) {
    public TopicPlan {
        Objects.requireNonNull(decision, "decision");
        fields = List.copyOf(fields);
    }

    /** Resolves {@code topic} against {@code policy} (uncached: see {@link TopicPlans}). */
    public static TopicPlan resolve(EncryptionPolicy policy, String topic) {
        TopicDecision decision = policy.decide(topic);
        boolean encrypts = decision == TopicDecision.ENCRYPT;
        return new TopicPlan(decision, !encrypts && policy.decryptsOnFetch(topic),
                encrypts ? policy.fieldsOf(topic) : List.of(), encrypts && policy.deterministicKeys(topic));
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
}
