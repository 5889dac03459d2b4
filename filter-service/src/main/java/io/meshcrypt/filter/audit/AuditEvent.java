package io.meshcrypt.filter.audit;

import com.fasterxml.jackson.core.JsonGenerator;
import java.io.IOException;

/**
 * One line of the audit trail before it is written: made on the thread that reports it, turned into JSON on the
 * writer's thread ({@link AuditLog}). Every line starts with {@code time} and {@code event}.
 */
interface AuditEvent {

    /** @return when it happened, epoch milliseconds */
    long timeMillis();

    /** @return the {@code event} field: {@code access}, {@code dek.created}, ... */
    String event();

    /** Writes the fields after {@code time} and {@code event}. */
    void writeFields(JsonGenerator json) throws IOException;
}
