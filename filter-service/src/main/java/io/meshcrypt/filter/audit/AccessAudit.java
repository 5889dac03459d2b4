package io.meshcrypt.filter.audit;

/**
 * What one proxied connection did with the topics the policy covers, summarised per topic and direction for the audit
 * trail (never per record). Called on the connection's own thread, so implementations need no locks on the hot path.
 */
public interface AccessAudit {

    /** The data path's side of a topic access. */
    enum Direction { PRODUCE, FETCH }

    /** What the peer got: plaintext in or out through the keys, ciphertext only, or a Kafka authorization error. */
    enum Outcome { ALLOWED, CIPHERTEXT, DENIED }

    /** An audit that records nothing. */
    AccessAudit NONE = new AccessAudit() {
        @Override
        public void access(String topic, Direction direction, Outcome outcome, int records, long bytes) {
        }

        @Override
        public void close() {
        }
    };

    /**
     * @param records how many records of {@code topic} the frame carried (0 when unknown, e.g. a denied partition)
     * @param bytes the size of those records' batches as the filter received them (the client's Produce batches, the
     *     broker's Fetch batches: compressed, batch and record headers included), summed from the batch sizes the
     *     frame already holds, never per record; 0 when unknown
     */
    void access(String topic, Direction direction, Outcome outcome, int records, long bytes);

    /** The connection closed: write what is still unwritten. */
    void close();
}
