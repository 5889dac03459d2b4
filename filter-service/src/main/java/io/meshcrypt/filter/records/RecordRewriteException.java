package io.meshcrypt.filter.records;

import java.util.concurrent.CompletableFuture;
import org.apache.kafka.common.protocol.Errors;

/**
 * A record value could not be rewritten. Carries the offset of the record that failed when known, and how to answer:
 * the Kafka error a fetched partition gets ({@link #answer()}), or, when nothing was decided yet (a data key on its
 * way), the moment to retry the whole frame ({@link #retryWhen()}). A Produce request that fails any other way closes
 * its connection: Produce is either fully rewritten or never forwarded.
 */
public class RecordRewriteException extends Exception {
    private final long offset;
    private final transient Errors answer;
    private final transient CompletableFuture<Void> retryWhen;

    /** A record that is not what it must be: CORRUPT_MESSAGE. */
    public RecordRewriteException(String message, long offset, Throwable cause) {
        this(message, offset, Errors.CORRUPT_MESSAGE, null, cause);
    }

    /** A record that is not what it must be: CORRUPT_MESSAGE. */
    public RecordRewriteException(String message, Throwable cause) {
        this(message, -1L, cause);
    }

    /**
     * @param answer the error a fetched partition is answered with
     * @param retryWhen non-null when the frame is to be retried once it completes instead of answered
     */
    public RecordRewriteException(String message, Errors answer, CompletableFuture<Void> retryWhen, Throwable cause) {
        this(message, -1L, answer, retryWhen, cause);
    }

    private RecordRewriteException(String message, long offset, Errors answer, CompletableFuture<Void> retryWhen,
                                   Throwable cause) {
        super(message, cause);
        this.offset = offset;
        this.answer = answer;
        this.retryWhen = retryWhen;
    }

    /** The same failure, now naming the record at {@code offset}: answered the same way. */
    public RecordRewriteException at(long offset, String message) {
        return new RecordRewriteException(message, offset, answer, retryWhen, this);
    }

    /** Offset of the failed record, or -1 when unknown. */
    public long offset() {
        return offset;
    }

    /** The error to answer a fetched partition with: CORRUPT_MESSAGE unless the failure says otherwise. */
    public Errors answer() {
        return answer;
    }

    /** @return when to retry the frame (nothing was decided about the record), or null when it is to be answered */
    public CompletableFuture<Void> retryWhen() {
        return retryWhen;
    }
}
