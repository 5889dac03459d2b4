package io.meshcrypt.filter.records;

import static io.meshcrypt.filter.records.RecordBatches.build;
import static io.meshcrypt.filter.records.RecordBatches.bytes;
import static io.meshcrypt.filter.records.RecordBatches.contiguous;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.records.RecordBatchRewriter.TruncatedTail;
import io.meshcrypt.filter.records.RecordBatches.Params;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.kafka.common.record.internal.CompressionType;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.junit.jupiter.api.Test;

/**
 * The output array a thread reuses from call to call: results are exact copies that later calls never touch, a call
 * allocates about what it returns, and the frame's output budget holds however large the reused array is.
 */
class RecordBatchScratchTest {
    private static final int LIMIT = 1 << 20;
    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    private static MemoryRecords batch(int records, int valueBytes, byte fill) {
        List<SimpleRecord> list = new ArrayList<>();
        for (int i = 0; i < records; i++) {
            byte[] value = new byte[valueBytes];
            Arrays.fill(value, fill);
            list.add(new SimpleRecord(1L, null, value));
        }
        return build(Params.plain(CompressionType.NONE), contiguous(list));
    }

    /** Every value shrunk by {@code by} bytes, as decryption does: the output is smaller than the input. */
    private static ValueRewriter shrinking(int by) {
        return value -> value.duplicate().limit(value.limit() - by);
    }

    @Test
    void givenTwoRewritesOnOneThread_whenTheSecondRuns_thenTheFirstResultIsUnchangedAndExactlySized() throws Exception {
        MemoryRecords first = batch(8, 100, (byte) 1);
        MemoryRecords second = batch(8, 300, (byte) 2);

        MemoryRecords firstOut = RecordBatchRewriter.rewrite(first, value -> value, null, TruncatedTail.REJECT, LIMIT);
        byte[] firstBytes = bytes(firstOut);
        MemoryRecords secondOut = RecordBatchRewriter.rewrite(second, value -> value, null, TruncatedTail.REJECT, LIMIT);

        assertArrayEquals(firstBytes, bytes(firstOut));
        assertArrayEquals(bytes(first), firstBytes);
        assertArrayEquals(bytes(second), bytes(secondOut));
        ByteBuffer buffer = secondOut.buffer();
        assertEquals(buffer.remaining(), buffer.array().length, "the result's array is exactly the rewritten bytes");
    }

    @Test
    void givenAWarmThread_whenABatchIsRewrittenSmaller_thenItAllocatesAboutTheOutputNotAQuarterMoreThanTheInput()
            throws Exception {
        MemoryRecords in = batch(64, 1024, (byte) 3);
        ValueRewriter decrypting = shrinking(60);
        RecordBatchRewriter.rewrite(in, decrypting, null, TruncatedTail.PASS_THROUGH, LIMIT);

        long before = THREADS.getCurrentThreadAllocatedBytes();
        MemoryRecords out = RecordBatchRewriter.rewrite(in, decrypting, null, TruncatedTail.PASS_THROUGH, LIMIT);
        long allocated = THREADS.getCurrentThreadAllocatedBytes() - before;

        int outBytes = out.sizeInBytes();
        assertTrue(outBytes < in.sizeInBytes(), "output " + outBytes + " of input " + in.sizeInBytes());
        // Without the reused array: 1.25x the input for the output stream, then the result. Now: the result and a few
        // small objects (views, the job, the interpreter's boxes before JIT compilation).
        assertTrue(allocated < outBytes + 8 * 1024, "allocated " + allocated + " bytes for " + outBytes + " of output");
    }

    @Test
    void givenALargeReusedArray_whenAFrameWithLittleOutputBudgetLeftIsRewritten_thenTheBudgetStillFailsIt()
            throws Exception {
        // Leaves the thread a reused output array of about 256 KiB.
        RecordBatchRewriter.rewrite(batch(256, 1024, (byte) 4), value -> value, null, TruncatedTail.REJECT, LIMIT);
        MemoryRecords small = batch(16, 1024, (byte) 5);
        FrameBudget budget = new FrameBudget(LIMIT, small.sizeInBytes() / 2);

        FrameBudgetExceededException e = assertThrows(FrameBudgetExceededException.class,
                () -> RecordBatchRewriter.rewrite(small, value -> value, null, TruncatedTail.REJECT, budget));

        assertTrue(e.getMessage().startsWith("Rewritten records need "), e.getMessage());
        assertEquals(0, budget.outputBytes());
    }
}
