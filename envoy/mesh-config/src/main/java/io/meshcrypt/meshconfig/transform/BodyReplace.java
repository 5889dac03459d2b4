package io.meshcrypt.meshconfig.transform;

import java.util.Objects;
import java.util.regex.Pattern;

/** Whole-body match-and-replace: every match of {@code pattern} in the body text becomes {@code with}. */
public record BodyReplace(Pattern pattern, String with) {
    public BodyReplace {
        Objects.requireNonNull(pattern, "pattern");
        Replacements.validate(pattern, with);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof BodyReplace other && Patterns.equal(pattern, other.pattern) && with.equals(other.with);
    }

    @Override
    public int hashCode() {
        return 31 * Patterns.hash(pattern) + with.hashCode();
    }

    public String apply(String text) {
        return pattern.matcher(text).replaceAll(with);
    }
}
