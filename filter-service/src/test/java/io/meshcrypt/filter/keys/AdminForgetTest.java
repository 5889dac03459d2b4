package io.meshcrypt.filter.keys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.Main;
import io.meshcrypt.filter.admin.AdminAccess;
import io.meshcrypt.filter.admin.SubjectAdminService;
import io.meshcrypt.filter.audit.AdminAudit;
import io.meshcrypt.filter.transport.ConnectionHandlerFactory;
import io.meshcrypt.filter.transport.ExtProcServer;
import io.meshcrypt.filter.transport.StreamIdentity;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** {@code subjects forget --server}: the command line against a plaintext loopback admin API. */
class AdminForgetTest {
    private static final String REF = "00112233445566778899aabbccddeeff";

    private final ByteArrayOutputStream output = new ByteArrayOutputStream();
    private final ByteArrayOutputStream errors = new ByteArrayOutputStream();
    private final List<String> forgotten = new ArrayList<>();
    private ExtProcServer server;
    private SubjectAdminService service;

    private int start(boolean plaintextLoopback) throws Exception {
        service = new SubjectAdminService((scope, subject) -> {
            forgotten.add(scope + " " + subject);
            return REF;
        }, new AdminAccess(Set.of(), plaintextLoopback, false), AdminAudit.NONE);
        ConnectionHandlerFactory none = headers -> {
            throw new IllegalStateException("no ext_proc streams in this test");
        };
        server = ExtProcServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), none,
                ExtProcServer.Limits.of(1 << 20, Duration.ofSeconds(5)).withWorkerThreads(1)
                        .withShutdownGrace(Duration.ofSeconds(1)), List.of(workers -> service), null, StreamIdentity.NONE);
        return server.port();
    }

    @AfterEach
    void stop() {
        if (server != null) {
            server.close();
            service.close();
        }
    }

    private int run(String... args) {
        return Main.commandLine(new PrintStream(output, true, StandardCharsets.UTF_8),
                new PrintStream(errors, true, StandardCharsets.UTF_8)).execute(args);
    }

    @Test
    void givenALoopbackAdminApi_whenForgetGoesThroughIt_thenEachSubjectIsForgottenAndItsRefPrinted() throws Exception {
        int port = start(true);

        int exit = run("subjects", "forget", "--server", "127.0.0.1:" + port, "--topic-pattern", "orders*",
                "--subject", "a", "--subject", "b");

        assertEquals(0, exit, errors.toString(StandardCharsets.UTF_8));
        assertEquals(List.of("orders* a", "orders* b"), forgotten);
        assertTrue(output.toString(StandardCharsets.UTF_8).contains("subject ref " + REF), output.toString(StandardCharsets.UTF_8));
    }

    @Test
    void givenAPlaintextAdminApiNotOpenedToLoopback_whenForgetGoesThroughIt_thenItFailsSayingPermissionDenied()
            throws Exception {
        int port = start(false);

        int exit = run("subjects", "forget", "--server", "127.0.0.1:" + port, "--topic-pattern", "orders*", "--subject", "a");

        assertEquals(1, exit);
        assertEquals(List.of(), forgotten);
        assertTrue(output.toString(StandardCharsets.UTF_8).contains("PERMISSION_DENIED"), output.toString(StandardCharsets.UTF_8));
    }

    @Test
    void givenNeitherOrBothOfServerAndConfig_whenRun_thenAUsageError() {
        assertEquals(2, run("subjects", "forget", "--topic-pattern", "p", "--subject", "s"));
        assertEquals(2, run("subjects", "forget", "--server", "127.0.0.1:1", "--config", "filter.yaml",
                "--topic-pattern", "p", "--subject", "s"));
        assertTrue(errors.toString(StandardCharsets.UTF_8).contains("exactly one of --server"),
                errors.toString(StandardCharsets.UTF_8));
    }
}
