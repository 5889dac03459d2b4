package io.meshcrypt.filter.audit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.audit.AccessAudit.Direction;
import io.meshcrypt.filter.audit.AccessAudit.Outcome;
import io.meshcrypt.filter.config.AuditConfig;
import io.meshcrypt.filter.kms.DekContext;
import io.meshcrypt.filter.kms.KeyAudit.Operation;
import io.meshcrypt.filter.kms.KekRefusedException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The lines of the audit trail, exactly, with a fixed clock; where they go; what bounds them. */
@Timeout(30)
class JsonAuditTrailTest {
    private static final long T0 = Instant.parse("2026-12-01T10:00:00Z").toEpochMilli();

    @TempDir
    Path dir;

    private final AtomicLong now = new AtomicLong(T0);
    private final InstantSource clock = () -> Instant.ofEpochMilli(now.get());

    private JsonAuditTrail trail(Duration summary) throws IOException {
        return JsonAuditTrail.open(new AuditConfig(dir.resolve("logs/audit.jsonl"), AuditConfig.DEFAULT_MAX_FILE_BYTES,
                AuditConfig.DEFAULT_MAX_FILES, summary), clock, System.out);
    }

    private List<String> lines() throws IOException {
        return Files.readAllLines(dir.resolve("logs/audit.jsonl"));
    }

    @Test
    void givenConnectionFetchingAndProducing_whenClosed_thenOneLinePerTopicDirectionAndOutcome() throws Exception {
        try (JsonAuditTrail trail = trail(Duration.ofSeconds(60))) {
            AccessAudit connection = trail.connection("spiffe://meshcrypt.local/sidecar/billing");
            connection.access("payments", Direction.FETCH, Outcome.ALLOWED, 10, 1200);
            now.addAndGet(1500);
            connection.access("payments", Direction.FETCH, Outcome.ALLOWED, 5, 600);
            connection.access("payments", Direction.PRODUCE, Outcome.DENIED, 0, 0);
            now.addAndGet(500);
            connection.close();
        }

        assertEquals(List.of(
                "{\"time\":\"2026-12-01T10:00:02.000Z\",\"event\":\"access\",\"connection\":1,"
                        + "\"identity\":\"spiffe://meshcrypt.local/sidecar/billing\",\"topic\":\"payments\",\"direction\":\"produce\","
                        + "\"outcome\":\"denied\",\"records\":0,\"bytes\":0,\"accesses\":1,\"first\":\"2026-12-01T10:00:01.500Z\","
                        + "\"last\":\"2026-12-01T10:00:01.500Z\",\"closed\":true}",
                "{\"time\":\"2026-12-01T10:00:02.000Z\",\"event\":\"access\",\"connection\":1,"
                        + "\"identity\":\"spiffe://meshcrypt.local/sidecar/billing\",\"topic\":\"payments\",\"direction\":\"fetch\","
                        + "\"outcome\":\"allowed\",\"records\":15,\"bytes\":1800,\"accesses\":2,\"first\":\"2026-12-01T10:00:00.000Z\","
                        + "\"last\":\"2026-12-01T10:00:01.500Z\",\"closed\":true}"),
                lines());
    }

    @Test
    void givenLongLivedConnection_whenSummaryIntervalPassed_thenInterimLineAtNextAccessAndRestAtClose() throws Exception {
        try (JsonAuditTrail trail = trail(Duration.ofSeconds(60))) {
            AccessAudit connection = trail.connection(null);
            connection.access("orders", Direction.FETCH, Outcome.CIPHERTEXT, 3, 300);
            now.addAndGet(60_000);
            connection.access("orders", Direction.FETCH, Outcome.CIPHERTEXT, 4, 400);
            now.addAndGet(1_000);
            connection.close();
            connection.close(); // the data path may report a close twice: written once
        }

        assertEquals(List.of(
                "{\"time\":\"2026-12-01T10:01:00.000Z\",\"event\":\"access\",\"connection\":1,\"identity\":null,"
                        + "\"topic\":\"orders\",\"direction\":\"fetch\",\"outcome\":\"ciphertext\",\"records\":3,\"bytes\":300,\"accesses\":1,"
                        + "\"first\":\"2026-12-01T10:00:00.000Z\",\"last\":\"2026-12-01T10:00:00.000Z\",\"closed\":false}",
                "{\"time\":\"2026-12-01T10:01:01.000Z\",\"event\":\"access\",\"connection\":1,\"identity\":null,"
                        + "\"topic\":\"orders\",\"direction\":\"fetch\",\"outcome\":\"ciphertext\",\"records\":4,\"bytes\":400,\"accesses\":1,"
                        + "\"first\":\"2026-12-01T10:01:00.000Z\",\"last\":\"2026-12-01T10:01:00.000Z\",\"closed\":true}"),
                lines());
    }

    @Test
    void givenConnectionOnManyTopics_whenMoreThanItsMapHolds_thenPendingLinesWrittenAndNothingLost() throws Exception {
        int topics = ConnectionAudit.MAX_TOPICS + 10;
        try (JsonAuditTrail trail = trail(Duration.ofSeconds(60))) {
            AccessAudit connection = trail.connection("id");
            for (int i = 0; i < topics; i++) {
                connection.access("t" + i, Direction.PRODUCE, Outcome.ALLOWED, 1, 100);
            }
            connection.close();
        }

        List<String> lines = lines();
        assertEquals(topics, lines.size());
        assertEquals(ConnectionAudit.MAX_TOPICS, lines.stream().filter(l -> l.contains("\"closed\":false")).count());
    }

    @Test
    void givenTopicSeenBefore_whenAccessedAgainAndAgain_thenNothingIsAllocated() throws Exception {
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        try (JsonAuditTrail trail = JsonAuditTrail.open(AuditConfig.to(dir.resolve("audit.jsonl")))) {
            AccessAudit connection = trail.connection("id");
            for (int i = 0; i < 200_000; i++) { // warm up: compiled, and the topics' entries exist
                connection.access(i % 2 == 0 ? "a" : "b", Direction.FETCH, Outcome.ALLOWED, 1, 100);
            }
            long before = threads.getCurrentThreadAllocatedBytes();
            for (int i = 0; i < 100_000; i++) {
                connection.access(i % 2 == 0 ? "a" : "b", Direction.FETCH, Outcome.ALLOWED, 1, 100);
            }
            long allocated = threads.getCurrentThreadAllocatedBytes() - before;
            connection.close();

            assertTrue(allocated < 10_000, allocated + " bytes allocated by 100000 accesses");
        }
    }

    @Test
    void givenKeyOperation_whenReported_thenLineNamesKeysByIdAndFingerprint() throws Exception {
        try (JsonAuditTrail trail = trail(Duration.ofSeconds(60))) {
            trail.keys().succeeded(Operation.DEK_CREATED, "local", "local:1", new DekContext("payments", 0x0102030405060708L),
                    new byte[] {1, 2, 3});
            trail.keys().succeeded(Operation.KEK_ROTATED, "local", "local:2", null, null);
        }

        assertEquals(List.of(
                "{\"time\":\"2026-12-01T10:00:00.000Z\",\"event\":\"dek.created\",\"outcome\":\"ok\",\"provider\":\"local\","
                        + "\"kekId\":\"local:1\",\"topic\":\"payments\",\"dekId\":\"0102030405060708\",\"wrappedDek\":\"039058c6f2c0cb49\"}",
                "{\"time\":\"2026-12-01T10:00:00.000Z\",\"event\":\"kek.rotated\",\"outcome\":\"ok\",\"provider\":\"local\","
                        + "\"kekId\":\"local:2\"}"),
                lines());
    }

    @Test
    void givenFloodOfFailedUnwraps_whenIntervalEnds_thenTenLinesThenOneSummaryWithTheRestCounted() throws Exception {
        try (JsonAuditTrail trail = trail(Duration.ofSeconds(60))) {
            for (int i = 0; i < 1000; i++) {
                trail.keys().failed(Operation.DEK_UNWRAPPED, "local", "forged\n{\"event\":\"x\"}", new DekContext("t", i),
                        new byte[] {(byte) i}, new KekRefusedException("no"));
            }
            now.addAndGet(60_000);
            trail.keys().failed(Operation.DEK_UNWRAPPED, "local", "local:1", new DekContext("t", 1), new byte[] {1, 2, 3},
                    new KekRefusedException("no"));
        }

        List<String> lines = lines();
        assertEquals(KeyOperationAudit.FAILURE_LINES_PER_INTERVAL + 2, lines.size(), String.join("\n", lines));
        assertEquals("{\"time\":\"2026-12-01T10:00:00.000Z\",\"event\":\"dek.unwrapped\",\"outcome\":\"failed\","
                + "\"error\":\"KekRefusedException\",\"provider\":\"local\",\"kekId\":\"forged\\\\x0a{\\\"event\\\":\\\"x\\\"}\","
                + "\"topic\":\"t\",\"dekId\":\"0000000000000000\",\"wrappedDek\":\"6e340b9cffb37a98\"}", lines.get(0));
        assertEquals("{\"time\":\"2026-12-01T10:01:00.000Z\",\"event\":\"dek.unwrapped\",\"outcome\":\"failed\","
                + "\"error\":\"KekRefusedException\",\"suppressed\":990,\"first\":\"2026-12-01T10:00:00.000Z\","
                + "\"last\":\"2026-12-01T10:00:00.000Z\"}", lines.get(KeyOperationAudit.FAILURE_LINES_PER_INTERVAL));
        assertTrue(lines.getLast().contains("\"wrappedDek\":\"039058c6f2c0cb49\""), lines.getLast());
    }

    @Test
    void givenFile_whenOpened_thenCreatedOwnerOnlyWithItsFolder() throws Exception {
        Path file = dir.resolve("logs/audit.jsonl");
        try (JsonAuditTrail trail = trail(Duration.ofSeconds(60))) {
            trail.keys().succeeded(Operation.KEK_CURRENT, "local", "local:1", null, null);
        }

        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
    }

    @Test
    void givenStdout_whenLinesReported_thenWrittenThere() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (JsonAuditTrail trail = JsonAuditTrail.open(AuditConfig.to(null), clock, new PrintStream(out, false, StandardCharsets.UTF_8))) {
            trail.keys().succeeded(Operation.KEK_CURRENT, "local", "local:1", null, null);
        }

        assertEquals("{\"time\":\"2026-12-01T10:00:00.000Z\",\"event\":\"kek.current\",\"outcome\":\"ok\",\"provider\":\"local\","
                + "\"kekId\":\"local:1\"}\n", out.toString(StandardCharsets.UTF_8));
        assertFalse(Files.exists(dir.resolve("logs")));
    }
}
