package io.meshcrypt.meshconfig.policy;

import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;

/**
 * The workload identities a policy entry lists as its readers or writers: exact ids (a SPIFFE id such as
 * {@code spiffe://cluster.local/ns/apps/sa/billing}) or globs of them ({@code spiffe://cluster.local/ns/apps/*}; same
 * syntax as topic globs). A stream without an authenticated identity is never listed. Immutable and thread-safe.
 */
public final class Identities {
    /** Results of glob matches, per identity; identities come from certificates, so few, but bounded anyway. */
    private static final int CACHE_LIMIT = 1_000;

    private final List<String> patterns;
    private final Set<String> exact;
    /** Null when every pattern is exact. */
    private final Pattern globs;
    private final ConcurrentHashMap<String, Boolean> matched = new ConcurrentHashMap<>();

    private Identities(List<String> patterns) {
        this.patterns = patterns;
        this.exact = Set.copyOf(patterns.stream().filter(p -> !isGlob(p)).toList());
        List<String> globList = patterns.stream().filter(Identities::isGlob).toList();
        this.globs = globList.isEmpty() ? null : Pattern.compile(EncryptionPolicy.anyOf(globList), Pattern.DOTALL);
    }

    /**
     * @param patterns at least one, none empty
     * @throws IllegalArgumentException when the list or one of its patterns is empty
     */
    public static Identities of(List<String> patterns) {
        List<String> copy = List.copyOf(patterns);
        if (copy.isEmpty()) {
            throw new IllegalArgumentException("at least one identity is required");
        }
        for (int i = 0; i < copy.size(); i++) {
            if (copy.get(i).isEmpty()) {
                throw new IllegalArgumentException("identity " + i + " is empty");
            }
        }
        return new Identities(copy);
    }

    private static boolean isGlob(String pattern) {
        return pattern.indexOf('*') >= 0 || pattern.indexOf('?') >= 0;
    }

    /** @param identity the stream's authenticated identity, or null when it has none (then: false) */
    public boolean contains(String identity) {
        if (identity == null) {
            return false;
        }
        if (exact.contains(identity)) {
            return true;
        }
        if (globs == null) {
            return false;
        }
        Boolean result = matched.get(identity);
        if (result == null) {
            result = globs.matcher(identity).matches();
            if (matched.size() >= CACHE_LIMIT) {
                matched.clear();
            }
            matched.put(identity, result);
        }
        return result;
    }

    /** @return the patterns, in configuration order */
    public List<String> patterns() {
        return patterns;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Identities other && patterns.equals(other.patterns);
    }

    @Override
    public int hashCode() {
        return Objects.hash(patterns);
    }

    @Override
    public String toString() {
        return patterns.toString();
    }
}
