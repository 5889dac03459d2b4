package io.meshcrypt.filter.records;

import static io.meshcrypt.filter.records.RecordBatches.build;
import static io.meshcrypt.filter.records.RecordBatches.bytes;
import static io.meshcrypt.filter.records.RecordBatches.contiguous;
import static io.meshcrypt.filter.records.RecordBatches.fixCrc;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.records.RecordBatches.Params;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.util.List;
import org.apache.kafka.common.record.internal.CompressionType;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Decompression bombs: a small compressed batch of zeros must fail with a named limit, never exhaust the heap. */
class RecordBatchDecompressionLimitTest {
    private static final int LIMIT = 1 << 20;
    private static final ValueRewriter IDENTITY = value -> value;
    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    /** One record whose value is {@code size} zero bytes: compresses by two to three orders of magnitude. */
    private static MemoryRecords zeros(CompressionType codec, int size) {
        return build(Params.plain(codec), contiguous(List.of(new SimpleRecord(1L, null, new byte[size]))));
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(value = CompressionType.class, names = {"GZIP", "SNAPPY", "LZ4", "ZSTD"})
    void givenBatchOfZerosDecompressingPastTheLimit_whenRewritten_thenFailsNamingTheLimitAndAllocatesLittle(
            CompressionType codec) {
        MemoryRecords bomb = zeros(codec, 8 * LIMIT);
        assertTrue(bomb.sizeInBytes() < LIMIT / 2, "the bomb is small: " + bomb.sizeInBytes());

        long before = THREADS.getCurrentThreadAllocatedBytes();
        RecordRewriteException e = assertThrows(RecordRewriteException.class, () -> RecordBatchRewriter.rewrite(bomb,
                IDENTITY, null, RecordBatchRewriter.TruncatedTail.PASS_THROUGH, LIMIT));
        long allocated = THREADS.getCurrentThreadAllocatedBytes() - before;

        assertEquals("Batch at base offset 1000 decompresses to more than maxDecompressedBytes=" + LIMIT + " bytes",
                e.getMessage());
        // Geometric growth up to the limit sums to under twice the limit, plus codec buffers; the 8 MiB the batch
        // expands to is never held (the unbounded buffer allocated 16 MiB here).
        assertTrue(allocated < 4L * LIMIT, "allocated " + allocated + " bytes");
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(value = CompressionType.class, names = {"GZIP", "SNAPPY", "LZ4", "ZSTD"})
    void givenBatchDecompressingToExactlyTheLimit_whenRewritten_thenItIsRewritten(CompressionType codec)
            throws Exception {
        MemoryRecords small = zeros(codec, 4096);
        int decompressed = RecordBatches.decompressedRecords(RecordBatches.onlyBatch(small)).length;

        MemoryRecords out = RecordBatchRewriter.rewrite(small, Transforms.GROW, null,
                RecordBatchRewriter.TruncatedTail.PASS_THROUGH, decompressed);

        byte[] expected = new byte[4096];
        var value = RecordBatches.onlyBatch(out).iterator().next().value();
        assertArrayEquals(RecordBatches.apply(Transforms.GROW, ByteBuffer.wrap(expected)).array(),
                RecordBatches.toArray(value));
        assertThrows(RecordRewriteException.class, () -> RecordBatchRewriter.rewrite(small, Transforms.GROW, null,
                RecordBatchRewriter.TruncatedTail.PASS_THROUGH, decompressed - 1));
    }

    @Test
    void givenZstdBatchLargerThanTheDefaultLimit_whenRewrittenWithTheDefaults_thenFailsNamingTheDefault() {
        MemoryRecords bomb = zeros(CompressionType.ZSTD, TestLimits.CONFIG.maxDecompressedBytes() + 4096);

        RecordRewriteException e = assertThrows(RecordRewriteException.class,
                () -> RecordBatchRewrites.rewrite(bomb, IDENTITY));

        assertEquals("Batch at base offset 1000 decompresses to more than maxDecompressedBytes="
                + (64 << 20) + " bytes", e.getMessage());
    }

    @Test
    void givenSnappyBlockDeclaringTwoGibibytes_whenRewritten_thenFailsBeforeSnappyAllocatesIt() {
        // A raw snappy block (no stream header) whose length preamble claims 2^31 - 1 bytes: snappy-java would
        // allocate that much before decompressing anything.
        byte[] batch = bytes(zeros(CompressionType.SNAPPY, 16));
        byte[] section = {(byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0x07, 0, 0, 0};
        ByteBuffer forged = ByteBuffer.allocate(RecordBatches.HEADER_SIZE + section.length);
        forged.put(batch, 0, RecordBatches.HEADER_SIZE).put(section).flip();
        forged.putInt(8, forged.limit() - 12);
        fixCrc(forged, 0);

        long before = THREADS.getCurrentThreadAllocatedBytes();
        RecordRewriteException e = assertThrows(RecordRewriteException.class, () -> RecordBatchRewrites.rewrite(
                MemoryRecords.readableRecords(forged), IDENTITY));
        long allocated = THREADS.getCurrentThreadAllocatedBytes() - before;

        assertTrue(e.getMessage().contains("maxDecompressedBytes="), e.getMessage());
        assertTrue(allocated < 1 << 20, "allocated " + allocated + " bytes");
    }

    @Test
    void givenSnappySectionOfTwoConcatenatedStreams_whenRewritten_thenEveryRecordIsRewritten() throws Exception {
        List<SimpleRecord> records = List.of(new SimpleRecord(1L, null, "first".getBytes()),
                new SimpleRecord(2L, null, "second".getBytes()));
        MemoryRecords batch = build(Params.plain(CompressionType.SNAPPY), contiguous(records));
        byte[] raw = RecordBatches.decompressedRecords(RecordBatches.onlyBatch(batch));
        java.io.ByteArrayOutputStream section = new java.io.ByteArrayOutputStream();
        for (int[] part : new int[][] {{0, raw.length / 2}, {raw.length / 2, raw.length}}) {
            java.io.ByteArrayOutputStream one = new java.io.ByteArrayOutputStream();
            try (org.xerial.snappy.SnappyOutputStream out = new org.xerial.snappy.SnappyOutputStream(one)) {
                out.write(raw, part[0], part[1] - part[0]);
            }
            section.writeBytes(one.toByteArray());
        }
        byte[] header = bytes(batch);
        ByteBuffer forged = ByteBuffer.allocate(RecordBatches.HEADER_SIZE + section.size());
        forged.put(header, 0, RecordBatches.HEADER_SIZE).put(section.toByteArray()).flip();
        forged.putInt(8, forged.limit() - 12);
        fixCrc(forged, 0);

        MemoryRecords out = RecordBatchRewrites.rewrite(MemoryRecords.readableRecords(forged), Transforms.GROW);

        List<String> values = new java.util.ArrayList<>();
        for (var r : RecordBatches.onlyBatch(out)) {
            byte[] v = RecordBatches.toArray(Transforms.SHRINK.rewrite(r.value()));
            values.add(new String(v));
        }
        assertEquals(List.of("first", "second"), values);
    }
}
