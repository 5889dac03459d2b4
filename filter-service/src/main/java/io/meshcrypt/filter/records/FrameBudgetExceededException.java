package io.meshcrypt.filter.records;

/**
 * A rewrite would exceed its {@link FrameBudget}: the frame's batches decompress to, or rewrite into, more than the
 * frame may hold. Distinct from corruption: a Fetch response can answer the affected partition with no records so the
 * consumer asks again, when earlier partitions of the same response used the budget up.
 */
public final class FrameBudgetExceededException extends RecordRewriteException {
    private static final long serialVersionUID = 1L;

    public FrameBudgetExceededException(String message, long offset) {
        super(message, offset, null);
    }
}
