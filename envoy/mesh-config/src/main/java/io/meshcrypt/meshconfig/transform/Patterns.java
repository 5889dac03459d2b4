package io.meshcrypt.meshconfig.transform;

import java.util.Objects;
import java.util.regex.Pattern;

/**
 * Value equality for compiled patterns, which {@link Pattern} lacks: rules holding patterns compare equal when they
 * were compiled from the same source with the same flags, so a reloaded config that did not change is recognised.
 */
public final class Patterns {

    private Patterns() {
    }

    public static boolean equal(Pattern a, Pattern b) {
        if (a == null || b == null) {
            return a == b;
        }
        return a.pattern().equals(b.pattern()) && a.flags() == b.flags();
    }

    public static int hash(Pattern p) {
        return p == null ? 0 : Objects.hash(p.pattern(), p.flags());
    }
}
