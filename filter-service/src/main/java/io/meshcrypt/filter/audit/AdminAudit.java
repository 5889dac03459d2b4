package io.meshcrypt.filter.audit;

import com.fasterxml.jackson.core.JsonGenerator;
import io.meshcrypt.filter.kms.KeyAudit;
import io.meshcrypt.filter.kms.Printable;
import java.io.IOException;

/**
 * The admin API's lines in the audit trail: who forgot which subject (by scope and subject ref, never the subject
 * id), and who was refused. Never blocks (the caller may be a gRPC transport thread).
 */
public interface AdminAudit {

    /** Event of a refused admin call. */
    String REFUSED = "admin.refused";

    /** Records nothing. */
    AdminAudit NONE = new AdminAudit() {
        @Override
        public void forgotten(String caller, String scope, String subjectRef) {
        }

        @Override
        public void refused(String caller, String method, String reason) {
        }
    };

    /**
     * A subject was forgotten: event {@code subject.forgotten}.
     *
     * @param caller the authenticated caller's identity, or null (plaintext loopback)
     * @param subjectRef the subject ref, hex
     */
    void forgotten(String caller, String scope, String subjectRef);

    /** A call was refused: event {@value #REFUSED}, with the caller's identity (null: none) and the method. */
    void refused(String caller, String method, String reason);

    /** The JSON lines of {@code log}. */
    static AdminAudit of(AuditLog log) {
        return new AdminAudit() {
            @Override
            public void forgotten(String caller, String scope, String subjectRef) {
                log.submit(new Line(log.clock().millis(), KeyAudit.Operation.SUBJECT_FORGOTTEN.event(), "ok", caller,
                        scope, subjectRef, null, null));
            }

            @Override
            public void refused(String caller, String method, String reason) {
                log.submit(new Line(log.clock().millis(), REFUSED, "denied", caller, null, null, method, reason));
            }
        };
    }

    /** One line; identities and scopes come from callers: cut to printable lengths. */
    record Line(long timeMillis, String event, String outcome, String identity, String topic, String subjectRef,
                String method, String reason) implements AuditEvent {
        @Override
        public void writeFields(JsonGenerator json) throws IOException {
            json.writeStringField("outcome", outcome);
            json.writeStringField("identity", identity == null ? null : Printable.of(identity, 2048));
            if (topic != null) {
                json.writeStringField("topic", Printable.of(topic, Printable.TOPIC_CHARS));
            }
            if (subjectRef != null) {
                json.writeStringField("subjectRef", subjectRef);
            }
            if (method != null) {
                json.writeStringField("method", Printable.of(method, Printable.TOPIC_CHARS));
            }
            if (reason != null) {
                json.writeStringField("reason", reason);
            }
        }
    }
}
