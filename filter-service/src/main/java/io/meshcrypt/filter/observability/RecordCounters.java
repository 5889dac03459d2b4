package io.meshcrypt.filter.observability;

import io.meshcrypt.filter.audit.AccessAudit;
import io.meshcrypt.filter.audit.AuditTrail;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.Locale;
import java.util.concurrent.ConcurrentHashMap;

/**
 * {@code meshcrypt_records_total{topic, direction, outcome}}: the records of covered topics each connection reported to
 * its {@link AccessAudit}, counted as an audit trail so the data path reports once for the file and the metrics. The
 * first {@code maxTopics} topics seen get their own label; later ones are counted under {@code topic="other"}, so a
 * client naming endless topics cannot grow the registry. An access is a map lookup and a counter add: no allocation,
 * no lock once a topic has its counters.
 */
public final class RecordCounters implements AuditTrail, AccessAudit {
    static final String NAME = "meshcrypt.records";
    /** The label of topics beyond the cap. */
    public static final String OTHER = "other";
    private static final AccessAudit.Direction[] DIRECTIONS = AccessAudit.Direction.values();
    private static final AccessAudit.Outcome[] OUTCOMES = AccessAudit.Outcome.values();

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
    public void access(String topic, Direction direction, Outcome outcome, int records) {
        counters(topic)[direction.ordinal() * OUTCOMES.length + outcome.ordinal()].increment(Math.max(0, records));
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
        Counter[] counters = new Counter[DIRECTIONS.length * OUTCOMES.length];
        for (Direction direction : DIRECTIONS) {
            for (Outcome outcome : OUTCOMES) {
                counters[direction.ordinal() * OUTCOMES.length + outcome.ordinal()] = Counter.builder(NAME)
                        .description("Records of topics the policy covers, per topic, direction and outcome")
                        .baseUnit("records")
                        .tag("topic", topic)
                        .tag("direction", direction.name().toLowerCase(Locale.ROOT))
                        .tag("outcome", outcome(direction, outcome))
                        .register(registry);
            }
        }
        return counters;
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
