package io.meshcrypt.filter.records;

/** A record value could not be rewritten; carries the offset of the record that failed when known. */
public class RecordRewriteException extends Exception {
    private final long offset;

    public RecordRewriteException(String message, long offset, Throwable cause) {
        super(message, cause);
        this.offset = offset;
    }

    public RecordRewriteException(String message, Throwable cause) {
        this(message, -1L, cause);
    }

    /** Offset of the failed record, or -1 when unknown. */
    public long offset() {
        return offset;
    }
}
