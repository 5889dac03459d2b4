package io.meshcrypt.filter.observability;

import io.meshcrypt.filter.audit.AccessAudit;
import io.meshcrypt.filter.audit.AuditTrail;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.Locale;
import java.util.concurrent.ConcurrentHashMap;

/**
 * {@code meshcrypt_records_total{topic, direction, outcome}} and {@code meshcrypt_record_bytes_total} (same labels):
 * the records of covered topics each connection reported to its {@link AccessAudit}, and the size of their batches as
 * received, counted as an audit trail so the data path reports once for the file and the metrics. The first
 * {@code maxTopics} topics seen get their own label (on both metrics); later ones are counted under
 * {@code topic="other"}, so a client naming endless topics cannot grow the registry. An access is a map lookup and a counter add: no allocation,
 * no lock once a topic has its counters.
 */
public final class RecordCounters implements AuditTrail, AccessAudit {
    static final String NAME = "meshcrypt.records";
    static final String BYTES_NAME = "meshcrypt.record.bytes";
    /** The label of topics beyond the cap. */
    public static final String OTHER = "other";
    private static final AccessAudit.Direction[] DIRECTIONS = AccessAudit.Direction.values();
    private static final AccessAudit.Outcome[] OUTCOMES = AccessAudit.Outcome.values();
    /** A topic's counters: records per direction and outcome, then bytes per direction and outcome. */
    private static final int SLOTS = DIRECTIONS.length * OUTCOMES.length;

    private final MeterRegistry registry;
    private final int maxTopics;
    private final ConcurrentHashMap<String, Counter[]> byTopic = new ConcurrentHashMap<>();
    private final Counter[] other;

    public RecordCounters(MeterRegistry registry, int maxTopics) {
        if (maxTopics < 1) {
            throw new IllegalArgumentException("maxTopics must be >= 1: " + maxTopics);
        }
        this.registry = registry;
        this.maxTopics = maxTopics;
        this.other = register(OTHER);
    }

    /** The counters are shared by all connections: no per-connection state. */
    @Override
    public AccessAudit connection(String identity) {
        return this;
    }

    @Override
    public void access(String topic, Direction direction, Outcome outcome, int records, long bytes) {
        Counter[] counters = counters(topic);
        int slot = direction.ordinal() * OUTCOMES.length + outcome.ordinal();
        counters[slot].increment(Math.max(0, records));
        if (bytes > 0) {
            counters[SLOTS + slot].increment(bytes);
        }
    }

    @Override
    public void close() {
    }

    /** @return topics with a label of their own (at most the cap) */
    int topicLabels() {
        return byTopic.size();
    }

    private Counter[] counters(String topic) {
        Counter[] counters = byTopic.get(topic);
        if (counters != null) {
            return counters;
        }
        if (byTopic.size() >= maxTopics) {
            return other;
        }
        synchronized (byTopic) { // once per new topic, up to the cap
            counters = byTopic.get(topic);
            if (counters == null && byTopic.size() < maxTopics) {
                counters = register(topic);
                byTopic.put(topic, counters);
            }
            return counters == null ? other : counters;
        }
    }

    private Counter[] register(String topic) {
        Counter[] counters = new Counter[2 * SLOTS];
        for (Direction direction : DIRECTIONS) {
            for (Outcome outcome : OUTCOMES) {
                int slot = direction.ordinal() * OUTCOMES.length + outcome.ordinal();
                counters[slot] = counter(NAME, "records",
                        "Records of topics the policy covers, per topic, direction and outcome",
                        topic, direction, outcome);
                counters[SLOTS + slot] = counter(BYTES_NAME, "bytes",
                        "Bytes of the record batches of meshcrypt_records_total as received (client's Produce,"
                                + " broker's Fetch: compressed, headers included)", topic, direction, outcome);
            }
        }
        return counters;
    }

    private Counter counter(String name, String unit, String description, String topic, Direction direction,
                            Outcome outcome) {
        return Counter.builder(name)
                .description(description)
                .baseUnit(unit)
                .tag("topic", topic)
                .tag("direction", direction.name().toLowerCase(Locale.ROOT))
                .tag("outcome", outcome(direction, outcome))
                .register(registry);
    }

    /** encrypted (produce) or decrypted (fetch) through the keys, passed as ciphertext, or denied. */
    static String outcome(Direction direction, Outcome outcome) {
        return switch (outcome) {
            case ALLOWED -> direction == Direction.PRODUCE ? "encrypted" : "decrypted";
            case CIPHERTEXT -> "ciphertext";
            case DENIED -> "denied";
        };
    }
}
