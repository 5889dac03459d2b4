package io.meshcrypt.meshconfig.policy;

import io.meshcrypt.meshconfig.transform.JsonPointer;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * One {@code policy.encrypt} entry.
 *
 * @param pattern topic glob
 * @param fields JSON Pointers of the value fields to encrypt; empty means the whole value
 * @param deterministicKeys whether record keys are encrypted too, deterministically (AES-SIV); off unless configured
 * @param readers the workload identities that fetch plaintext; null: every identity
 * @param writers the workload identities that may produce; null: every identity
 * @param others what a fetch by an identity outside {@code readers} gets
 * @param fieldReaders of the {@code fields} that name readers of their own: who reads each in plaintext (a reader of
 *     the topic outside a field's readers gets that field's envelope as stored); other fields follow {@code readers}
 * @param headers record header names whose values are encrypted: exact names or globs (same syntax as topic patterns:
 *     {@code *} any run, {@code ?} one character, everything else literal, case-sensitive); empty: headers stay as sent
 * @param subject where a record names its subject, whose own key then encrypts the value (whole or its {@code fields})
 *     in place of the topic's data key, so that forgetting the subject makes its records unreadable; null: no subject
 * @param forgotten what readers get for what a forgotten subject's key encrypted (only set beside {@code subject})
 */
public record TopicRule(String pattern, List<JsonPointer> fields, boolean deterministicKeys, Identities readers,
                        Identities writers, Others others, Map<JsonPointer, Identities> fieldReaders,
                        List<String> headers, SubjectSource subject, Forgotten forgotten) {

    /** What a consumer whose identity is not among the readers gets. */
    public enum Others {
        /** The stored envelopes, unchanged: the consumer sees ciphertext values. */
        CIPHERTEXT,
        /** TOPIC_AUTHORIZATION_FAILED for the partition, and no records. */
        DENY
    }

    public TopicRule {
        Objects.requireNonNull(pattern, "pattern");
        Objects.requireNonNull(others, "others");
        if (pattern.isEmpty()) {
            throw new IllegalArgumentException("topic pattern is empty");
        }
        fields = List.copyOf(fields);
        fieldReaders = Map.copyOf(fieldReaders);
        headers = List.copyOf(headers);
        if (headers.stream().anyMatch(String::isEmpty)) {
            throw new IllegalArgumentException("a header name pattern is empty");
        }
        if (!fields.containsAll(fieldReaders.keySet())) {
            throw new IllegalArgumentException("field readers name fields the rule does not encrypt: " + fieldReaders.keySet());
        }
        if ((subject == null) != (forgotten == null)) {
            throw new IllegalArgumentException("forgotten is set exactly when a subject is");
        }
    }

    /** No subject keys. */
    public TopicRule(String pattern, List<JsonPointer> fields, boolean deterministicKeys, Identities readers,
                     Identities writers, Others others, Map<JsonPointer, Identities> fieldReaders,
                     List<String> headers) {
        this(pattern, fields, deterministicKeys, readers, writers, others, fieldReaders, headers, null, null);
    }

    /** No header is encrypted. */
    public TopicRule(String pattern, List<JsonPointer> fields, boolean deterministicKeys, Identities readers,
                     Identities writers, Others others, Map<JsonPointer, Identities> fieldReaders) {
        this(pattern, fields, deterministicKeys, readers, writers, others, fieldReaders, List.of());
    }

    /** No field names readers of its own. */
    public TopicRule(String pattern, List<JsonPointer> fields, boolean deterministicKeys, Identities readers,
                     Identities writers, Others others) {
        this(pattern, fields, deterministicKeys, readers, writers, others, Map.of());
    }

    /** Every identity reads and writes. */
    public TopicRule(String pattern, List<JsonPointer> fields, boolean deterministicKeys) {
        this(pattern, fields, deterministicKeys, null, null, Others.CIPHERTEXT);
    }

    /** Keys stay as the producer sent them. */
    public TopicRule(String pattern, List<JsonPointer> fields) {
        this(pattern, fields, false);
    }

    public static TopicRule wholeValue(String pattern) {
        return new TopicRule(pattern, List.of());
    }

    /** @return the scope of the entry's subject keys (the subject's named scope, else the topic pattern), or null */
    public String subjectScope() {
        return subject == null ? null : subject.scopeOr(pattern);
    }

    /** @return whether the rule says anything beyond "encrypt whole values, for everyone" */
    boolean plain() {
        return fields.isEmpty() && !deterministicKeys && readers == null && writers == null && headers.isEmpty()
                && subject == null;
    }

    /** @param identity the stream's authenticated identity, or null */
    public boolean mayRead(String identity) {
        return readers == null || readers.contains(identity);
    }

    /** @param identity the stream's authenticated identity, or null */
    public boolean mayWrite(String identity) {
        return writers == null || writers.contains(identity);
    }
}
