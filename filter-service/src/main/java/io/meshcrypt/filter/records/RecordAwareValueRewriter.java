package io.meshcrypt.filter.records;

import java.nio.ByteBuffer;

/**
 * A value rewriter that also reads the record's key and headers (per-subject keys: the subject id may be in either).
 * {@link RecordBatchRewriter} calls {@link #record} right before each {@link #rewrite} of a non-null value.
 */
public interface RecordAwareValueRewriter extends ValueRewriter {

    /**
     * @param key the record's key as produced (position..limit), or null when it has none
     * @param headers the record's headers section as in the batch (position..limit: varint count, then per header
     *     varint name length, name, varint value length, value), before any header rewriting
     *     Both are views of the batch valid until the following {@link #rewrite} returns; read them, never write them.
     */
    void record(ByteBuffer key, ByteBuffer headers);
}
