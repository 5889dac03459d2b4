package io.meshcrypt.filter.policy;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * The record header names a policy entry encrypts ({@code headers:}), matched against header keys as they lie in a
 * record batch: exact names or globs in the topic patterns' syntax ({@code *} any run, {@code ?} one character,
 * everything else literal, case-sensitive). Matching reads the UTF-8 bytes in place, without decoding or allocating:
 * it runs for every header of every record of a topic that lists any. Immutable and thread-safe.
 */
public final class HeaderNames {
    public static final HeaderNames NONE = new HeaderNames(List.of());

    private static final int ANY_RUN = -1;
    private static final int ONE_CHARACTER = -2;

    private final List<String> patterns;
    /** Per pattern: its UTF-8 bytes (0-255), with {@link #ANY_RUN} and {@link #ONE_CHARACTER} for the wildcards. */
    private final int[][] compiled;

    private HeaderNames(List<String> patterns) {
        this.patterns = List.copyOf(patterns);
        this.compiled = new int[this.patterns.size()][];
        for (int i = 0; i < compiled.length; i++) {
            // '*' and '?' are ASCII, and no byte of a multi-byte UTF-8 sequence is ASCII: the bytes tokenize as they are.
            byte[] bytes = this.patterns.get(i).getBytes(StandardCharsets.UTF_8);
            int[] tokens = new int[bytes.length];
            for (int j = 0; j < bytes.length; j++) {
                tokens[j] = bytes[j] == '*' ? ANY_RUN : bytes[j] == '?' ? ONE_CHARACTER : Byte.toUnsignedInt(bytes[j]);
            }
            compiled[i] = tokens;
        }
    }

    /** @param patterns header names or globs; empty: {@link #NONE} */
    public static HeaderNames of(List<String> patterns) {
        return patterns.isEmpty() ? NONE : new HeaderNames(patterns);
    }

    public boolean isEmpty() {
        return compiled.length == 0;
    }

    public List<String> patterns() {
        return patterns;
    }

    /** @param name a header key's bytes (position..limit, not moved) */
    public boolean matches(ByteBuffer name) {
        for (int[] pattern : compiled) {
            if (matches(pattern, name, name.position(), name.limit())) {
                return true;
            }
        }
        return false;
    }

    /** Greedy glob match with backtracking to the last {@code *}: linear in practice, O(name × pattern) at worst. */
    private static boolean matches(int[] pattern, ByteBuffer name, int from, int to) {
        int p = 0;
        int n = from;
        int starP = -1;
        int starN = -1;
        while (n < to) {
            if (p < pattern.length && pattern[p] == ONE_CHARACTER) {
                p++;
                n = nextCharacter(name, n, to);
            } else if (p < pattern.length && pattern[p] == ANY_RUN) {
                starP = p++;
                starN = n;
            } else if (p < pattern.length && pattern[p] == Byte.toUnsignedInt(name.get(n))) {
                p++;
                n++;
            } else if (starP >= 0) {
                // The last * takes one more character; retry the rest of the pattern from there.
                p = starP + 1;
                starN = nextCharacter(name, starN, to);
                n = starN;
            } else {
                return false;
            }
        }
        while (p < pattern.length && pattern[p] == ANY_RUN) {
            p++;
        }
        return p == pattern.length;
    }

    /** The start of the character after the one at {@code n}: UTF-8 continuation bytes (10xxxxxx) belong to it. */
    private static int nextCharacter(ByteBuffer name, int n, int to) {
        n++;
        while (n < to && (name.get(n) & 0xC0) == 0x80) {
            n++;
        }
        return n;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof HeaderNames other && patterns.equals(other.patterns);
    }

    @Override
    public int hashCode() {
        return patterns.hashCode();
    }

    @Override
    public String toString() {
        return patterns.toString();
    }
}
