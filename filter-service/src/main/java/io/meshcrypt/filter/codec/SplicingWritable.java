package io.meshcrypt.filter.codec;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import java.nio.ByteBuffer;
import org.apache.kafka.common.protocol.Writable;

/**
 * A {@link Writable} that builds a frame as a rope: the message's own fields are written into an array, while large
 * byte buffers (record sections, whether rewritten or passed from the received frame) are spliced in as they are,
 * not copied. The frame then costs one copy of its records, the one gRPC makes when it sends it, instead of two, and
 * no allocation the size of the frame.
 *
 * <p>Spliced buffers must not change until the frame was sent: views of the received frame never do, and records
 * rewritten into the thread's {@link io.meshcrypt.filter.records.OutputArena} are reused only after the send that
 * carries them (gRPC has copied the frame by then). Not thread-safe; one per encoded frame.
 */
final class SplicingWritable implements Writable {
    /** Smaller buffers are copied: a rope piece costs more than copying a few hundred bytes. */
    static final int SPLICE_MIN_BYTES = 512;

    private byte[] array;
    private int position;
    /** Start of the bytes written into {@link #array} and not yet appended to {@link #frame}. */
    private int pending;
    private ByteString frame = ByteString.EMPTY;

    SplicingWritable(int initialCapacity) {
        array = new byte[Math.max(16, initialCapacity)];
    }

    /** The frame written so far; the writer must not be used afterwards. */
    ByteString toByteString() {
        flush();
        return frame;
    }

    @Override
    public void writeByteBuffer(ByteBuffer src) {
        int length = src.remaining();
        if (length >= SPLICE_MIN_BYTES && src.hasArray()) {
            flush();
            frame = frame.concat(UnsafeByteOperations.unsafeWrap(src.array(), src.arrayOffset() + src.position(), length));
            return;
        }
        reserve(length);
        src.duplicate().get(array, position, length);
        position += length;
    }

    @Override
    public void writeByteArray(byte[] src) {
        reserve(src.length);
        System.arraycopy(src, 0, array, position, src.length);
        position += src.length;
    }

    @Override
    public void writeByte(byte value) {
        reserve(1);
        array[position++] = value;
    }

    @Override
    public void writeShort(short value) {
        reserve(2);
        array[position++] = (byte) (value >>> 8);
        array[position++] = (byte) value;
    }

    @Override
    public void writeInt(int value) {
        reserve(4);
        array[position++] = (byte) (value >>> 24);
        array[position++] = (byte) (value >>> 16);
        array[position++] = (byte) (value >>> 8);
        array[position++] = (byte) value;
    }

    @Override
    public void writeLong(long value) {
        writeInt((int) (value >>> 32));
        writeInt((int) value);
    }

    @Override
    public void writeDouble(double value) {
        writeLong(Double.doubleToRawLongBits(value));
    }

    @Override
    public void writeUnsignedVarint(int value) {
        reserve(5);
        int v = value;
        while ((v & 0xffffff80) != 0) {
            array[position++] = (byte) ((v & 0x7f) | 0x80);
            v >>>= 7;
        }
        array[position++] = (byte) v;
    }

    @Override
    public void writeVarint(int value) {
        writeUnsignedVarint((value << 1) ^ (value >> 31));
    }

    @Override
    public void writeVarlong(long value) {
        reserve(10);
        long v = (value << 1) ^ (value >> 63);
        while ((v & 0xffffffffffffff80L) != 0L) {
            array[position++] = (byte) ((v & 0x7f) | 0x80);
            v >>>= 7;
        }
        array[position++] = (byte) v;
    }

    /** Appends the bytes written since the last splice to the frame (they stay in the array, never written again). */
    private void flush() {
        if (position > pending) {
            frame = frame.concat(UnsafeByteOperations.unsafeWrap(array, pending, position - pending));
            pending = position;
        }
    }

    /**
     * Room for {@code length} more bytes. A full array is left to the pieces already taken from it; only its pending
     * bytes move to the new one.
     */
    private void reserve(int length) {
        if (array.length - position >= length) {
            return;
        }
        int carried = position - pending;
        long capacity = Math.max((long) carried + length, 2L * array.length);
        byte[] grown = new byte[(int) Math.min(Integer.MAX_VALUE - 8, capacity)];
        System.arraycopy(array, pending, grown, 0, carried);
        array = grown;
        pending = 0;
        position = carried;
    }
}
