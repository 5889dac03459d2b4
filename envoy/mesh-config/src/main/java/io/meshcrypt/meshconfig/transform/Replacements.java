package io.meshcrypt.meshconfig.transform;

import java.util.Objects;
import java.util.regex.Pattern;

/** Checks regex replacement strings up front, so a bad group reference fails on config load, not per request. */
public final class Replacements {
    private Replacements() {
    }

    /**
     * @throws IllegalArgumentException when {@code with} refers to a group {@code pattern} lacks, or ends in a lone
     *     {@code $} or {@code \}
     */
    public static void validate(Pattern pattern, String with) {
        Objects.requireNonNull(pattern, "pattern");
        Objects.requireNonNull(with, "with");
        // The empty alternative matches at once, so replaceAll evaluates every reference in `with`; the group is
        // non-capturing, so group numbers and names are the pattern's own.
        try {
            Pattern.compile("(?:" + pattern.pattern() + ")|", pattern.flags()).matcher("").replaceAll(with);
        } catch (IndexOutOfBoundsException e) {
            throw new IllegalArgumentException("replacement refers to a group the pattern does not have: " + e.getMessage(), e);
        }
    }
}
