package io.meshcrypt.filter.audit;

import com.fasterxml.jackson.core.JsonGenerator;
import io.meshcrypt.filter.kms.DekContext;
import io.meshcrypt.filter.kms.KeyAudit;
import io.meshcrypt.filter.kms.Printable;
import java.io.IOException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The key operations' lines: one per DEK created, wrapped and unwrapped, per KEK created, rotated and newly current.
 * They name keys by id and a wrapped DEK by its {@link #fingerprint}, never by a key's bytes. Failures are rate-aware,
 * since a hostile broker can serve a forged envelope per partition: within each {@code interval} the first
 * {@value #FAILURE_LINES_PER_INTERVAL} failures get a line each, the rest are counted per operation and error class
 * and written as one summary line each when the interval ends.
 */
public final class KeyOperationAudit implements KeyAudit {
    static final int FAILURE_LINES_PER_INTERVAL = 10;
    /** Bytes of SHA-256 a fingerprint shows: enough to tell wrapped DEKs apart, short enough to read. */
    private static final int FINGERPRINT_BYTES = 8;

    private final AuditLog log;
    private final long intervalMillis;
    /** Guarded by this: the failure interval under way. */
    private long intervalStartMillis;
    private int failureLines;
    private final Map<String, Suppressed> suppressed = new LinkedHashMap<>();

    KeyOperationAudit(AuditLog log, long intervalMillis) {
        this.log = log;
        this.intervalMillis = intervalMillis;
        this.intervalStartMillis = log.clock().millis();
        log.onTick(this::endIntervalIfDue);
    }

    /**
     * @return a wrapped DEK's name in the trail: the first {@value #FINGERPRINT_BYTES} bytes of its SHA-256, in hex.
     *     The wrapped DEK is ciphertext under the KEK; its hash tells nothing about the DEK.
     */
    public static String fingerprint(byte[] wrappedDek) {
        try {
            byte[] hash = MessageDigest.getInstance("SHA-256").digest(wrappedDek);
            return HexFormat.of().formatHex(hash, 0, FINGERPRINT_BYTES);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform has SHA-256", e);
        }
    }

    @Override
    public void succeeded(Operation operation, String provider, String kekId, DekContext dek, byte[] wrappedDek) {
        log.submit(line(log.clock().millis(), operation, provider, kekId, dek, wrappedDek, null));
    }

    @Override
    public void failed(Operation operation, String provider, String kekId, DekContext dek, byte[] wrappedDek,
                       Throwable error) {
        long now = log.clock().millis();
        String errorClass = error.getClass().getSimpleName();
        synchronized (this) {
            endIntervalIfDue(now);
            if (failureLines >= FAILURE_LINES_PER_INTERVAL) {
                suppressed.computeIfAbsent(operation.event() + " " + errorClass,
                        k -> new Suppressed(operation, errorClass, now)).add(now);
                return;
            }
            failureLines++;
        }
        log.submit(line(now, operation, provider, kekId, dek, wrappedDek, errorClass));
    }

    private void endIntervalIfDue() {
        endIntervalIfDue(log.clock().millis());
    }

    private synchronized void endIntervalIfDue(long now) {
        if (now - intervalStartMillis < intervalMillis) {
            return;
        }
        for (Suppressed s : suppressed.values()) {
            log.submit(new FailureSummary(now, s.operation, s.error, s.count, s.firstMillis, s.lastMillis));
        }
        suppressed.clear();
        failureLines = 0;
        intervalStartMillis = now;
    }

    private static KeyOperation line(long now, Operation operation, String provider, String kekId, DekContext dek,
                                     byte[] wrappedDek, String error) {
        return new KeyOperation(now, operation, provider,
                // a KEK id in a refused envelope is attacker-chosen: cut shorter
                kekId == null ? null : Printable.of(kekId, error == null ? Printable.KEK_ID_CHARS : Printable.UNKNOWN_KEK_ID_CHARS),
                dek == null ? null : dek.topic(), dek == null ? null : dek.dekIdText(),
                wrappedDek == null ? null : fingerprint(wrappedDek), error);
    }

    private static final class Suppressed {
        final Operation operation;
        final String error;
        final long firstMillis;
        long lastMillis;
        long count;

        Suppressed(Operation operation, String error, long firstMillis) {
            this.operation = operation;
            this.error = error;
            this.firstMillis = firstMillis;
        }

        void add(long now) {
            count++;
            lastMillis = now;
        }
    }

    /** One key operation: {@code error} null when it succeeded. */
    record KeyOperation(long timeMillis, Operation operation, String provider, String kekId, String topic, String dekId,
                        String wrappedDek, String error) implements AuditEvent {
        @Override
        public String event() {
            return operation.event();
        }

        @Override
        public void writeFields(JsonGenerator json) throws IOException {
            json.writeStringField("outcome", error == null ? "ok" : "failed");
            if (error != null) {
                json.writeStringField("error", error);
            }
            json.writeStringField("provider", provider);
            optional(json, "kekId", kekId);
            optional(json, "topic", topic == null ? null : Printable.of(topic, Printable.TOPIC_CHARS));
            optional(json, "dekId", dekId);
            optional(json, "wrappedDek", wrappedDek);
        }
    }

    /** Failures of one operation and error class that got no line of their own in an interval. */
    record FailureSummary(long timeMillis, Operation operation, String error, long suppressed, long firstMillis,
                          long lastMillis) implements AuditEvent {
        @Override
        public String event() {
            return operation.event();
        }

        @Override
        public void writeFields(JsonGenerator json) throws IOException {
            json.writeStringField("outcome", "failed");
            json.writeStringField("error", error);
            json.writeNumberField("suppressed", suppressed);
            json.writeStringField("first", AuditLog.time(firstMillis));
            json.writeStringField("last", AuditLog.time(lastMillis));
        }
    }

    private static void optional(JsonGenerator json, String field, String value) throws IOException {
        if (value != null) {
            json.writeStringField(field, value);
        }
    }
}
