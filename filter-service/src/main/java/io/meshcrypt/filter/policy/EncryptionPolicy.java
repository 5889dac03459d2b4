package io.meshcrypt.filter.policy;

import java.util.List;

/**
 * Which topics are encrypted. Patterns are globs ({@code *} any run of characters, {@code ?} one character).
 * Immutable and thread-safe; decisions may be cached per topic.
 */
public final class EncryptionPolicy {

    public enum Unmatched { PASSTHROUGH, REJECT }

    /** The default: every topic encrypted. */
    public static EncryptionPolicy encryptAll() {
        throw new UnsupportedOperationException("being written");
    }

    public static EncryptionPolicy of(List<String> encryptPatterns, Unmatched unmatched) {
        throw new UnsupportedOperationException("being written");
    }

    public TopicDecision decide(String topic) {
        throw new UnsupportedOperationException("being written");
    }
}
