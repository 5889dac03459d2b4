package io.meshcrypt.filter.audit;

import java.util.Objects;

/** Two trails fed the same accesses (the JSON audit file and the metrics): one extra object per connection, none per access. */
public record BothAuditTrails(AuditTrail first, AuditTrail second) implements AuditTrail {

    public BothAuditTrails {
        Objects.requireNonNull(first, "first");
        Objects.requireNonNull(second, "second");
    }

    @Override
    public AccessAudit connection(String identity) {
        AccessAudit a = first.connection(identity);
        AccessAudit b = second.connection(identity);
        return new AccessAudit() {
            @Override
            public void access(String topic, Direction direction, Outcome outcome, int records, long bytes) {
                a.access(topic, direction, outcome, records, bytes);
                b.access(topic, direction, outcome, records, bytes);
            }

            @Override
            public void close() {
                try {
                    a.close();
                } finally {
                    b.close();
                }
            }
        };
    }
}
