package io.meshcrypt.filter.records;

import java.nio.ByteBuffer;

/** Rewrites one record value. */
@FunctionalInterface
public interface ValueRewriter {
    /**
     * @param value a record's non-null value (position..limit); read it, do not keep it
     * @return the new value; never null
     */
    ByteBuffer rewrite(ByteBuffer value) throws RecordRewriteException;
}
