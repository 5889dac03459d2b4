package io.meshcrypt.filter.subjects;

import java.util.concurrent.CompletableFuture;

/**
 * The durable, ordered log subject keys live in: a compacted Kafka topic in production ({@link KafkaSubjectKeyLog}),
 * a list in tests. Every replica reads it whole at start and keeps following it, so what one replica appends (a new
 * subject key, a forgotten marker) reaches all, in the same order.
 */
public interface SubjectKeyLog extends AutoCloseable {

    /** Receives every record of the log in log order, on one thread. */
    @FunctionalInterface
    interface Follower {
        void apply(byte[] key, byte[] value);
    }

    /**
     * Starts delivering every record from the beginning of the log to {@code follower}, then each new one.
     *
     * @return completes once the records that were in the log when following started have been delivered
     */
    CompletableFuture<Void> follow(Follower follower);

    /** @return completes when the record is durably in the log (acks=all); the follower delivers it later */
    CompletableFuture<Void> append(byte[] key, byte[] value);

    @Override
    void close();
}
