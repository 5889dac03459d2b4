package io.meshcrypt.filter.records;

import java.nio.ByteBuffer;

/** Rewrites one record value (or, as the key rewriter of {@link RecordBatchRewriter}, one record key). */
@FunctionalInterface
public interface ValueRewriter {
    /**
     * Returned (by identity) for a value that becomes null (value length -1 in the record), e.g. a forgotten subject's
     * value; only ever from a value rewriter, never a key rewriter.
     */
    ByteBuffer NULL_VALUE = ByteBuffer.allocate(0).asReadOnlyBuffer();

    /**
     * @param value a record's non-null value (position..limit); read it, never write it, do not keep it. It is a view
     *     of the batch (array-backed, so ciphers read it in place) reused for every record of the call, valid only until
     *     this method returns.
     * @return the new value (position..limit, read before the next call to this rewriter); never null. May be
     *     {@code value} itself, or {@link #NULL_VALUE}.
     * @throws RecordRewriteException to fail the whole rewrite; an exception without an offset is rethrown
     *     naming the record's offset
     */
    ByteBuffer rewrite(ByteBuffer value) throws RecordRewriteException;
}
