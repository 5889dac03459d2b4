package io.meshcrypt.filter.config;

import java.util.concurrent.atomic.LongAdder;

/** What became of the policy changes a source delivered while the service ran: put in force, or refused. */
public final class PolicyReloads {
    private final LongAdder applied = new LongAdder();
    private final LongAdder refused = new LongAdder();

    void applied() {
        applied.increment();
    }

    void refused() {
        refused.increment();
    }

    /** @return changes of the policy or HTTP rules put in force (an unchanged version is not counted) */
    public long appliedCount() {
        return applied.sum();
    }

    /** @return versions refused (invalid, or not enforceable without a restart); the last good one stayed */
    public long refusedCount() {
        return refused.sum();
    }
}
