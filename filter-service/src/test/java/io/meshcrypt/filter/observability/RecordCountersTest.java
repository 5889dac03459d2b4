package io.meshcrypt.filter.observability;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.meshcrypt.filter.audit.AccessAudit;
import io.meshcrypt.filter.audit.AccessAudit.Direction;
import io.meshcrypt.filter.audit.AccessAudit.Outcome;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import org.junit.jupiter.api.Test;

/** Records and their bytes per topic, direction and outcome, with topic labels capped. */
class RecordCountersTest {
    private final SimpleMeterRegistry registry = new SimpleMeterRegistry();

    private double count(String topic, String direction, String outcome) {
        return count(RecordCounters.NAME, topic, direction, outcome);
    }

    private double bytes(String topic, String direction, String outcome) {
        return count(RecordCounters.BYTES_NAME, topic, direction, outcome);
    }

    private double count(String name, String topic, String direction, String outcome) {
        return registry.get(name).tags("topic", topic, "direction", direction, "outcome", outcome).counter().count();
    }

    @Test
    void givenAccessesOfTwoConnections_whenCounted_thenRecordsAddUpPerTopicDirectionAndOutcome() {
        RecordCounters counters = new RecordCounters(registry, 10);
        AccessAudit a = counters.connection("spiffe://a");
        AccessAudit b = counters.connection(null);

        a.access("orders", Direction.PRODUCE, Outcome.ALLOWED, 3, 300);
        b.access("orders", Direction.PRODUCE, Outcome.ALLOWED, 2, 250);
        b.access("orders", Direction.FETCH, Outcome.ALLOWED, 4, 480);
        b.access("orders", Direction.FETCH, Outcome.CIPHERTEXT, 1, 90);
        a.access("orders", Direction.PRODUCE, Outcome.DENIED, 0, 0);

        assertEquals(5, count("orders", "produce", "encrypted"));
        assertEquals(550, bytes("orders", "produce", "encrypted"));
        assertEquals(4, count("orders", "fetch", "decrypted"));
        assertEquals(480, bytes("orders", "fetch", "decrypted"));
        assertEquals(1, count("orders", "fetch", "ciphertext"));
        assertEquals(90, bytes("orders", "fetch", "ciphertext"));
        assertEquals(0, count("orders", "produce", "denied"));
        assertEquals(0, bytes("orders", "produce", "denied"));
    }

    @Test
    void givenMoreTopicsThanTheCap_whenCounted_thenLaterTopicsCountAsOther() {
        RecordCounters counters = new RecordCounters(registry, 2);
        AccessAudit audit = counters.connection(null);

        for (int i = 0; i < 50; i++) {
            audit.access("t" + i, Direction.PRODUCE, Outcome.ALLOWED, 1, 10);
        }
        audit.access("t0", Direction.PRODUCE, Outcome.ALLOWED, 1, 10);

        assertEquals(2, counters.topicLabels());
        assertEquals(2, count("t0", "produce", "encrypted"));
        assertEquals(1, count("t1", "produce", "encrypted"));
        assertEquals(48, count(RecordCounters.OTHER, "produce", "encrypted"));
        assertEquals(480, bytes(RecordCounters.OTHER, "produce", "encrypted"));
        // the cap plus "other", each with every direction and outcome
        assertEquals(3 * 6, registry.find(RecordCounters.NAME).counters().size());
        assertEquals(3 * 6, registry.find(RecordCounters.BYTES_NAME).counters().size());
    }
}
