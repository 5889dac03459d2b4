package io.meshcrypt.filter.audit;

/**
 * The filter-service's audit trail: one structured line per key operation and per connection and topic accessed.
 * Thread-safe.
 */
public interface AuditTrail {

    /** A trail that records nothing (no {@code audit:} section, and tests). */
    AuditTrail NONE = identity -> AccessAudit.NONE;

    /**
     * @param identity the workload identity the filter-service authenticated on the stream (a SPIFFE id), or null when
     *     the stream carried none
     * @return the access audit of one new connection
     */
    AccessAudit connection(String identity);
}
