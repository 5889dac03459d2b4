package io.meshcrypt.filter.records;

import static io.meshcrypt.filter.records.RecordBatches.HEADER_SIZE;
import static io.meshcrypt.filter.records.RecordBatches.apply;
import static io.meshcrypt.filter.records.RecordBatches.batches;
import static io.meshcrypt.filter.records.RecordBatches.build;
import static io.meshcrypt.filter.records.RecordBatches.bytes;
import static io.meshcrypt.filter.records.RecordBatches.concat;
import static io.meshcrypt.filter.records.RecordBatches.contiguous;
import static io.meshcrypt.filter.records.RecordBatches.decompressedRecords;
import static io.meshcrypt.filter.records.RecordBatches.fixCrc;
import static io.meshcrypt.filter.records.RecordBatches.headerWithoutLengthAndCrc;
import static io.meshcrypt.filter.records.RecordBatches.onlyBatch;
import static io.meshcrypt.filter.records.RecordBatches.toArray;
import static io.meshcrypt.filter.records.RecordBatches.transformed;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.records.RecordBatches.Entry;
import io.meshcrypt.filter.records.RecordBatches.Params;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.record.internal.CompressionType;
import org.apache.kafka.common.record.internal.ControlRecordType;
import org.apache.kafka.common.record.internal.DefaultRecordBatch;
import org.apache.kafka.common.record.internal.EndTransactionMarker;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.MutableRecordBatch;
import org.apache.kafka.common.record.internal.Record;
import org.apache.kafka.common.record.internal.RecordBatch;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class RecordBatchRewriterTest {

    private static final ValueRewriter MUST_NOT_BE_CALLED = value -> {
        throw new AssertionError("rewriter called for a batch that must stay untouched");
    };

    // --- (1) byte-exact, codec NONE ---------------------------------------------------------------------------

    @Test
    void givenUncompressedIdempotentBatch_whenValuesRewritten_thenBytesEqualBatchBuiltWithRewrittenValues() throws Exception {
        Params params = Params.plain(CompressionType.NONE).idempotent(42L, (short) 3, 17, false);
        List<Entry> entries = contiguous(sampleRecords());
        MemoryRecords input = build(params, entries);

        MemoryRecords output = RecordBatchRewrites.rewrite(input, Transforms.GROW);

        byte[] expected = bytes(build(params, transformed(entries, Transforms.GROW)));
        assertArrayEquals(expected, bytes(output));
        assertEquals(onlyBatch(MemoryRecords.readableRecords(ByteBuffer.wrap(expected))).checksum(),
                onlyBatch(output).checksum());
        onlyBatch(output).ensureValid();
    }

    @Test
    void givenCompactedBatchWithOffsetGapsAndDeleteHorizon_whenValuesRewritten_thenBytesEqualExpected() throws Exception {
        Params params = Params.plain(CompressionType.NONE).deleteHorizon(1_700_000_100_000L);
        List<SimpleRecord> records = sampleRecords();
        List<Entry> entries = List.of(new Entry(0, records.get(0)), new Entry(3, records.get(2)),
                new Entry(7, records.get(3)));
        // Compaction removed offsets after the last kept record: lastOffsetDelta 12 exceeds the last record's 7.
        MemoryRecords input = withLastOffsetDelta(build(params, entries), 12);
        long lastOffset = params.baseOffset() + 12;

        MemoryRecords output = RecordBatchRewrites.rewrite(input, Transforms.GROW);

        MemoryRecords expected = withLastOffsetDelta(build(params, transformed(entries, Transforms.GROW)), 12);
        assertArrayEquals(bytes(expected), bytes(output));
        MutableRecordBatch batch = onlyBatch(output);
        assertEquals(lastOffset, batch.lastOffset());
        assertEquals(1_700_000_100_000L, batch.deleteHorizonMs().orElseThrow());
        assertEquals(List.of(1000L, 1003L, 1007L), offsets(batch));
    }

    // --- (2) every codec -------------------------------------------------------------------------------------

    @ParameterizedTest
    @EnumSource(CompressionType.class)
    void givenBatchWithCodec_whenValuesRewritten_thenHeaderKeptAndOnlyValuesChange(CompressionType codec) throws Exception {
        Params params = Params.plain(codec).idempotent(7L, (short) 1, 100, false);
        List<Entry> entries = contiguous(sampleRecords());
        MemoryRecords input = build(params, entries);
        MutableRecordBatch in = onlyBatch(input);

        MutableRecordBatch out = onlyBatch(RecordBatchRewrites.rewrite(input, Transforms.GROW));

        out.ensureValid();
        assertEquals(codec, out.compressionType());
        assertArrayEquals(headerWithoutLengthAndCrc(in), headerWithoutLengthAndCrc(out));
        assertHeaderFieldsEqual(in, out);
        MutableRecordBatch expected = onlyBatch(build(params, transformed(entries, Transforms.GROW)));
        assertArrayEquals(decompressedRecords(expected), decompressedRecords(out));
        assertRecordsEqualExceptValues(in, out, Transforms.GROW);
    }

    @ParameterizedTest
    @EnumSource(CompressionType.class)
    void givenRewrittenBatch_whenInverseApplied_thenOriginalRecordsRestored(CompressionType codec) throws Exception {
        MemoryRecords input = build(Params.plain(codec), contiguous(sampleRecords()));

        MemoryRecords restored = RecordBatchRewrites.rewrite(
                RecordBatchRewrites.rewrite(input, Transforms.GROW), Transforms.SHRINK);

        MutableRecordBatch in = onlyBatch(input);
        MutableRecordBatch back = onlyBatch(restored);
        back.ensureValid();
        assertArrayEquals(headerWithoutLengthAndCrc(in), headerWithoutLengthAndCrc(back));
        assertArrayEquals(decompressedRecords(in), decompressedRecords(back));
        if (codec == CompressionType.NONE) {
            assertArrayEquals(bytes(input), bytes(restored));
        }
    }

    @ParameterizedTest
    @EnumSource(CompressionType.class)
    void givenDirectInputAndDirectRewrittenValues_whenRewritten_thenSameRecordsAsHeapPath(CompressionType codec)
            throws Exception {
        MemoryRecords heap = build(Params.plain(codec), contiguous(sampleRecords()));
        byte[] raw = bytes(heap);
        ByteBuffer direct = ByteBuffer.allocateDirect(raw.length).put(raw).flip().asReadOnlyBuffer();

        MutableRecordBatch fromDirect = onlyBatch(
                RecordBatchRewrites.rewrite(MemoryRecords.readableRecords(direct), Transforms.GROW_DIRECT));

        MutableRecordBatch fromHeap = onlyBatch(RecordBatchRewrites.rewrite(heap, Transforms.GROW));
        fromDirect.ensureValid();
        assertArrayEquals(headerWithoutLengthAndCrc(fromHeap), headerWithoutLengthAndCrc(fromDirect));
        assertArrayEquals(decompressedRecords(fromHeap), decompressedRecords(fromDirect));
    }

    // --- (3) idempotent/transactional and control batches ----------------------------------------------------

    @Test
    void givenTransactionalZstdBatch_whenValuesRewritten_thenProducerStateAndTransactionalFlagKept() throws Exception {
        MemoryRecords input = MemoryRecords.withTransactionalRecords(Compression.zstd().build(), 4711L, (short) 5, 250,
                sampleRecords().toArray(SimpleRecord[]::new));

        MutableRecordBatch out = onlyBatch(RecordBatchRewrites.rewrite(input, Transforms.GROW));

        out.ensureValid();
        assertTrue(out.isTransactional());
        assertFalse(out.isControlBatch());
        assertEquals(4711L, out.producerId());
        assertEquals((short) 5, out.producerEpoch());
        assertEquals(250, out.baseSequence());
        assertEquals(250 + sampleRecords().size() - 1, out.lastSequence());
        assertHeaderFieldsEqual(onlyBatch(input), out);
    }

    @Test
    void givenControlBatch_whenRewritten_thenInputReturnedUntouched() throws Exception {
        MemoryRecords input = MemoryRecords.withEndTransactionMarker(55L, 4711L, (short) 5,
                new EndTransactionMarker(ControlRecordType.COMMIT, 3));
        byte[] before = bytes(input);

        MemoryRecords output = RecordBatchRewrites.rewrite(input, MUST_NOT_BE_CALLED);

        assertSame(input, output);
        assertArrayEquals(before, bytes(output));
    }

    // --- (4) LogAppendTime -----------------------------------------------------------------------------------

    @ParameterizedTest
    @EnumSource(value = CompressionType.class, names = {"NONE", "LZ4"})
    void givenLogAppendTimeBatch_whenValuesRewritten_thenMaxTimestampAndTimestampDeltasKept(CompressionType codec)
            throws Exception {
        Params params = Params.plain(codec);
        List<Entry> entries = contiguous(sampleRecords());
        long appendTime = 1_700_000_999_000L;
        MemoryRecords input = build(params, entries);
        onlyBatch(input).setMaxTimestamp(TimestampType.LOG_APPEND_TIME, appendTime);

        MemoryRecords output = RecordBatchRewrites.rewrite(input, Transforms.GROW);

        MutableRecordBatch out = onlyBatch(output);
        out.ensureValid();
        assertEquals(TimestampType.LOG_APPEND_TIME, out.timestampType());
        assertEquals(appendTime, out.maxTimestamp());
        // The expected batch carries the producer's original timestamp deltas in its record bytes.
        MemoryRecords expected = build(params, transformed(entries, Transforms.GROW));
        onlyBatch(expected).setMaxTimestamp(TimestampType.LOG_APPEND_TIME, appendTime);
        assertArrayEquals(decompressedRecords(onlyBatch(expected)), decompressedRecords(out));
        if (codec == CompressionType.NONE) {
            assertArrayEquals(bytes(expected), bytes(output));
        }
    }

    // --- (5) truncated trailing batch ------------------------------------------------------------------------

    @Test
    void givenTruncatedTrailingBatch_whenRewritten_thenTailAppendedUntouched() throws Exception {
        byte[] first = bytes(build(Params.plain(CompressionType.NONE), contiguous(sampleRecords())));
        byte[] second = bytes(build(Params.plain(CompressionType.GZIP), contiguous(sampleRecords())));
        byte[] tail = Arrays.copyOf(second, second.length - 10);

        MemoryRecords output = RecordBatchRewrites.rewrite(concat(first, tail), Transforms.GROW);

        byte[] rewrittenFirst = bytes(RecordBatchRewrites.rewrite(concat(first), Transforms.GROW));
        byte[] out = bytes(output);
        assertArrayEquals(rewrittenFirst, Arrays.copyOf(out, rewrittenFirst.length));
        assertArrayEquals(tail, Arrays.copyOfRange(out, rewrittenFirst.length, out.length));
    }

    @Test
    void givenTailShorterThanBatchHeader_whenRewritten_thenTailAppendedUntouched() throws Exception {
        byte[] first = bytes(build(Params.plain(CompressionType.NONE), contiguous(sampleRecords())));
        byte[] tail = Arrays.copyOf(first, 5);

        byte[] out = bytes(RecordBatchRewrites.rewrite(concat(first, tail), Transforms.GROW));

        assertArrayEquals(tail, Arrays.copyOfRange(out, out.length - tail.length, out.length));
        assertEquals(1, batches(MemoryRecords.readableRecords(ByteBuffer.wrap(out))).size());
    }

    @Test
    void givenTruncatedTrailingBatchAndRejectPolicy_whenRewritten_thenRejected() {
        byte[] batch = bytes(build(Params.plain(CompressionType.NONE), contiguous(sampleRecords())));
        MemoryRecords input = concat(batch, Arrays.copyOf(batch, batch.length - 1));

        assertThrows(RecordRewriteException.class, () -> RecordBatchRewrites.rewrite(input, Transforms.GROW,
                RecordBatchRewriter.TruncatedTail.REJECT));
    }

    // --- (6) legacy formats ----------------------------------------------------------------------------------

    @ParameterizedTest
    @EnumSource(value = CompressionType.class, names = {"NONE", "GZIP"})
    void givenLegacyMagicBatch_whenRewritten_thenRejected(CompressionType codec) {
        for (byte magic : new byte[] {RecordBatch.MAGIC_VALUE_V0, RecordBatch.MAGIC_VALUE_V1}) {
            MemoryRecords input = MemoryRecords.withRecords(magic, Compression.of(codec).build(),
                    new SimpleRecord(1L, utf8("k"), utf8("plaintext")));

            RecordRewriteException e = assertThrows(RecordRewriteException.class,
                    () -> RecordBatchRewrites.rewrite(input, Transforms.GROW));

            assertTrue(e.getMessage().contains("magic " + magic), e.getMessage());
        }
    }

    // --- (7) multiple batches --------------------------------------------------------------------------------

    @Test
    void givenMixedBatches_whenRewritten_thenDataBatchesRewrittenAndOthersKeptInOrder() throws Exception {
        List<Entry> entries = contiguous(sampleRecords());
        MemoryRecords none = build(Params.plain(CompressionType.NONE), entries);
        byte[] control = bytes(MemoryRecords.withEndTransactionMarker(2000L, 9L, (short) 0,
                new EndTransactionMarker(ControlRecordType.ABORT, 1)));
        MemoryRecords gzip = build(Params.plain(CompressionType.GZIP), entries);
        byte[] empty = emptyBatch(3000L);
        byte[] tombstones = bytes(build(Params.plain(CompressionType.SNAPPY),
                contiguous(List.of(new SimpleRecord(1L, utf8("a"), null), new SimpleRecord(2L, utf8("b"), null)))));
        MemoryRecords zstd = build(Params.plain(CompressionType.ZSTD), entries);
        MemoryRecords input = concat(bytes(none), control, bytes(gzip), empty, tombstones, bytes(zstd));

        List<MutableRecordBatch> out = batches(RecordBatchRewrites.rewrite(input, Transforms.GROW));

        assertEquals(6, out.size());
        out.forEach(RecordBatch::ensureValid);
        assertArrayEquals(bytes(RecordBatchRewrites.rewrite(none, Transforms.GROW)), bytes(out.get(0)));
        assertArrayEquals(control, bytes(out.get(1)));
        assertRecordsEqualExceptValues(onlyBatch(gzip), out.get(2), Transforms.GROW);
        assertArrayEquals(empty, bytes(out.get(3)));
        assertArrayEquals(tombstones, bytes(out.get(4)));
        assertRecordsEqualExceptValues(onlyBatch(zstd), out.get(5), Transforms.GROW);
        assertEquals(CompressionType.ZSTD, out.get(5).compressionType());
    }

    // --- unchanged input and failures ------------------------------------------------------------------------

    @Test
    void givenOnlyNullValues_whenRewritten_thenInputReturnedItself() throws Exception {
        MemoryRecords input = build(Params.plain(CompressionType.LZ4),
                contiguous(List.of(new SimpleRecord(1L, utf8("a"), null), new SimpleRecord(2L, (byte[]) null, (byte[]) null))));

        assertSame(input, RecordBatchRewrites.rewrite(input, MUST_NOT_BE_CALLED));
        assertSame(MemoryRecords.EMPTY, RecordBatchRewrites.rewrite(MemoryRecords.EMPTY, MUST_NOT_BE_CALLED));
    }

    @Test
    void givenCorruptCrc_whenRewritten_thenRejectedInsteadOfResigned() {
        MemoryRecords input = build(Params.plain(CompressionType.NONE), contiguous(sampleRecords()));
        ByteBuffer buffer = input.buffer();
        buffer.put(buffer.limit() - 1, (byte) (buffer.get(buffer.limit() - 1) ^ 1));

        RecordRewriteException e = assertThrows(RecordRewriteException.class,
                () -> RecordBatchRewrites.rewrite(MemoryRecords.readableRecords(buffer), Transforms.GROW));

        assertTrue(e.getMessage().contains("CRC"), e.getMessage());
    }

    @Test
    void givenMalformedRecordHeaders_whenRewritten_thenExceptionNamesRecordOffset() {
        // The last record has no headers, so the batch's final byte is its header count; make it -1 (zigzag 0x01).
        List<SimpleRecord> records = List.of(new SimpleRecord(1L, utf8("k"), utf8("v1")),
                new SimpleRecord(2L, utf8("k"), utf8("v2")));
        ByteBuffer buffer = ByteBuffer.wrap(bytes(build(Params.plain(CompressionType.NONE), contiguous(records))));
        buffer.put(buffer.limit() - 1, (byte) 0x01);
        fixCrc(buffer, 0);

        RecordRewriteException e = assertThrows(RecordRewriteException.class,
                () -> RecordBatchRewrites.rewrite(MemoryRecords.readableRecords(buffer), Transforms.GROW));

        assertEquals(1001L, e.offset());
        assertTrue(e.getMessage().contains("offset 1001"), e.getMessage());
    }

    @Test
    void givenRecordCountNotMatchingRecords_whenRewritten_thenRejected() {
        for (int count : new int[] {1, 3}) {
            List<SimpleRecord> records = List.of(new SimpleRecord(1L, null, utf8("v1")),
                    new SimpleRecord(2L, null, utf8("v2")));
            ByteBuffer buffer = ByteBuffer.wrap(bytes(build(Params.plain(CompressionType.NONE), contiguous(records))));
            buffer.putInt(57, count);
            fixCrc(buffer, 0);

            RecordRewriteException e = assertThrows(RecordRewriteException.class,
                    () -> RecordBatchRewrites.rewrite(MemoryRecords.readableRecords(buffer), Transforms.GROW));

            assertTrue(e.getMessage().contains("base offset 1000"), e.getMessage());
        }
    }

    @Test
    void givenRewriterFailsWithoutOffset_whenRewritten_thenExceptionCarriesRecordOffset() {
        MemoryRecords input = build(Params.plain(CompressionType.SNAPPY), contiguous(sampleRecords()));
        AtomicInteger calls = new AtomicInteger();
        ValueRewriter failsOnSecond = value -> {
            if (calls.incrementAndGet() == 2) {
                throw new RecordRewriteException("key unavailable", null);
            }
            return value;
        };

        RecordRewriteException e = assertThrows(RecordRewriteException.class,
                () -> RecordBatchRewrites.rewrite(input, failsOnSecond));

        assertEquals(1001L, e.offset()); // the second non-null value belongs to offset 1001
        assertTrue(e.getMessage().contains("key unavailable"), e.getMessage());
    }

    @Test
    void givenRewriterReturnsNull_whenRewritten_thenRejected() {
        MemoryRecords input = build(Params.plain(CompressionType.NONE), contiguous(sampleRecords()));

        RecordRewriteException e = assertThrows(RecordRewriteException.class,
                () -> RecordBatchRewrites.rewrite(input, value -> null));

        assertEquals(1000L, e.offset());
    }

    @Test
    void givenIdentityRewriter_whenRewritten_thenOutputIsANewButEqualBuffer() throws Exception {
        MemoryRecords input = build(Params.plain(CompressionType.NONE), contiguous(sampleRecords()));

        MemoryRecords output = RecordBatchRewrites.rewrite(input, value -> value);

        assertArrayEquals(bytes(input), bytes(output));
    }

    // --- helpers ---------------------------------------------------------------------------------------------

    /** Values cover null, empty, the 63/64-byte varint boundary after growth, and a value larger than a chunk. */
    static List<SimpleRecord> sampleRecords() {
        Header[] two = {new RecordHeader("trace", utf8("abc")), new RecordHeader("nullable", null)};
        Header[] one = {new RecordHeader("h", new byte[0])};
        byte[] big = new byte[20_000];
        new Random(1).nextBytes(big);
        return List.of(
                new SimpleRecord(1_700_000_000_000L, utf8("k0"), utf8("hello"), two),
                new SimpleRecord(1_700_000_000_500L, null, new byte[0]),
                new SimpleRecord(1_699_999_999_000L, utf8("k2"), null, one),
                new SimpleRecord(1_700_000_001_000L, null, filled(63, 'a'), one),
                new SimpleRecord(1_700_000_002_000L, utf8("k4"), big),
                new SimpleRecord(1_700_000_000_001L, new byte[0], filled(300, 'c'), two));
    }

    static void assertHeaderFieldsEqual(RecordBatch in, RecordBatch out) {
        assertEquals(in.baseOffset(), out.baseOffset());
        assertEquals(in.lastOffset(), out.lastOffset());
        assertEquals(in.partitionLeaderEpoch(), out.partitionLeaderEpoch());
        assertEquals(in.magic(), out.magic());
        assertEquals(in.compressionType(), out.compressionType());
        assertEquals(in.timestampType(), out.timestampType());
        assertEquals(in.isTransactional(), out.isTransactional());
        assertEquals(in.isControlBatch(), out.isControlBatch());
        assertEquals(in.deleteHorizonMs(), out.deleteHorizonMs());
        assertEquals(in.maxTimestamp(), out.maxTimestamp());
        assertEquals(in.producerId(), out.producerId());
        assertEquals(in.producerEpoch(), out.producerEpoch());
        assertEquals(in.baseSequence(), out.baseSequence());
        assertEquals(in.countOrNull(), out.countOrNull());
    }

    static void assertRecordsEqualExceptValues(RecordBatch in, RecordBatch out, ValueRewriter f) {
        Iterator<Record> expected = in.iterator();
        Iterator<Record> actual = out.iterator();
        while (expected.hasNext()) {
            assertTrue(actual.hasNext(), "fewer records after rewrite");
            Record e = expected.next();
            Record a = actual.next();
            a.ensureValid();
            assertEquals(e.offset(), a.offset());
            assertEquals(e.timestamp(), a.timestamp());
            assertEquals(e.key(), a.key());
            assertArrayEquals(e.headers(), a.headers());
            if (e.hasValue()) {
                assertEquals(apply(f, e.value()), a.value(), "value at offset " + e.offset());
                assertNotEquals(e.value(), a.value());
            } else {
                assertFalse(a.hasValue());
                assertNull(a.value());
            }
        }
        assertFalse(actual.hasNext(), "more records after rewrite");
    }

    static List<Long> offsets(RecordBatch batch) {
        return java.util.stream.StreamSupport.stream(batch.spliterator(), false).map(Record::offset).toList();
    }

    private static MemoryRecords withLastOffsetDelta(MemoryRecords records, int lastOffsetDelta) {
        ByteBuffer buffer = ByteBuffer.wrap(bytes(records));
        buffer.putInt(23, lastOffsetDelta);
        fixCrc(buffer, 0);
        return MemoryRecords.readableRecords(buffer);
    }

    private static byte[] emptyBatch(long baseOffset) {
        ByteBuffer buffer = ByteBuffer.allocate(HEADER_SIZE);
        DefaultRecordBatch.writeEmptyHeader(buffer, RecordBatch.MAGIC_VALUE_V2, 9L, (short) 0, 5, baseOffset,
                baseOffset + 4, 3, TimestampType.CREATE_TIME, 1_700_000_000_000L, true, false);
        return toArray(buffer.flip());
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static byte[] filled(int length, char c) {
        byte[] out = new byte[length];
        Arrays.fill(out, (byte) c);
        return out;
    }
}
