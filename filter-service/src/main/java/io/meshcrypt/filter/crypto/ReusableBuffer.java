package io.meshcrypt.filter.crypto;

import java.nio.ByteBuffer;

/**
 * A growable byte array reused for one value at a time: what the record rewriters hand {@link ValueCipher} so that
 * encrypting or decrypting a batch allocates once per batch, not once per record. What a cipher returns from it is a
 * view of this array, valid until the buffer is written again; the view object itself is reused too (see
 * {@link #view}). Not thread-safe: one per rewriter.
 */
public final class ReusableBuffer {
    /**
     * The smallest array allocated: sized by the first value rather than a fixed guess (a rewriter lives for one
     * partition of one frame, and 4 KiB for 1 KiB values was most of what it allocated); growth doubles, so a batch of
     * growing values still reallocates a few times at most, never per record.
     */
    private static final int MIN_CAPACITY = 256;
    private static final int MAX_ARRAY_SIZE = Integer.MAX_VALUE - 8;

    private byte[] array = new byte[0];
    private ByteBuffer view = ByteBuffer.wrap(array);
    /** The envelope {@link #headerView} and {@link #bodyView} were last duplicated from (by identity). */
    private ByteBuffer viewed;
    private ByteBuffer headerView;
    private ByteBuffer bodyView;

    /** An array of at least {@code length} bytes; its content is undefined. */
    byte[] atLeast(int length) {
        if (array.length < length) {
            long grown = Math.max(length, Math.max(MIN_CAPACITY, 2L * array.length));
            array = new byte[(int) Math.min(grown, Math.max(length, MAX_ARRAY_SIZE))];
        }
        return array;
    }

    /**
     * {@code [0, length)} of the array {@link #atLeast} last returned, as a buffer at position 0: the same buffer object
     * on every call while the array has not grown, so handing a result out allocates nothing. Like the bytes it views,
     * it is valid (position and limit included) until this buffer is used again.
     */
    ByteBuffer view(int length) {
        if (view.array() != array) {
            view = ByteBuffer.wrap(array);
        }
        return view.clear().limit(length);
    }

    /**
     * {@code [from, to)} of {@code envelope} as a buffer sharing its content, for the envelope's authenticated header:
     * the record rewriters hand values through one reused view of the batch, so the duplicate is made once per batch
     * and only repositioned per record. Valid until the next call for another record.
     */
    ByteBuffer headerView(ByteBuffer envelope, int from, int to) {
        viewsOf(envelope);
        return headerView.clear().limit(to).position(from);
    }

    /** As {@link #headerView}, a second view for the envelope's nonce, ciphertext and tag. */
    ByteBuffer bodyView(ByteBuffer envelope, int from, int to) {
        viewsOf(envelope);
        return bodyView.clear().limit(to).position(from);
    }

    private void viewsOf(ByteBuffer envelope) {
        if (viewed != envelope) {
            headerView = envelope.duplicate();
            bodyView = envelope.duplicate();
            viewed = envelope;
        }
    }
}
