package io.meshcrypt.meshconfig.policy;

import io.meshcrypt.meshconfig.transform.JsonPointer;
import java.util.List;
import java.util.Objects;

/**
 * One {@code policy.encrypt} entry.
 *
 * @param pattern topic glob
 * @param fields JSON Pointers of the value fields to encrypt; empty means the whole value
 * @param deterministicKeys whether record keys are encrypted too, deterministically (AES-SIV); off unless configured
 */
public record TopicRule(String pattern, List<JsonPointer> fields, boolean deterministicKeys) {
    public TopicRule {
        Objects.requireNonNull(pattern, "pattern");
        if (pattern.isEmpty()) {
            throw new IllegalArgumentException("topic pattern is empty");
        }
        fields = List.copyOf(fields);
    }

    /** Keys stay as the producer sent them. */
    public TopicRule(String pattern, List<JsonPointer> fields) {
        this(pattern, fields, false);
    }

    public static TopicRule wholeValue(String pattern) {
        return new TopicRule(pattern, List.of());
    }
}
