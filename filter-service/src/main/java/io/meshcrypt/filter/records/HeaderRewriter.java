package io.meshcrypt.filter.records;

import java.nio.ByteBuffer;

/**
 * Rewrites the values of the record headers it chooses by name, for {@link RecordBatchRewriter}. Both methods run for
 * every header of every record while a rewrite is given one, so they must not allocate per call.
 */
public interface HeaderRewriter {

    /**
     * @param name a header's key bytes as in the record (position..limit; UTF-8 as the client wrote it): a view reused
     *     for every header, valid until this method returns; read it, never write it
     * @return whether the value of a header of this name goes through {@link #rewrite}
     */
    boolean rewrites(ByteBuffer name);

    /**
     * @param name as for {@link #rewrites}, a header it chose
     * @param value the header's non-null value (position..limit; null values are kept null without a call), a view of
     *     the batch valid until this method returns
     * @return the new value (position..limit, read before the next call); never null
     * @throws RecordRewriteException to fail the whole rewrite; one without an offset is rethrown naming the record
     */
    ByteBuffer rewrite(ByteBuffer name, ByteBuffer value) throws RecordRewriteException;
}
