package io.meshcrypt.testsupport;

import java.util.ArrayList;
import java.util.List;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.engine.support.descriptor.MethodSource;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.TestPlan;

/**
 * No test skips silently: every test (or class) that is disabled or aborted by an assumption is named on stderr with
 * its reason when it happens, and all of them again in a list at the end of the run, next to surefire's summary, which
 * counts skips but does not say why. Registered through META-INF/services for every suite that uses this module.
 */
public final class SkipReport implements TestExecutionListener {

    private final List<String> skipped = new ArrayList<>();

    @Override
    public void executionSkipped(TestIdentifier test, String reason) {
        note(test, reason);
    }

    @Override
    public void executionFinished(TestIdentifier test, TestExecutionResult result) {
        if (result.getStatus() == TestExecutionResult.Status.ABORTED) {
            note(test, result.getThrowable().map(Throwable::getMessage).orElse("aborted"));
        }
    }

    @Override
    public void testPlanExecutionFinished(TestPlan plan) {
        if (skipped.isEmpty()) {
            return;
        }
        StringBuilder report = new StringBuilder("\n==== " + skipped.size() + " test(s) did NOT run ====\n");
        skipped.forEach(line -> report.append("  ").append(line).append('\n'));
        System.err.print(report);
        System.err.flush();
    }

    private synchronized void note(TestIdentifier test, String reason) {
        String line = "SKIPPED " + name(test) + ": " + reason;
        skipped.add(line);
        System.err.println("[meshcrypt] " + line);
    }

    private static String name(TestIdentifier test) {
        return test.getSource()
                .filter(MethodSource.class::isInstance)
                .map(MethodSource.class::cast)
                .map(m -> m.getClassName().substring(m.getClassName().lastIndexOf('.') + 1) + "." + m.getMethodName())
                .orElse(test.getDisplayName());
    }
}
