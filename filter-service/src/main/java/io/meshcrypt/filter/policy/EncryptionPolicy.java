package io.meshcrypt.filter.policy;

import io.meshcrypt.filter.transform.JsonPointer;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;

/**
 * Which topics are encrypted. Patterns are globs ({@code *} any run of characters, {@code ?} one character,
 * everything else literal). A topic matching any pattern is {@link TopicDecision#ENCRYPT}; any other topic gets the
 * {@link Unmatched} decision. An entry may list JSON fields ({@link TopicRule#fields()}): the values of its topics are
 * then JSON documents of which only those fields are encrypted; the first entry a topic matches decides which fields.
 * Immutable and thread-safe; decisions are cached per topic.
 */
public final class EncryptionPolicy {

    public enum Unmatched { PASSTHROUGH, REJECT }

    /**
     * Decisions run per partition of every Produce and Fetch, so they are cached. Topic names come from clients, so
     * the cache is bounded: when full it is cleared, which only costs recomputing a regex match.
     */
    private static final int DECISION_CACHE_LIMIT = 10_000;

    private static final EncryptionPolicy ENCRYPT_ALL =
            new EncryptionPolicy(List.of(TopicRule.wholeValue("*")), Unmatched.PASSTHROUGH);

    private final List<TopicRule> rules;
    private final List<String> patterns;
    private final Unmatched unmatched;
    private final Pattern matcher;
    private final ConcurrentHashMap<String, TopicDecision> decisions = new ConcurrentHashMap<>();
    /** Per rule, in order; null when no rule lists fields (every encrypted topic is whole-value). */
    private final Pattern[] ruleMatchers;
    private final ConcurrentHashMap<String, List<JsonPointer>> fields = new ConcurrentHashMap<>();

    private EncryptionPolicy(List<TopicRule> rules, Unmatched unmatched) {
        this.rules = rules;
        this.patterns = rules.stream().map(TopicRule::pattern).toList();
        this.unmatched = unmatched;
        this.ruleMatchers = rules.stream().allMatch(r -> r.fields().isEmpty()) ? null
                : rules.stream().map(r -> Pattern.compile(globToRegex(r.pattern()), Pattern.DOTALL)).toArray(Pattern[]::new);
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
        List<TopicRule> rules = new ArrayList<>();
        for (int i = 0; i < encryptPatterns.size(); i++) {
            if (encryptPatterns.get(i).isEmpty()) {
                throw new IllegalArgumentException("encrypt pattern " + i + " is empty");
            }
            rules.add(TopicRule.wholeValue(encryptPatterns.get(i)));
        }
        return ofRules(rules, unmatched);
    }

    /**
     * @param rules at least one; the first rule a topic matches decides its fields
     * @throws IllegalArgumentException when the list is empty
     */
    public static EncryptionPolicy ofRules(List<TopicRule> rules, Unmatched unmatched) {
        Objects.requireNonNull(unmatched, "unmatched");
        List<TopicRule> copy = List.copyOf(rules);
        if (copy.isEmpty()) {
            throw new IllegalArgumentException("at least one encrypt pattern is required");
        }
        return new EncryptionPolicy(copy, unmatched);
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

    /**
     * @return the JSON fields to encrypt in values of {@code topic}, from the first rule it matches; empty when the
     *     whole value is encrypted or the topic is not encrypted at all (see {@link #decide})
     */
    public List<JsonPointer> fieldsOf(String topic) {
        if (ruleMatchers == null) {
            return List.of();
        }
        List<JsonPointer> result = fields.get(topic);
        if (result == null) {
            result = List.of();
            for (int i = 0; i < ruleMatchers.length; i++) {
                if (ruleMatchers[i].matcher(topic).matches()) {
                    result = rules.get(i).fields();
                    break;
                }
            }
            if (fields.size() >= DECISION_CACHE_LIMIT) {
                fields.clear();
            }
            fields.put(topic, result);
        }
        return result;
    }

    /** @return the encrypt entries, in configuration order */
    public List<TopicRule> rules() {
        return rules;
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
        return o instanceof EncryptionPolicy other && rules.equals(other.rules) && unmatched == other.unmatched;
    }

    @Override
    public int hashCode() {
        return Objects.hash(rules, unmatched);
    }

    @Override
    public String toString() {
        List<String> entries = rules.stream()
                .map(r -> r.fields().isEmpty() ? r.pattern() : r.pattern() + " fields " + r.fields()).toList();
        return "EncryptionPolicy{encrypt=" + entries + ", unmatched=" + unmatched.name().toLowerCase(Locale.ROOT) + "}";
    }
}
