package io.meshcrypt.filter.audit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.JsonGenerator;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.InstantSource;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The writer: never blocks its callers, counts and reports what it dropped; the file it rotates by size. */
@Timeout(30)
class AuditLogTest {
    private static final InstantSource CLOCK = () -> Instant.parse("2026-12-01T10:00:00Z");

    @TempDir
    Path dir;

    private record Line(long timeMillis, int n) implements AuditEvent {
        @Override
        public String event() {
            return "test";
        }

        @Override
        public void writeFields(JsonGenerator json) throws IOException {
            json.writeNumberField("n", n);
        }
    }

    /** A disk that hangs on its first write until released. */
    private static final class StuckSink implements AuditLog.Sink {
        final CountDownLatch writing = new CountDownLatch(1);
        final CountDownLatch release = new CountDownLatch(1);
        final List<String> lines = new CopyOnWriteArrayList<>();

        @Override
        public void write(byte[] line) throws IOException {
            writing.countDown();
            try {
                release.await();
            } catch (InterruptedException e) {
                throw new IOException(e);
            }
            lines.add(new String(line, StandardCharsets.UTF_8));
        }

        @Override
        public void flush() {
        }

        @Override
        public void close() {
        }
    }

    @Test
    void givenWriterStuck_whenQueueFull_thenSubmitReturnsAtOnceAndDropsAreReportedInALaterLine() throws Exception {
        StuckSink sink = new StuckSink();
        AuditLog log = new AuditLog(sink, CLOCK, 3);
        assertTrue(log.submit(new Line(0, 0)));
        assertTrue(sink.writing.await(10, TimeUnit.SECONDS));

        long start = System.nanoTime();
        int accepted = 0;
        for (int i = 1; i <= 10; i++) {
            accepted += log.submit(new Line(0, i)) ? 1 : 0;
        }
        long tookMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        sink.release.countDown();
        log.close();

        assertEquals(3, accepted);
        assertTrue(tookMillis < 1000, "submit must not wait for the disk, took " + tookMillis + " ms");
        assertEquals(List.of(
                "{\"time\":\"1970-01-01T00:00:00.000Z\",\"event\":\"test\",\"n\":0}\n",
                "{\"time\":\"1970-01-01T00:00:00.000Z\",\"event\":\"test\",\"n\":1}\n",
                "{\"time\":\"1970-01-01T00:00:00.000Z\",\"event\":\"test\",\"n\":2}\n",
                "{\"time\":\"1970-01-01T00:00:00.000Z\",\"event\":\"test\",\"n\":3}\n",
                "{\"time\":\"2026-12-01T10:00:00.000Z\",\"event\":\"audit.dropped\",\"dropped\":7,"
                        + "\"first\":\"2026-12-01T10:00:00.000Z\"}\n"), sink.lines);
    }

    @Test
    void givenClosedLog_whenSubmitted_thenRefused() {
        AuditLog log = new AuditLog(new StuckSink(), CLOCK, 3);
        log.close();

        assertFalse(log.submit(new Line(0, 1)));
    }

    @Test
    void givenSmallFileLimit_whenLinesPassIt_thenRotatedAndOnlyMaxFilesKept() throws Exception {
        Path file = dir.resolve("audit.jsonl");
        byte[] line = "0123456789abcdef012345678\n".getBytes(StandardCharsets.US_ASCII); // 26 bytes
        RotatingFile rotating = new RotatingFile(file, 60, 3);
        for (int i = 0; i < 10; i++) {
            rotating.write(line);
        }
        rotating.close();

        // 2 lines per file: 10 lines fill 5 files, of which the newest 3 are kept
        assertEquals(52, Files.size(file));
        assertEquals(52, Files.size(dir.resolve("audit.jsonl.1")));
        assertEquals(52, Files.size(dir.resolve("audit.jsonl.2")));
        assertFalse(Files.exists(dir.resolve("audit.jsonl.3")));
    }

    @Test
    void givenExistingFile_whenReopened_thenAppendsAndCountsItsSize() throws Exception {
        Path file = dir.resolve("audit.jsonl");
        Files.writeString(file, "x".repeat(50) + "\n");
        RotatingFile rotating = new RotatingFile(file, 60, 2);
        rotating.write("y".repeat(20).getBytes(StandardCharsets.US_ASCII));
        rotating.close();

        assertEquals(20, Files.size(file));
        assertEquals(51, Files.size(dir.resolve("audit.jsonl.1")));
    }
}
