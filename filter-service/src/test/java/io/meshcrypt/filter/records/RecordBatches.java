package io.meshcrypt.filter.records;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.record.internal.CompressionType;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.MemoryRecordsBuilder;
import org.apache.kafka.common.record.internal.MutableRecordBatch;
import org.apache.kafka.common.record.internal.RecordBatch;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.apache.kafka.common.utils.internals.BufferSupplier;
import org.apache.kafka.common.utils.internals.ByteBufferOutputStream;
import org.apache.kafka.common.utils.internals.Crc32C;

/** Test fixtures: batch construction with explicit header parameters, and byte-level views of batches. */
final class RecordBatches {
    static final int HEADER_SIZE = 61;

    /** Every v2 header parameter MemoryRecordsBuilder accepts, so expected batches can be built with identical ones. */
    record Params(CompressionType codec, TimestampType timestampType, long baseOffset, long logAppendTime,
                  long producerId, short producerEpoch, int baseSequence, boolean transactional,
                  int partitionLeaderEpoch, long deleteHorizonMs) {

        static Params plain(CompressionType codec) {
            return new Params(codec, TimestampType.CREATE_TIME, 1000L, RecordBatch.NO_TIMESTAMP,
                    RecordBatch.NO_PRODUCER_ID, RecordBatch.NO_PRODUCER_EPOCH, RecordBatch.NO_SEQUENCE, false,
                    9, RecordBatch.NO_TIMESTAMP);
        }

        Params idempotent(long producerId, short epoch, int baseSequence, boolean transactional) {
            return new Params(codec, timestampType, baseOffset, logAppendTime, producerId, epoch, baseSequence,
                    transactional, partitionLeaderEpoch, deleteHorizonMs);
        }

        Params deleteHorizon(long deleteHorizon) {
            return new Params(codec, timestampType, baseOffset, logAppendTime, producerId, producerEpoch, baseSequence,
                    transactional, partitionLeaderEpoch, deleteHorizon);
        }
    }

    /** A record with its offset delta from the batch base offset (gaps model compacted batches). */
    record Entry(int offsetDelta, SimpleRecord record) {
    }

    private RecordBatches() {
    }

    static MemoryRecords build(Params p, List<Entry> entries) {
        ByteBufferOutputStream stream = new ByteBufferOutputStream(1024);
        MemoryRecordsBuilder builder = new MemoryRecordsBuilder(stream, RecordBatch.MAGIC_VALUE_V2,
                Compression.of(p.codec()).build(), p.timestampType(), p.baseOffset(), p.logAppendTime(),
                p.producerId(), p.producerEpoch(), p.baseSequence(), p.transactional(), false,
                p.partitionLeaderEpoch(), Integer.MAX_VALUE, p.deleteHorizonMs());
        for (Entry e : entries) {
            builder.appendWithOffset(p.baseOffset() + e.offsetDelta(), e.record());
        }
        return builder.build();
    }

    static List<Entry> contiguous(List<SimpleRecord> records) {
        List<Entry> entries = new ArrayList<>();
        for (int i = 0; i < records.size(); i++) {
            entries.add(new Entry(i, records.get(i)));
        }
        return entries;
    }

    /** The same entries with every non-null value passed through {@code f}. */
    static List<Entry> transformed(List<Entry> entries, ValueRewriter f) {
        List<Entry> out = new ArrayList<>();
        for (Entry e : entries) {
            SimpleRecord r = e.record();
            ByteBuffer value = r.value() == null ? null : apply(f, r.value());
            out.add(new Entry(e.offsetDelta(), new SimpleRecord(r.timestamp(), r.key(), value, r.headers())));
        }
        return out;
    }

    static ByteBuffer apply(ValueRewriter f, ByteBuffer value) {
        try {
            return f.rewrite(value.duplicate());
        } catch (RecordRewriteException e) {
            throw new AssertionError(e);
        }
    }

    static byte[] bytes(MemoryRecords records) {
        ByteBuffer b = records.buffer();
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }

    static byte[] bytes(RecordBatch batch) {
        ByteBuffer b = ByteBuffer.allocate(batch.sizeInBytes());
        batch.writeTo(b);
        return b.array();
    }

    static MemoryRecords concat(byte[]... parts) {
        int size = Arrays.stream(parts).mapToInt(p -> p.length).sum();
        ByteBuffer b = ByteBuffer.allocate(size);
        for (byte[] p : parts) {
            b.put(p);
        }
        return MemoryRecords.readableRecords(b.flip());
    }

    static List<MutableRecordBatch> batches(MemoryRecords records) {
        List<MutableRecordBatch> out = new ArrayList<>();
        records.batches().forEach(out::add);
        return out;
    }

    static MutableRecordBatch onlyBatch(MemoryRecords records) {
        List<MutableRecordBatch> all = batches(records);
        if (all.size() != 1) {
            throw new AssertionError("expected one batch, got " + all.size());
        }
        return all.get(0);
    }

    /** The 61 header bytes with the two fields a rewrite must change (length, CRC) zeroed. */
    static byte[] headerWithoutLengthAndCrc(RecordBatch batch) {
        byte[] header = Arrays.copyOf(bytes(batch), HEADER_SIZE);
        Arrays.fill(header, 8, 12, (byte) 0);
        Arrays.fill(header, 17, 21, (byte) 0);
        return header;
    }

    /** The decompressed records section: raw record bytes including attributes, deltas and header bytes. */
    static byte[] decompressedRecords(RecordBatch batch) {
        byte[] all = bytes(batch);
        ByteBuffer section = ByteBuffer.wrap(all, HEADER_SIZE, all.length - HEADER_SIZE).slice();
        try (InputStream in = Compression.of(batch.compressionType()).build()
                .wrapForInput(section, RecordBatch.MAGIC_VALUE_V2, BufferSupplier.NO_CACHING)) {
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Recomputes the CRC of the batch starting at {@code start} after a test patched its bytes. */
    static void fixCrc(ByteBuffer buffer, int start) {
        int size = buffer.getInt(start + 8) + 12;
        long crc = Crc32C.compute(buffer.array(), start + 21, size - 21);
        buffer.putInt(start + 17, (int) crc);
    }

    static byte[] toArray(ByteBuffer b) {
        ByteBuffer d = b.duplicate();
        byte[] out = new byte[d.remaining()];
        d.get(out);
        return out;
    }
}
