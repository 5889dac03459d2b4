package io.meshcrypt.filter.config;

import java.util.concurrent.atomic.LongAdder;

/** What became of the policy changes a source delivered while the service ran: put in force, or refused. */
public final class PolicyReloads {
    private final LongAdder applied = new LongAdder();
    private final LongAdder refused = new LongAdder();
    private volatile String version = "";
    private volatile long inForceSinceMillis;

    void applied() {
        applied.increment();
    }

    void refused() {
        refused.increment();
    }

    /**
     * The policy of {@code version} was put in force (at start, or by a reload) at {@code epochMillis}; the same
     * version again (a re-sent xDS response) keeps its time.
     */
    public synchronized void inForce(String version, long epochMillis) {
        String next = version == null ? "" : version;
        if (!next.equals(this.version)) {
            this.version = next;
            this.inForceSinceMillis = epochMillis;
        }
    }

    /** @return the version of the policy in force: the xDS version, or the policy file's reload count; "" before one */
    public String version() {
        return version;
    }

    /** @return when the policy in force was put in force (ms since the epoch), 0 before one */
    public long inForceSinceMillis() {
        return inForceSinceMillis;
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
