package io.meshcrypt.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code ./meshcrypt audit}: who accessed which topic, from the trail and its rotated files. */
class AuditReportTest {
    private static final String BILLING = "spiffe://meshcrypt.local/sidecar/billing";
    private static final String SHOP = "spiffe://meshcrypt.local/sidecar/shop";

    @TempDir
    Path home;

    private static String access(String identity, String topic, String direction, String outcome, long records,
                                 String first, String last) {
        return "{\"time\":\"" + last + "\",\"event\":\"access\",\"connection\":1,\"identity\":"
                + (identity == null ? "null" : "\"" + identity + "\"") + ",\"topic\":\"" + topic + "\",\"direction\":\""
                + direction + "\",\"outcome\":\"" + outcome + "\",\"records\":" + records + ",\"accesses\":1,\"first\":\""
                + first + "\",\"last\":\"" + last + "\",\"closed\":true}\n";
    }

    /** Two rotations of history: the oldest lines in audit.jsonl.2. */
    private Path trail() throws Exception {
        Path logs = Files.createDirectories(home.resolve("logs"));
        Path trail = logs.resolve("audit.jsonl");
        Files.writeString(logs.resolve("audit.jsonl.2"),
                access(BILLING, "payments", "fetch", "allowed", 10, "2026-12-01T08:00:00.000Z", "2026-12-01T08:05:00.000Z")
                        + "{\"time\":\"2026-12-01T08:00:00.000Z\",\"event\":\"dek.created\",\"outcome\":\"ok\",\"provider\":\"local\"}\n");
        Files.writeString(logs.resolve("audit.jsonl.1"),
                access(SHOP, "payments", "fetch", "ciphertext", 7, "2026-12-01T09:00:00.000Z", "2026-12-01T09:01:00.000Z")
                        + "not json\n");
        Files.writeString(trail,
                access(BILLING, "payments", "fetch", "allowed", 5, "2026-12-01T09:30:00.000Z", "2026-12-01T09:40:00.000Z")
                        + access(null, "orders", "produce", "denied", 0, "2026-12-01T09:50:00.000Z", "2026-12-01T09:50:00.000Z")
                        + access(SHOP, "payments.eu", "produce", "allowed", 3, "2026-12-01T09:55:00.000Z", "2026-12-01T09:55:00.000Z"));
        return trail;
    }

    private List<AuditReport.Row> rows(AuditReport.Query query) throws Exception {
        return AuditReport.read(AuditReport.files(trail()), query).rows();
    }

    @Test
    void givenRotatedTrail_whenAskedWhoReadATopic_thenOneRowPerIdentityAndOutcomeSummedOverAllFiles() throws Exception {
        assertEquals(List.of(
                new AuditReport.Row(BILLING, "payments", "fetch", "allowed", 15, Instant.parse("2026-12-01T08:00:00Z"),
                        Instant.parse("2026-12-01T09:40:00Z")),
                new AuditReport.Row(SHOP, "payments", "fetch", "ciphertext", 7, Instant.parse("2026-12-01T09:00:00Z"),
                        Instant.parse("2026-12-01T09:01:00Z"))),
                rows(new AuditReport.Query("payments", null, null, "fetch")));
    }

    @Test
    void givenSince_whenAsked_thenOnlyLinesWhoseLastAccessIsLater() throws Exception {
        List<AuditReport.Row> rows = rows(new AuditReport.Query("payments*", null, Instant.parse("2026-12-01T09:30:00Z"), null));

        assertEquals(List.of("payments " + BILLING + " 5", "payments.eu " + SHOP + " 3"),
                rows.stream().map(r -> r.topic() + " " + r.identity() + " " + r.records()).toList());
    }

    @Test
    void givenIdentityNone_whenAsked_thenConnectionsWithoutIdentity() throws Exception {
        List<AuditReport.Row> rows = rows(new AuditReport.Query(null, AuditReport.NO_IDENTITY, null, null));

        assertEquals(List.of("orders produce denied"), rows.stream().map(r -> r.topic() + " " + r.direction() + " " + r.outcome()).toList());
    }

    @Test
    void givenUnreadableLine_whenRead_thenCountedAndOthersKept() throws Exception {
        assertEquals(1, AuditReport.read(AuditReport.files(trail()), new AuditReport.Query(null, null, null, null)).unreadable());
    }

    @Test
    void givenRows_whenPrinted_thenATableWithAHeader() throws Exception {
        StringWriter out = new StringWriter();
        AuditReport.print(AuditReport.read(AuditReport.files(trail()), new AuditReport.Query("orders", null, null, null)),
                new PrintWriter(out));

        assertEquals(List.of("TOPIC IDENTITY DIRECTION OUTCOME RECORDS FIRST LAST",
                "orders (none) produce denied 0 2026-12-01T09:50:00Z 2026-12-01T09:50:00Z"),
                out.toString().lines().map(l -> l.trim().replaceAll(" +", " ")).toList());
    }

    @Test
    void givenSinceText_whenParsed_thenDurationOrAClearError() {
        assertEquals(Duration.ofHours(1), AuditReport.since("1h"));
        assertEquals(Duration.ofSeconds(90), AuditReport.since("90s"));
        assertEquals(Duration.ofDays(2), AuditReport.since("2d"));
        assertEquals("--since 1 hour: expected a number and s, m, h or d, e.g. 1h",
                assertThrows(IllegalArgumentException.class, () -> AuditReport.since("1 hour")).getMessage());
    }

    @Test
    void givenCommandLine_whenRun_thenExitCodes() throws Exception {
        trail();
        Map<String, String> env = Map.of("MESHCRYPT_HOME", home.toString());

        assertEquals(0, Main.execute(Path.of("."), env, "audit", "--topic", "payments", "--since", "1h", "--direction", "fetch"));
        assertEquals(1, Main.execute(Path.of("."), env, "audit", "--direction", "consume"));
        assertEquals(1, Main.execute(Path.of("."), env, "audit", "--file", home.resolve("none.jsonl").toString()));
    }
}
