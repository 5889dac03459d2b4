package io.meshcrypt.filter.policy;

import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;

/**
 * Which topics are encrypted. Patterns are globs ({@code *} any run of characters, {@code ?} one character,
 * everything else literal). A topic matching any pattern is {@link TopicDecision#ENCRYPT}; any other topic gets the
 * {@link Unmatched} decision. Immutable and thread-safe; decisions are cached per topic.
 */
public final class EncryptionPolicy {

    public enum Unmatched { PASSTHROUGH, REJECT }

    /**
     * Decisions run per partition of every Produce and Fetch, so they are cached. Topic names come from clients, so
     * the cache is bounded: when full it is cleared, which only costs recomputing a regex match.
     */
    private static final int DECISION_CACHE_LIMIT = 10_000;

    private static final EncryptionPolicy ENCRYPT_ALL = new EncryptionPolicy(List.of("*"), Unmatched.PASSTHROUGH);

    private final List<String> patterns;
    private final Unmatched unmatched;
    private final Pattern matcher;
    private final ConcurrentHashMap<String, TopicDecision> decisions = new ConcurrentHashMap<>();

    private EncryptionPolicy(List<String> patterns, Unmatched unmatched) {
        this.patterns = patterns;
        this.unmatched = unmatched;
        StringBuilder regex = new StringBuilder();
        for (String glob : patterns) {
            if (!regex.isEmpty()) {
                regex.append('|');
            }
            regex.append("(?:").append(globToRegex(glob)).append(')');
        }
        this.matcher = Pattern.compile(regex.toString(), Pattern.DOTALL);
    }

    /** The default: every topic encrypted. */
    public static EncryptionPolicy encryptAll() {
        return ENCRYPT_ALL;
    }

    /**
     * @param encryptPatterns at least one non-empty glob
     * @throws IllegalArgumentException when the list or a pattern is empty
     */
    public static EncryptionPolicy of(List<String> encryptPatterns, Unmatched unmatched) {
        Objects.requireNonNull(unmatched, "unmatched");
        List<String> patterns = List.copyOf(encryptPatterns);
        if (patterns.isEmpty()) {
            throw new IllegalArgumentException("at least one encrypt pattern is required");
        }
        for (int i = 0; i < patterns.size(); i++) {
            if (patterns.get(i).isEmpty()) {
                throw new IllegalArgumentException("encrypt pattern " + i + " is empty");
            }
        }
        return new EncryptionPolicy(patterns, unmatched);
    }

    public TopicDecision decide(String topic) {
        TopicDecision decision = decisions.get(topic);
        if (decision == null) {
            decision = matcher.matcher(topic).matches() ? TopicDecision.ENCRYPT
                    : unmatched == Unmatched.REJECT ? TopicDecision.REJECT : TopicDecision.PASSTHROUGH;
            if (decisions.size() >= DECISION_CACHE_LIMIT) {
                decisions.clear();
            }
            decisions.put(topic, decision);
        }
        return decision;
    }

    /** @return the encrypt globs, in configuration order */
    public List<String> patterns() {
        return patterns;
    }

    public Unmatched unmatched() {
        return unmatched;
    }

    /** Literal runs are quoted so regex metacharacters in topic names ('.', '$', ...) never act as regex. */
    static String globToRegex(String glob) {
        StringBuilder regex = new StringBuilder();
        StringBuilder literal = new StringBuilder();
        for (int i = 0; i < glob.length(); i++) {
            char c = glob.charAt(i);
            if (c == '*' || c == '?') {
                if (!literal.isEmpty()) {
                    regex.append(Pattern.quote(literal.toString()));
                    literal.setLength(0);
                }
                regex.append(c == '*' ? ".*" : ".");
            } else {
                literal.append(c);
            }
        }
        if (!literal.isEmpty()) {
            regex.append(Pattern.quote(literal.toString()));
        }
        return regex.toString();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof EncryptionPolicy other && patterns.equals(other.patterns) && unmatched == other.unmatched;
    }

    @Override
    public int hashCode() {
        return Objects.hash(patterns, unmatched);
    }

    @Override
    public String toString() {
        return "EncryptionPolicy{encrypt=" + patterns + ", unmatched=" + unmatched.name().toLowerCase(Locale.ROOT) + "}";
    }
}
