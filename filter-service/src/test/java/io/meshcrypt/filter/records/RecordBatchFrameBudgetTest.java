package io.meshcrypt.filter.records;

import static io.meshcrypt.filter.records.RecordBatches.build;
import static io.meshcrypt.filter.records.RecordBatches.bytes;
import static io.meshcrypt.filter.records.RecordBatches.concat;
import static io.meshcrypt.filter.records.RecordBatches.contiguous;
import static io.meshcrypt.filter.records.RecordBatches.fixCrc;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.records.RecordBatchRewriter.TruncatedTail;
import io.meshcrypt.filter.records.RecordBatches.Params;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.apache.kafka.common.record.internal.CompressionType;
import org.apache.kafka.common.record.internal.ControlRecordType;
import org.apache.kafka.common.record.internal.EndTransactionMarker;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * One budget per frame: the batches of all partitions of one Produce request or Fetch response together may decompress
 * to, and rewrite into, a bounded number of bytes; Produce carries exactly one data batch per partition; zstd headers
 * are checked before the decoder allocates.
 */
class RecordBatchFrameBudgetTest {
    private static final int LIMIT = 1 << 20;
    private static final ValueRewriter IDENTITY = value -> value;
    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    private static MemoryRecords zeros(CompressionType codec, int size) {
        return build(Params.plain(codec), contiguous(List.of(new SimpleRecord(1L, null, new byte[size]))));
    }

    private static MemoryRecords values(CompressionType codec, String... values) {
        List<SimpleRecord> records = new ArrayList<>();
        for (String v : values) {
            records.add(new SimpleRecord(1L, null, v.getBytes()));
        }
        return build(Params.plain(codec), contiguous(records));
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(value = CompressionType.class, names = {"GZIP", "SNAPPY", "LZ4", "ZSTD"})
    void givenEightPartitionsEachJustUnderTheLimit_whenRewrittenWithOneFrameBudget_thenTheSecondFailsAndLittleIsAllocated(
            CompressionType codec) throws Exception {
        MemoryRecords bomb = zeros(codec, LIMIT - 4096);
        // Each partition alone is accepted, as before: the per-batch limit never stopped this attack.
        RecordBatchRewriter.rewrite(bomb, IDENTITY, null, TruncatedTail.REJECT, LIMIT);
        FrameBudget frame = new FrameBudget(LIMIT, Long.MAX_VALUE);
        int each = RecordBatches.decompressedRecords(RecordBatches.onlyBatch(bomb)).length;

        long before = THREADS.getCurrentThreadAllocatedBytes();
        RecordBatchRewriter.rewrite(bomb, IDENTITY, null, TruncatedTail.REJECT, frame);
        FrameBudgetExceededException e = assertThrows(FrameBudgetExceededException.class,
                () -> RecordBatchRewriter.rewrite(bomb, IDENTITY, null, TruncatedTail.REJECT, frame));
        for (int partition = 2; partition < 8; partition++) {
            assertThrows(FrameBudgetExceededException.class,
                    () -> RecordBatchRewriter.rewrite(bomb, IDENTITY, null, TruncatedTail.REJECT, frame));
        }
        long allocated = THREADS.getCurrentThreadAllocatedBytes() - before;

        assertEquals("Batch at base offset 1000 decompresses to more than the " + (LIMIT - each) + " bytes left of"
                + " maxDecompressedBytes=" + LIMIT + " for this frame", e.getMessage());
        // The first partition, and what the second got before failing (snappy's lengths are checked up front: nothing).
        assertTrue(frame.decompressedBytes() >= each && frame.decompressedBytes() <= LIMIT,
                "charged " + frame.decompressedBytes());
        // One partition's worth (scratch + output, each under twice the limit) plus codec buffers, not eight.
        assertTrue(allocated < 6L * LIMIT, "allocated " + allocated + " bytes");
    }

    @Test
    void givenFrameBudgetUsedUp_whenAnUncompressedPartitionIsRewritten_thenItStillPassesBecauseItDecompressesNothing()
            throws Exception {
        MemoryRecords first = zeros(CompressionType.GZIP, 4000);
        FrameBudget frame = new FrameBudget(RecordBatches.decompressedRecords(RecordBatches.onlyBatch(first)).length,
                Long.MAX_VALUE);
        RecordBatchRewriter.rewrite(first, IDENTITY, null, TruncatedTail.REJECT, frame);

        MemoryRecords out = RecordBatchRewriter.rewrite(values(CompressionType.NONE, "a"), Transforms.GROW, null,
                TruncatedTail.REJECT, frame);

        assertEquals(1, RecordBatches.batches(out).size());
        assertThrows(FrameBudgetExceededException.class, () -> RecordBatchRewriter.rewrite(
                values(CompressionType.GZIP, "a"), IDENTITY, null, TruncatedTail.REJECT, frame));
    }

    @Test
    void givenOutputBudget_whenRewrittenOutputFitsExactly_thenRewrittenAndOneByteLessFails() throws Exception {
        MemoryRecords input = values(CompressionType.NONE, "x".repeat(10_000), "y".repeat(10_000));
        int outputSize = RecordBatchRewrites.rewrite(input, Transforms.GROW).sizeInBytes();

        FrameBudget exact = new FrameBudget(LIMIT, outputSize);
        MemoryRecords out = RecordBatchRewriter.rewrite(input, Transforms.GROW, null, TruncatedTail.REJECT, exact);
        assertEquals(outputSize, out.sizeInBytes());
        assertEquals(outputSize, exact.outputBytes());

        FrameBudgetExceededException e = assertThrows(FrameBudgetExceededException.class, () ->
                RecordBatchRewriter.rewrite(input, Transforms.GROW, null, TruncatedTail.REJECT,
                        new FrameBudget(LIMIT, outputSize - 1)));
        assertTrue(e.getMessage().contains("output limit of " + (outputSize - 1)), e.getMessage());
    }

    @Test
    void givenTwoPartitionsSharingAnOutputBudget_whenTheSecondDoesNotFit_thenItFails() throws Exception {
        MemoryRecords input = values(CompressionType.NONE, "x".repeat(10_000));
        int outputSize = RecordBatchRewrites.rewrite(input, Transforms.GROW).sizeInBytes();
        FrameBudget frame = new FrameBudget(LIMIT, 2L * outputSize - 1);

        RecordBatchRewriter.rewrite(input, Transforms.GROW, null, TruncatedTail.PASS_THROUGH, frame);

        assertThrows(FrameBudgetExceededException.class, () -> RecordBatchRewriter.rewrite(input, Transforms.GROW, null,
                TruncatedTail.PASS_THROUGH, frame));
    }

    @Test
    void givenHugeValueGrownByTheRewriterOnCompressedBatch_whenOutputBudgetIsSmall_thenFailsBeforeHoldingIt() {
        MemoryRecords input = zeros(CompressionType.ZSTD, 512 * 1024);
        ValueRewriter quadruple = value -> ByteBuffer.allocate(value.remaining() * 4);

        assertThrows(FrameBudgetExceededException.class, () -> RecordBatchRewriter.rewrite(input, quadruple, null,
                TruncatedTail.REJECT, new FrameBudget(LIMIT, 1024 * 1024)));
    }

    // --- Produce rules (REJECT) -------------------------------------------------------------------------------

    @Test
    void givenProducePartitionWithTwoBatches_whenRewrittenForProduce_thenRefusedButAFetchStillRewritesBoth()
            throws Exception {
        MemoryRecords two = concat(bytes(values(CompressionType.NONE, "a")), bytes(values(CompressionType.NONE, "b")));

        RecordRewriteException e = assertThrows(RecordRewriteException.class,
                () -> RecordBatchRewrites.rewrite(two, Transforms.GROW, TruncatedTail.REJECT));

        assertEquals("Produce partition carries more than one record batch (the broker accepts exactly one per"
                + " partition since Produce v3)", e.getMessage());
        assertEquals(2, RecordBatches.batches(RecordBatchRewrites.rewrite(two, Transforms.GROW)).size());
    }

    @Test
    void givenControlBatchInProduce_whenRewrittenForProduce_thenRefused() {
        MemoryRecords control = MemoryRecords.withEndTransactionMarker(2000L, 9L, (short) 0,
                new EndTransactionMarker(ControlRecordType.COMMIT, 3));

        RecordRewriteException e = assertThrows(RecordRewriteException.class,
                () -> RecordBatchRewrites.rewrite(control, Transforms.GROW, TruncatedTail.REJECT));

        assertEquals("Produce carries a control batch at base offset 0; only brokers write control batches",
                e.getMessage());
    }

    @Test
    void givenControlBatchInFetch_whenRewritten_thenKeptByteForByte() throws Exception {
        MemoryRecords control = MemoryRecords.withEndTransactionMarker(2000L, 9L, (short) 0,
                new EndTransactionMarker(ControlRecordType.COMMIT, 3));

        assertSame(control, RecordBatchRewrites.rewrite(control, Transforms.GROW, TruncatedTail.PASS_THROUGH));
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(TruncatedTail.class)
    void givenBatchWithCountZeroFollowedByRecordBytes_whenRewritten_thenCorrupt(TruncatedTail mode) {
        // A valid one-record batch whose count says 0: the record would pass unrewritten.
        ByteBuffer forged = ByteBuffer.wrap(bytes(values(CompressionType.NONE, "plaintext")));
        forged.putInt(57, 0);
        fixCrc(forged, 0);
        int recordBytes = forged.limit() - RecordBatches.HEADER_SIZE;

        RecordRewriteException e = assertThrows(RecordRewriteException.class, () -> RecordBatchRewrites.rewrite(
                MemoryRecords.readableRecords(forged), Transforms.GROW, mode));

        assertEquals("Corrupt batch at base offset 1000: record count 0 but " + recordBytes + " bytes of records",
                e.getMessage());
    }

    @Test
    void givenHeaderOnlyEmptyBatchInProduce_whenRewritten_thenPassedUnchangedForTheBrokerToJudge() throws Exception {
        ByteBuffer forged = ByteBuffer.wrap(bytes(values(CompressionType.NONE, "x")), 0, RecordBatches.HEADER_SIZE)
                .slice();
        forged.putInt(8, RecordBatches.HEADER_SIZE - 12).putInt(57, 0);
        fixCrc(forged, 0);
        MemoryRecords empty = MemoryRecords.readableRecords(forged);

        assertSame(empty, RecordBatchRewrites.rewrite(empty, Transforms.GROW, TruncatedTail.REJECT));
    }

    // --- zstd frame header -------------------------------------------------------------------------------------

    /** A zstd batch whose records section is {@code section}, with valid length and CRC. */
    private static MemoryRecords zstdSection(byte[] section) {
        byte[] header = bytes(zeros(CompressionType.ZSTD, 16));
        ByteBuffer forged = ByteBuffer.allocate(RecordBatches.HEADER_SIZE + section.length);
        forged.put(header, 0, RecordBatches.HEADER_SIZE).put(section).flip();
        forged.putInt(8, forged.limit() - 12);
        fixCrc(forged, 0);
        return MemoryRecords.readableRecords(forged);
    }

    @Test
    void givenZstdFrameDeclaringA128MiBWindow_whenRewritten_thenRefusedBeforeDecompressing() {
        // Magic, descriptor 0x00 (no content size, not single segment), window descriptor 0x88: 2^(10+17) bytes.
        byte[] section = {0x28, (byte) 0xB5, 0x2F, (byte) 0xFD, 0x00, (byte) 0x88, 0, 0, 0, 0, 0, 0};

        RecordRewriteException e = assertThrows(RecordRewriteException.class, () -> RecordBatchRewriter.rewrite(
                zstdSection(section), IDENTITY, null, TruncatedTail.PASS_THROUGH, new FrameBudget(64 << 20, 1 << 20)));

        assertEquals("Batch at base offset 1000 declares a zstd window of 134217728 bytes, more than"
                + " maxDecompressedBytes=" + (64 << 20), e.getMessage());
    }

    @Test
    void givenSingleSegmentZstdFrameLargerThanWhatIsLeft_whenRewritten_thenBudgetExceededBeforeDecompressing() {
        // Descriptor 0xE0: 8-byte content size, single segment; content size 1 GiB, little endian.
        byte[] section = {0x28, (byte) 0xB5, 0x2F, (byte) 0xFD, (byte) 0xE0, 0, 0, 0, 0x40, 0, 0, 0, 0, 1, 0, 0};

        MemoryRecords batch = zstdSection(section);
        // Class loading and initialization are not the decoder's allocations.
        assertThrows(FrameBudgetExceededException.class, () ->
                RecordBatchRewriter.rewrite(batch, IDENTITY, null, TruncatedTail.PASS_THROUGH, LIMIT));

        long before = THREADS.getCurrentThreadAllocatedBytes();
        FrameBudgetExceededException e = assertThrows(FrameBudgetExceededException.class, () ->
                RecordBatchRewriter.rewrite(batch, IDENTITY, null, TruncatedTail.PASS_THROUGH, LIMIT));
        long allocated = THREADS.getCurrentThreadAllocatedBytes() - before;

        assertEquals("Batch at base offset 1000 declares a zstd frame of 1073741824 bytes, more than the " + LIMIT
                + " bytes left of maxDecompressedBytes=" + LIMIT + " for this frame", e.getMessage());
        assertTrue(allocated < 64 * 1024, "allocated " + allocated + " bytes");
    }

    @Test
    void givenZstdFrameWithTheReservedBitSet_whenRewritten_thenRefused() {
        byte[] section = {0x28, (byte) 0xB5, 0x2F, (byte) 0xFD, 0x08, 0x00, 0, 0, 0, 0};

        RecordRewriteException e = assertThrows(RecordRewriteException.class,
                () -> RecordBatchRewrites.rewrite(zstdSection(section), IDENTITY));

        assertEquals("Could not decompress batch at base offset 1000 with zstd: the frame header sets its reserved bit",
                e.getMessage());
    }

    // --- inspect ---------------------------------------------------------------------------------------------

    @ParameterizedTest(name = "{0}")
    @EnumSource(value = CompressionType.class, names = {"NONE", "GZIP", "ZSTD"})
    void givenBatch_whenInspected_thenEveryValueIsSeenInOrderAndTheBudgetIsCharged(CompressionType codec)
            throws Exception {
        MemoryRecords input = values(codec, "one", "two", "three");
        byte[] before = bytes(input);
        List<String> seen = new ArrayList<>();
        FrameBudget frame = new FrameBudget(LIMIT, 1);

        RecordBatchRewriter.inspect(input, value -> {
            seen.add(new String(RecordBatches.toArray(value)));
            return ByteBuffer.allocate(100);
        }, TruncatedTail.REJECT, frame);

        assertEquals(List.of("one", "two", "three"), seen);
        assertArrayEquals(before, bytes(input));
        assertEquals(0, frame.outputBytes());
        assertEquals(codec == CompressionType.NONE ? 0 : RecordBatches.decompressedRecords(
                RecordBatches.onlyBatch(input)).length, frame.decompressedBytes());
    }

    @Test
    void givenInspectorThatThrows_whenInspected_thenTheErrorNamesTheRecord() {
        MemoryRecords input = values(CompressionType.NONE, "ok", "bad");

        RecordRewriteException e = assertThrows(RecordRewriteException.class, () -> RecordBatchRewriter.inspect(input,
                value -> {
                    if (value.remaining() == 3) {
                        throw new RecordRewriteException("refused", null);
                    }
                    return value;
                }, TruncatedTail.REJECT, new FrameBudget(LIMIT, 1)));

        assertEquals("Value of record at offset 1001 could not be rewritten: refused", e.getMessage());
    }
}
