package io.meshcrypt.filter.audit;

import io.meshcrypt.filter.config.AuditConfig;
import io.meshcrypt.filter.kms.KeyAudit;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.time.InstantSource;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The audit trail an {@code audit:} section asks for: JSON lines, one per key operation ({@link #keys}) and one per
 * connection, topic, direction and outcome ({@link #connection}), written by one {@link AuditLog} to a size-rotated
 * file or to standard output. See docs/operations.md for the fields.
 */
public final class JsonAuditTrail implements AuditTrail, AutoCloseable {

    private final AuditLog log;
    private final long summaryMillis;
    private final KeyOperationAudit keys;
    private final AdminAudit admin;
    private final AtomicLong connections = new AtomicLong();

    JsonAuditTrail(AuditLog log, long summaryMillis) {
        this.log = log;
        this.summaryMillis = summaryMillis;
        this.keys = new KeyOperationAudit(log, summaryMillis);
        this.admin = AdminAudit.of(log);
    }

    /** Opens the file (created owner-only, with its folder) or standard output, and starts the writer. */
    public static JsonAuditTrail open(AuditConfig config) throws IOException {
        return open(config, InstantSource.system(), System.out);
    }

    static JsonAuditTrail open(AuditConfig config, InstantSource clock, PrintStream stdout) throws IOException {
        AuditLog.Sink sink = config.stdout() ? new StreamSink(stdout)
                : new RotatingFile(config.file(), config.maxFileBytes(), config.maxFiles());
        return new JsonAuditTrail(new AuditLog(sink, clock, AuditLog.DEFAULT_CAPACITY), config.summaryInterval().toMillis());
    }

    @Override
    public AccessAudit connection(String identity) {
        return new ConnectionAudit(log, connections.incrementAndGet(), identity, summaryMillis);
    }

    /** @return where the key services report key operations */
    public KeyAudit keys() {
        return keys;
    }

    /** @return where the admin API reports forgotten subjects and refused calls */
    public AdminAudit admin() {
        return admin;
    }

    /** Writes what is queued and closes the file; lines reported later are dropped. */
    @Override
    public void close() {
        log.close();
    }

    /** Standard output, shared with whoever else prints there: each line goes out in one write. */
    private record StreamSink(OutputStream out) implements AuditLog.Sink {
        @Override
        public void write(byte[] line) throws IOException {
            out.write(line);
        }

        @Override
        public void flush() throws IOException {
            out.flush();
        }

        @Override
        public void close() throws IOException {
            out.flush(); // not ours to close
        }
    }
}
