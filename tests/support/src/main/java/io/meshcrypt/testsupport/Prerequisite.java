package io.meshcrypt.testsupport;

import org.junit.jupiter.api.Assumptions;

/** A tool a test needs that a developer's machine may lack, but CI always has. */
public final class Prerequisite {

    private Prerequisite() {
    }

    /**
     * Skips the test where the tool is simply not installed (saying why; {@link SkipReport} repeats it next to
     * surefire's summary); under CI ({@code CI=true}, whose .ci/run installs every tool) a missing tool fails instead.
     */
    public static void require(boolean available, String why) {
        if (available) {
            return;
        }
        if ("true".equals(System.getenv("CI"))) {
            throw new IllegalStateException(why + " (CI=true: .ci/run installs it)");
        }
        Assumptions.abort(why);
    }
}
