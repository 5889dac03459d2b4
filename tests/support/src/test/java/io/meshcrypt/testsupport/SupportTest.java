package io.meshcrypt.testsupport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.engine.UniqueId;
import org.junit.platform.engine.support.descriptor.AbstractTestDescriptor;
import org.junit.platform.engine.support.descriptor.MethodSource;
import org.junit.platform.launcher.TestIdentifier;
import org.opentest4j.TestAbortedException;

class SupportTest {

    @TempDir
    Path dir;

    @Test
    void givenANestedDirectory_whenTheRootIsSought_thenItIsTheNearestOneHoldingMvnw() throws Exception {
        Files.writeString(dir.resolve("mvnw"), "");
        Path nested = Files.createDirectories(dir.resolve("tests/support/target"));

        assertEquals(dir.normalize(), RepoRoot.findFrom(nested));
    }

    @Test
    void givenTheTestsRunInTheRepository_whenTheRootIsSought_thenItHoldsThePom() {
        assertTrue(Files.isRegularFile(RepoRoot.find().resolve("pom.xml")), RepoRoot.find().toString());
    }

    @Test
    void givenABinaryThatIsNotExecutable_whenNamed_thenTheFailureSaysSo() {
        String before = System.getProperty(EnvoyProcess.BINARY_PROPERTY);
        System.setProperty(EnvoyProcess.BINARY_PROPERTY, dir.resolve("no-envoy").toString());
        try {
            IllegalStateException e = assertThrows(IllegalStateException.class, EnvoyProcess::binary);
            assertTrue(e.getMessage().contains("is not an executable Envoy"), e.getMessage());
            System.clearProperty(EnvoyProcess.BINARY_PROPERTY);
            e = assertThrows(IllegalStateException.class, EnvoyProcess::binary);
            assertTrue(e.getMessage().contains("./meshcrypt test"), e.getMessage());
        } finally {
            if (before == null) {
                System.clearProperty(EnvoyProcess.BINARY_PROPERTY);
            } else {
                System.setProperty(EnvoyProcess.BINARY_PROPERTY, before);
            }
        }
    }

    @Test
    void givenASkippedAndAnAbortedTest_whenTheRunEnds_thenBothAreListedWithTheirReasonsOnStderr() {
        SkipReport report = new SkipReport();
        PrintStream stderr = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            report.executionSkipped(test("disabledOne"), "disabled on purpose");
            report.executionFinished(test("abortedOne"), TestExecutionResult.aborted(new TestAbortedException("kcat is not installed")));
            report.executionFinished(test("passedOne"), TestExecutionResult.successful());
            report.testPlanExecutionFinished(null);
        } finally {
            System.setErr(stderr);
        }

        String out = captured.toString(StandardCharsets.UTF_8);
        assertTrue(out.contains("==== 2 test(s) did NOT run ===="), out);
        assertTrue(out.contains("SKIPPED SupportTest.disabledOne: disabled on purpose"), out);
        assertTrue(out.contains("SKIPPED SupportTest.abortedOne: kcat is not installed"), out);
        assertTrue(!out.contains("passedOne"), out);
    }

    private static TestIdentifier test(String method) {
        return TestIdentifier.from(new AbstractTestDescriptor(UniqueId.forEngine("support").append("method", method), method,
                MethodSource.from(SupportTest.class.getName(), method)) {
            @Override
            public Type getType() {
                return Type.TEST;
            }
        });
    }
}
