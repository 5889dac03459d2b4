package io.meshcrypt.meshconfig.policy;

import io.meshcrypt.meshconfig.transform.JsonPointer;
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
 * then JSON documents of which only those fields are encrypted; the first entry a topic matches decides which fields,
 * and whether record keys are encrypted deterministically ({@link TopicRule#deterministicKeys()}).
 *
 * <p>On fetch, only topics the policy encrypts are decrypted, plus topics listed in {@code decryptOnly}: topics that
 * were encrypted once and whose old envelopes must still be readable. Any other topic's fetched batches pass byte
 * for byte: an envelope-shaped value on a passthrough topic is data, not something the filter (and its KMS) acts on,
 * so nobody can turn a passthrough partition into a permanent decryption error or steer KMS calls by producing one.
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
            new EncryptionPolicy(List.of(TopicRule.wholeValue("*")), List.of(), Unmatched.PASSTHROUGH);

    private final List<TopicRule> rules;
    private final List<String> patterns;
    private final Unmatched unmatched;
    private final Pattern matcher;
    private final ConcurrentHashMap<String, TopicDecision> decisions = new ConcurrentHashMap<>();
    /** Per rule, in order; null when every rule is {@link TopicRule#plain()}. */
    private final Pattern[] ruleMatchers;
    /** Per rule, in order. */
    private final Pattern[] everyRule;
    private final ConcurrentHashMap<String, List<JsonPointer>> fields = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<String, Boolean> deterministicKeys = new ConcurrentHashMap<>();
    private final boolean anyDeterministicKeys;
    private final boolean anyDeny;
    private final List<String> decryptOnly;
    /** Null when {@link #decryptOnly} is empty. */
    private final Pattern decryptOnlyMatcher;
    private final ConcurrentHashMap<String, Boolean> decryptOnFetch = new ConcurrentHashMap<>();

    private EncryptionPolicy(List<TopicRule> rules, List<String> decryptOnly, Unmatched unmatched) {
        this.rules = rules;
        this.decryptOnly = decryptOnly;
        this.decryptOnlyMatcher = decryptOnly.isEmpty() ? null : Pattern.compile(anyOf(decryptOnly), Pattern.DOTALL);
        this.patterns = rules.stream().map(TopicRule::pattern).toList();
        this.unmatched = unmatched;
        this.anyDeterministicKeys = rules.stream().anyMatch(TopicRule::deterministicKeys);
        this.anyDeny = rules.stream().anyMatch(r -> r.readers() != null && r.others() == TopicRule.Others.DENY);
        this.everyRule = rules.stream().map(r -> Pattern.compile(globToRegex(r.pattern()), Pattern.DOTALL))
                .toArray(Pattern[]::new);
        this.ruleMatchers = rules.stream().allMatch(TopicRule::plain) ? null : everyRule;
        this.matcher = Pattern.compile(anyOf(patterns), Pattern.DOTALL);
    }

    static String anyOf(List<String> globs) {
        StringBuilder regex = new StringBuilder();
        for (String glob : globs) {
            if (!regex.isEmpty()) {
                regex.append('|');
            }
            regex.append("(?:").append(globToRegex(glob)).append(')');
        }
        return regex.toString();
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
        return ofRules(rules, List.of(), unmatched);
    }

    /**
     * @param rules at least one; the first rule a topic matches decides its fields
     * @param decryptOnly globs of topics that are no longer encrypted but whose envelopes are still decrypted on fetch
     * @throws IllegalArgumentException when {@code rules} is empty or a decryptOnly glob is empty
     */
    public static EncryptionPolicy ofRules(List<TopicRule> rules, List<String> decryptOnly, Unmatched unmatched) {
        Objects.requireNonNull(unmatched, "unmatched");
        List<TopicRule> copy = List.copyOf(rules);
        if (copy.isEmpty()) {
            throw new IllegalArgumentException("at least one encrypt pattern is required");
        }
        List<String> globs = List.copyOf(decryptOnly);
        for (int i = 0; i < globs.size(); i++) {
            if (globs.get(i).isEmpty()) {
                throw new IllegalArgumentException("decryptOnly pattern " + i + " is empty");
            }
        }
        return new EncryptionPolicy(copy, globs, unmatched);
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
     * @return whether fetched batches of {@code topic} are decrypted: it is encrypted, or it matches a
     *     {@code decryptOnly} glob; when false its batches must pass untouched
     */
    public boolean decryptsOnFetch(String topic) {
        if (decide(topic) == TopicDecision.ENCRYPT) {
            return true;
        }
        if (decryptOnlyMatcher == null) {
            return false;
        }
        Boolean result = decryptOnFetch.get(topic);
        if (result == null) {
            result = decryptOnlyMatcher.matcher(topic).matches();
            if (decryptOnFetch.size() >= DECISION_CACHE_LIMIT) {
                decryptOnFetch.clear();
            }
            decryptOnFetch.put(topic, result);
        }
        return result;
    }

    /** @return the decryptOnly globs, in configuration order */
    public List<String> decryptOnly() {
        return decryptOnly;
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

    /**
     * @return whether the first rule {@code topic} matches asks for deterministic key encryption; false when the topic
     *     is not encrypted at all
     */
    public boolean deterministicKeys(String topic) {
        if (!anyDeterministicKeys) {
            return false;
        }
        Boolean result = deterministicKeys.get(topic);
        if (result == null) {
            result = Boolean.FALSE;
            for (int i = 0; i < ruleMatchers.length; i++) {
                if (ruleMatchers[i].matcher(topic).matches()) {
                    result = rules.get(i).deterministicKeys();
                    break;
                }
            }
            if (deterministicKeys.size() >= DECISION_CACHE_LIMIT) {
                deterministicKeys.clear();
            }
            deterministicKeys.put(topic, result);
        }
        return result;
    }

    /**
     * @return the first rule {@code topic} matches, or null when it matches none (uncached: callers that run per
     *     partition cache what they derive from it)
     */
    public TopicRule ruleOf(String topic) {
        for (int i = 0; i < everyRule.length; i++) {
            if (everyRule[i].matcher(topic).matches()) {
                return rules.get(i);
            }
        }
        return null;
    }

    /** @return whether some rule answers readers outside its list with TOPIC_AUTHORIZATION_FAILED */
    public boolean anyDeny() {
        return anyDeny;
    }

    /** @return whether any rule asks for deterministic key encryption (then a record-key keyset is needed) */
    public boolean anyDeterministicKeys() {
        return anyDeterministicKeys;
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

    /**
     * @return the regex of a glob ({@code *} any run, {@code ?} one character, everything else literal): for topic
     *     patterns and for the header names a rule encrypts
     */
    public static String regexOfGlob(String glob) {
        return globToRegex(glob);
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
        return o instanceof EncryptionPolicy other && rules.equals(other.rules) && decryptOnly.equals(other.decryptOnly)
                && unmatched == other.unmatched;
    }

    @Override
    public int hashCode() {
        return Objects.hash(rules, decryptOnly, unmatched);
    }

    @Override
    public String toString() {
        List<String> entries = rules.stream()
                .map(r -> (r.fields().isEmpty() ? r.pattern() : r.pattern() + " fields " + r.fields())
                        + (r.deterministicKeys() ? " keys deterministic" : "")
                        + (r.readers() == null ? "" : " readers " + r.readers() + " others "
                                + r.others().name().toLowerCase(Locale.ROOT))
                        + (r.writers() == null ? "" : " writers " + r.writers())
                        + (r.fieldReaders().isEmpty() ? "" : " field readers " + r.fieldReaders())
                        + (r.headers().isEmpty() ? "" : " headers " + r.headers())
                        + (r.subject() == null ? "" : " subject " + r.subject() + " forgotten " + r.forgotten())).toList();
        return "EncryptionPolicy{encrypt=" + entries + (decryptOnly.isEmpty() ? "" : ", decryptOnly=" + decryptOnly)
                + ", unmatched=" + unmatched.name().toLowerCase(Locale.ROOT) + "}";
    }
}
