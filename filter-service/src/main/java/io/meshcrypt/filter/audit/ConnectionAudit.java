package io.meshcrypt.filter.audit;

import com.fasterxml.jackson.core.JsonGenerator;
import io.meshcrypt.filter.kms.Printable;
import java.io.IOException;
import java.util.HashMap;
import java.util.Locale;

/**
 * The access summary of one connection: per topic, direction and outcome, how many records and bytes, and when first
 * and last.
 * Confined to the connection's thread: a small map, no lock, nothing allocated per access once a topic has its entry,
 * no I/O (lines go to the {@link AuditLog}'s queue). A line is written when the connection closes, and for a
 * long-lived one at the first access after {@code summaryMillis} since its last summary (no timer per connection); each
 * line covers the accesses since the previous one, so summing lines gives the totals.
 */
final class ConnectionAudit implements AccessAudit {
    /** Topics one connection may have pending; beyond, what is pending is written and the map starts again. */
    static final int MAX_TOPICS = 256;
    // values() copies its array: taken once, as access() must not allocate
    private static final Direction[] DIRECTIONS = Direction.values();
    private static final Outcome[] OUTCOMES = Outcome.values();
    private static final int SLOTS = DIRECTIONS.length * OUTCOMES.length;

    private final AuditLog log;
    private final long connection;
    private final String identity;
    private final long summaryMillis;
    private final HashMap<String, TopicAccess> topics = new HashMap<>();
    private long lastSummaryMillis;
    private boolean closed;

    ConnectionAudit(AuditLog log, long connection, String identity, long summaryMillis) {
        this.log = log;
        this.connection = connection;
        this.identity = identity;
        this.summaryMillis = summaryMillis;
        this.lastSummaryMillis = log.clock().millis();
    }

    @Override
    public void access(String topic, Direction direction, Outcome outcome, int records, long bytes) {
        if (closed) {
            return;
        }
        long now = log.clock().millis();
        if (now - lastSummaryMillis >= summaryMillis) {
            summarise(now, false);
        }
        TopicAccess access = topics.get(topic);
        if (access == null) {
            if (topics.size() >= MAX_TOPICS) {
                summarise(now, false);
            }
            access = new TopicAccess(topic);
            topics.put(topic, access);
        }
        int slot = direction.ordinal() * OUTCOMES.length + outcome.ordinal();
        if (access.accesses[slot]++ == 0) {
            access.first[slot] = now;
        }
        access.last[slot] = now;
        access.records[slot] += Math.max(0, records);
        access.bytes[slot] += Math.max(0, bytes);
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            summarise(log.clock().millis(), true);
        }
    }

    /** Queues a line per topic, direction and outcome accessed since the last summary, and starts afresh. */
    private void summarise(long now, boolean last) {
        for (TopicAccess access : topics.values()) {
            for (int slot = 0; slot < SLOTS; slot++) {
                if (access.accesses[slot] > 0) {
                    log.submit(new Summary(now, connection, identity, access.topic,
                            DIRECTIONS[slot / OUTCOMES.length], OUTCOMES[slot % OUTCOMES.length],
                            access.records[slot], access.bytes[slot], access.accesses[slot], access.first[slot], access.last[slot], last));
                }
            }
        }
        topics.clear();
        lastSummaryMillis = now;
    }

    private static final class TopicAccess {
        final String topic;
        final long[] records = new long[SLOTS];
        final long[] bytes = new long[SLOTS];
        final long[] accesses = new long[SLOTS];
        final long[] first = new long[SLOTS];
        final long[] last = new long[SLOTS];

        TopicAccess(String topic) {
            this.topic = topic;
        }
    }

    /**
     * One {@code access} line.
     *
     * @param connection this service's number for the connection, the same on its interim and closing lines
     * @param bytes the size of the records' batches as received (see {@link AccessAudit#access})
     * @param accesses how many times the data path reported the topic (frames or partitions; records may be 0 when
     *     denied)
     * @param closed whether the connection had closed (false: an interim summary, more may follow)
     */
    record Summary(long timeMillis, long connection, String identity, String topic, Direction direction,
                   Outcome outcome, long records, long bytes, long accesses, long firstMillis, long lastMillis, boolean closed)
            implements AuditEvent {
        @Override
        public String event() {
            return "access";
        }

        @Override
        public void writeFields(JsonGenerator json) throws IOException {
            json.writeNumberField("connection", connection);
            json.writeStringField("identity", identity == null ? null : Printable.of(identity, MAX_IDENTITY_CHARS));
            json.writeStringField("topic", Printable.of(topic, Printable.TOPIC_CHARS));
            json.writeStringField("direction", direction.name().toLowerCase(Locale.ROOT));
            json.writeStringField("outcome", outcome.name().toLowerCase(Locale.ROOT));
            json.writeNumberField("records", records);
            json.writeNumberField("bytes", bytes);
            json.writeNumberField("accesses", accesses);
            json.writeStringField("first", AuditLog.time(firstMillis));
            json.writeStringField("last", AuditLog.time(lastMillis));
            json.writeBooleanField("closed", closed);
        }
    }

    /** SPIFFE ids are URIs of at most 2048 bytes. */
    private static final int MAX_IDENTITY_CHARS = 2048;
}
