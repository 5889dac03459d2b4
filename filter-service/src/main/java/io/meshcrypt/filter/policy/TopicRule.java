package io.meshcrypt.filter.policy;

import io.meshcrypt.filter.transform.JsonPointer;
import java.util.List;
import java.util.Objects;

/**
 * One {@code policy.encrypt} entry.
 *
 * @param pattern topic glob
 * @param fields JSON Pointers of the value fields to encrypt; empty means the whole value
 */
public record TopicRule(String pattern, List<JsonPointer> fields) {
    public TopicRule {
        Objects.requireNonNull(pattern, "pattern");
        if (pattern.isEmpty()) {
            throw new IllegalArgumentException("topic pattern is empty");
        }
        fields = List.copyOf(fields);
    }

    public static TopicRule wholeValue(String pattern) {
        return new TopicRule(pattern, List.of());
    }
}
