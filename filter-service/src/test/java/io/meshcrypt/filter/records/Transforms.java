package io.meshcrypt.filter.records;

import java.nio.ByteBuffer;
import java.util.Arrays;

/** Invertible value transforms that change value lengths across varint boundaries, as encryption does. */
final class Transforms {
    static final int PREFIX_LENGTH = 100;
    private static final byte MASK = 0x5A;

    /** Prepends 100 marker bytes and masks every byte: a 63-byte value crosses the 1-byte varint limit. */
    static final ValueRewriter GROW = value -> ByteBuffer.wrap(grow(value));

    /** {@link #GROW} returning an off-heap buffer, which exercises the non-array copy paths. */
    static final ValueRewriter GROW_DIRECT = value -> {
        byte[] out = grow(value);
        return ByteBuffer.allocateDirect(out.length).put(out).flip();
    };

    /** Inverse of {@link #GROW}; fails like a decryption would when the marker is missing. */
    static final ValueRewriter SHRINK = value -> {
        if (value.remaining() < PREFIX_LENGTH) {
            throw new RecordRewriteException("value too short to carry the marker", null);
        }
        for (int i = 0; i < PREFIX_LENGTH; i++) {
            if (value.get(value.position() + i) != 'P') {
                throw new RecordRewriteException("marker missing", null);
            }
        }
        byte[] out = new byte[value.remaining() - PREFIX_LENGTH];
        value.get(value.position() + PREFIX_LENGTH, out);
        for (int i = 0; i < out.length; i++) {
            out[i] ^= MASK;
        }
        return ByteBuffer.wrap(out);
    };

    private Transforms() {
    }

    private static byte[] grow(ByteBuffer value) {
        byte[] out = new byte[PREFIX_LENGTH + value.remaining()];
        Arrays.fill(out, 0, PREFIX_LENGTH, (byte) 'P');
        value.get(value.position(), out, PREFIX_LENGTH, value.remaining());
        for (int i = PREFIX_LENGTH; i < out.length; i++) {
            out[i] ^= MASK;
        }
        return out;
    }
}
