package io.meshcrypt.filter.codec;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.protobuf.ByteString;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.function.Consumer;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.protocol.Writable;
import org.junit.jupiter.api.Test;

/** The splicing writer must produce exactly the bytes kafka-clients' own ByteBufferAccessor writes. */
class SplicingWritablePropertyTest {

    /** One write, applied to any Writable, with the number of bytes it adds. */
    record Write(String name, Consumer<Writable> apply) {
        @Override
        public String toString() {
            return name;
        }
    }

    @Property(tries = 500)
    void givenAnySequenceOfWrites_whenSplicing_thenBytesEqualTheAccessors(@ForAll("writes") List<Write> writes,
                                                                          @ForAll("capacities") int initialCapacity) {
        ByteBuffer expected = ByteBuffer.allocate(1 << 20);
        ByteBufferAccessor reference = new ByteBufferAccessor(expected);
        SplicingWritable splicing = new SplicingWritable(initialCapacity);
        for (Write w : writes) {
            w.apply().accept(reference);
            w.apply().accept(splicing);
        }
        expected.flip();
        byte[] want = new byte[expected.remaining()];
        expected.get(want);
        ByteString got = splicing.toByteString();
        assertEquals(want.length, got.size());
        assertArrayEquals(want, got.toByteArray(), writes.toString());
    }

    @Test
    void givenLargeArrayBackedBuffer_whenWritten_thenItIsSplicedNotCopied() {
        byte[] records = new byte[SplicingWritable.SPLICE_MIN_BYTES * 4];
        records[0] = 1;
        SplicingWritable out = new SplicingWritable(16);
        out.writeInt(7);
        out.writeByteBuffer(ByteBuffer.wrap(records, 0, records.length));
        ByteString frame = out.toByteString();
        // The rope still reads the caller's array: a later change shows (callers never change it; this proves no copy).
        records[1] = 42;
        assertEquals(42, frame.byteAt(5));
        assertEquals(4 + records.length, frame.size());
    }

    @Provide
    Arbitrary<Integer> capacities() {
        return Arbitraries.integers().between(0, 64);
    }

    @Provide
    Arbitrary<List<Write>> writes() {
        Arbitrary<Write> one = Arbitraries.oneOf(
                Arbitraries.bytes().map(v -> new Write("byte " + v, w -> w.writeByte(v))),
                Arbitraries.shorts().map(v -> new Write("short " + v, w -> w.writeShort(v))),
                Arbitraries.integers().map(v -> new Write("int " + v, w -> w.writeInt(v))),
                Arbitraries.longs().map(v -> new Write("long " + v, w -> w.writeLong(v))),
                Arbitraries.doubles().map(v -> new Write("double " + v, w -> w.writeDouble(v))),
                Arbitraries.integers().map(v -> new Write("uvarint " + v, w -> w.writeUnsignedVarint(v))),
                Arbitraries.integers().map(v -> new Write("varint " + v, w -> w.writeVarint(v))),
                Arbitraries.longs().map(v -> new Write("varlong " + v, w -> w.writeVarlong(v))),
                Arbitraries.bytes().array(byte[].class).ofMaxSize(700)
                        .map(v -> new Write("byteArray[" + v.length + "]", w -> w.writeByteArray(v))),
                buffers());
        return one.list().ofMaxSize(40);
    }

    /** Heap slices at an offset, direct and read-only buffers, around the splice threshold. */
    private static Arbitrary<Write> buffers() {
        return Combinators.combine(Arbitraries.integers().between(0, 3 * SplicingWritable.SPLICE_MIN_BYTES),
                Arbitraries.integers().between(0, 9), Arbitraries.of("heap", "direct", "readOnly"))
                .as((length, offset, kind) -> {
                    byte[] bytes = new byte[offset + length + 3];
                    for (int i = 0; i < bytes.length; i++) {
                        bytes[i] = (byte) (i * 31 + length);
                    }
                    ByteBuffer b = switch (kind) {
                        case "heap" -> ByteBuffer.wrap(bytes, offset, length).slice();
                        case "direct" -> ByteBuffer.allocateDirect(length).put(bytes, offset, length).flip();
                        default -> ByteBuffer.wrap(bytes, offset, length).asReadOnlyBuffer();
                    };
                    return new Write(kind + "Buffer[" + length + "]", w -> w.writeByteBuffer(b));
                });
    }
}
