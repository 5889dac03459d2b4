package io.meshcrypt.filter.crypto;

/**
 * A growable byte array reused for one value at a time: what the record rewriters hand {@link ValueCipher} so that
 * encrypting or decrypting a batch allocates once per batch, not once per record. What a cipher returns from it is a
 * view of this array, valid until the buffer is written again. Not thread-safe: one per rewriter.
 */
public final class ReusableBuffer {
    /** Grown at least this far at once, so a batch of growing values does not reallocate per record. */
    private static final int MIN_CAPACITY = 4096;
    private static final int MAX_ARRAY_SIZE = Integer.MAX_VALUE - 8;

    private byte[] array = new byte[0];

    /** An array of at least {@code length} bytes; its content is undefined. */
    byte[] atLeast(int length) {
        if (array.length < length) {
            long grown = Math.max(length, Math.max(MIN_CAPACITY, 2L * array.length));
            array = new byte[(int) Math.min(grown, Math.max(length, MAX_ARRAY_SIZE))];
        }
        return array;
    }
}
