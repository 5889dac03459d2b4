package io.meshcrypt.filter.records;

import static io.meshcrypt.filter.records.RecordBatches.build;
import static io.meshcrypt.filter.records.RecordBatches.bytes;
import static io.meshcrypt.filter.records.RecordBatches.contiguous;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
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
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Rewritten records written into the thread's {@link OutputArena}: byte-exact whatever else the thread rewrites before
 * the send that carries them, reused only after it, left alone when not sent, and never handed to code outside the
 * outermost scope. Each test compares with the same rewrite made outside any scope (its own exact array).
 */
class OutputArenaTest {
    private static final int LIMIT = 64 << 20;
    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    /** Every byte of every value inverted: the output differs from the input at every value byte. */
    private static final ValueRewriter INVERT = value -> {
        ByteBuffer out = ByteBuffer.allocate(value.remaining());
        for (int i = value.position(); i < value.limit(); i++) {
            out.put((byte) ~value.get(i));
        }
        return out.flip();
    };

    /** Each value three times over: the output is much larger than the rewriter's first guess. */
    private static final ValueRewriter TRIPLE = value -> {
        ByteBuffer out = ByteBuffer.allocate(3 * value.remaining());
        for (int i = 0; i < 3; i++) {
            out.put(value.duplicate());
        }
        return out.flip();
    };

    private int depth;

    @AfterEach
    void leaveScopes() {
        while (depth > 0) {
            exit();
        }
    }

    private void enter() {
        OutputArena.enter();
        depth++;
    }

    private void exit() {
        depth--;
        OutputArena.exit();
    }

    private static MemoryRecords batch(int records, int valueBytes, int seed) {
        List<SimpleRecord> list = new ArrayList<>();
        for (int i = 0; i < records; i++) {
            byte[] value = new byte[valueBytes];
            Arrays.fill(value, (byte) (seed + i));
            list.add(new SimpleRecord(1L, null, value));
        }
        return build(Params.plain(CompressionType.NONE), contiguous(list));
    }

    private static MemoryRecords rewrite(MemoryRecords in, ValueRewriter with) throws RecordRewriteException {
        return RecordBatchRewriter.rewrite(in, with, null, TruncatedTail.PASS_THROUGH, LIMIT);
    }

    /** The rewrite made outside any scope: exactly allocated, what the arena's result must equal. */
    private static byte[] expected(MemoryRecords in, ValueRewriter with) throws RecordRewriteException {
        assertEquals(0, depthOfThisThread(), "expected() runs outside any scope");
        return bytes(rewrite(in, with));
    }

    private static int depthOfThisThread() {
        // A lend only succeeds at depth 1; outside any scope it must be refused.
        ByteBuffer region = OutputArena.lend(1);
        OutputArena.giveBack(region);
        return region == null ? 0 : 1;
    }

    @Test
    void givenOneScope_whenSeveralPartitionsAreRewrittenBeforeTheSend_thenEachKeepsItsOwnBytesInTheSameArray()
            throws Exception {
        MemoryRecords[] partitions = {batch(16, 700, 1), batch(3, 5000, 2), batch(40, 100, 3)};
        byte[][] expected = new byte[partitions.length][];
        for (int i = 0; i < partitions.length; i++) {
            expected[i] = expected(partitions[i], INVERT);
        }

        enter();
        MemoryRecords[] out = new MemoryRecords[partitions.length];
        for (int i = 0; i < partitions.length; i++) {
            out[i] = rewrite(partitions[i], INVERT);
        }

        for (int i = 0; i < partitions.length; i++) {
            assertArrayEquals(expected[i], bytes(out[i]), "partition " + i + " after all of the frame was rewritten");
            assertSame(out[0].buffer().array(), out[i].buffer().array(), "partition " + i + " is in the arena");
        }
        OutputArena.sent();
    }

    @Test
    void givenTwoFramesBeforeOneSend_whenTheSecondIsRewritten_thenTheFirstIsNotOverwritten() throws Exception {
        MemoryRecords first = batch(8, 1000, 10);
        MemoryRecords second = batch(8, 1000, 90);
        byte[] firstExpected = expected(first, INVERT);

        enter();
        MemoryRecords firstOut = rewrite(first, INVERT);
        rewrite(second, INVERT);

        assertArrayEquals(firstExpected, bytes(firstOut));
    }

    @Test
    void givenAFrameSent_whenTheNextFrameIsRewritten_thenItReusesTheSameBytesWithoutAllocatingThem() throws Exception {
        MemoryRecords in = batch(64, 1024, 20);
        byte[] expected = expected(in, INVERT);
        enter();
        MemoryRecords warm = rewrite(in, INVERT);
        OutputArena.sent();

        long before = THREADS.getCurrentThreadAllocatedBytes();
        MemoryRecords out = rewrite(in, INVERT);
        long allocated = THREADS.getCurrentThreadAllocatedBytes() - before;

        assertArrayEquals(expected, bytes(out));
        assertSame(warm.buffer().array(), out.buffer().array());
        assertEquals(warm.buffer().arrayOffset(), out.buffer().arrayOffset(), "written where the sent frame was");
        // The values INVERT allocates (64 KiB) and a few small objects; without the arena the output's 66 KiB more.
        int values = 64 * (1024 + 16);
        assertTrue(allocated < values + 16 * 1024, "allocated " + allocated + " bytes, of which values " + values);
    }

    @Test
    void givenAFrameLargerThanTheArena_whenRewritten_thenItIsExactlyAllocatedAndCorrect() throws Exception {
        MemoryRecords huge = batch(3, OutputArena.MAX_BYTES, 30);
        byte[] expected = expected(huge, INVERT);
        enter();
        MemoryRecords small = rewrite(batch(4, 100, 31), INVERT);

        MemoryRecords out = rewrite(huge, INVERT);

        assertArrayEquals(expected, bytes(out));
        assertEquals(out.buffer().remaining(), out.buffer().array().length, "its own exactly sized array");
        assertNotSame(small.buffer().array(), out.buffer().array());
    }

    @Test
    void givenAnOutputThatOutgrowsTheRegionLent_whenRewritten_thenItContinuesInItsOwnArrayAndIsCorrect()
            throws Exception {
        MemoryRecords in = batch(6, 100_000, 40);
        byte[] expected = expected(in, TRIPLE);
        enter();

        MemoryRecords out = rewrite(in, TRIPLE);
        MemoryRecords next = rewrite(batch(4, 100, 41), INVERT);

        assertArrayEquals(expected, bytes(out));
        assertEquals(out.buffer().remaining(), out.buffer().array().length, "copied out exactly sized");
        assertTrue(out.sizeInBytes() > 3 * in.sizeInBytes() - 1000);
        assertNotSame(next.buffer().array(), out.buffer().array());
    }

    @Test
    void givenAFrameKeptUnsentWhenItsScopeEnded_whenTheThreadRewritesAndSendsOthers_thenTheKeptFrameIsIntact()
            throws Exception {
        // A parked frame: rewritten, then its task ended without sending it (it waits for a data key).
        MemoryRecords parked = batch(16, 900, 50);
        byte[] parkedExpected = expected(parked, INVERT);
        enter();
        MemoryRecords parkedOut = rewrite(parked, INVERT);
        exit();

        // Meanwhile other streams' tasks on the thread rewrite and send, again and again.
        for (int i = 0; i < 3; i++) {
            enter();
            MemoryRecords other = rewrite(batch(16, 900, 60 + i), INVERT);
            assertNotSame(parkedOut.buffer().array(), other.buffer().array(), "the parked frame's array is left to it");
            OutputArena.sent();
            exit();
        }

        assertArrayEquals(parkedExpected, bytes(parkedOut));
    }

    @Test
    void givenANestedScope_whenItRewritesAndSends_thenItGetsNoArenaAndTheOuterFrameIsIntact() throws Exception {
        MemoryRecords outer = batch(8, 2000, 70);
        byte[] outerExpected = expected(outer, INVERT);
        enter();
        MemoryRecords outerOut = rewrite(outer, INVERT);
        long resets = OutputArena.resets();

        // Another stream's callback run inside this task
        enter();
        MemoryRecords innerOut = rewrite(batch(8, 2000, 71), INVERT);
        OutputArena.sent();
        exit();
        MemoryRecords after = rewrite(batch(8, 2000, 72), INVERT);

        assertEquals(innerOut.buffer().remaining(), innerOut.buffer().array().length, "the nested rewrite's own array");
        assertArrayEquals(outerExpected, bytes(outerOut));
        assertNotSame(innerOut.buffer().array(), after.buffer().array());
        assertDoesNotThrow(() -> OutputArena.requireNoResetSince(resets));
    }

    @Test
    void givenNoScope_whenRewritten_thenTheResultIsItsOwnExactArray() throws Exception {
        MemoryRecords out = rewrite(batch(8, 100, 80), INVERT);

        assertEquals(out.buffer().remaining(), out.buffer().array().length);
    }

    @Test
    void givenASendAfterARewriteBegan_whenItsResponseIsAboutToBeSent_thenTheGuardRefusesIt() throws Exception {
        enter();
        long resets = OutputArena.resets();
        rewrite(batch(8, 100, 90), INVERT);

        OutputArena.sent();

        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> OutputArena.requireNoResetSince(resets));
        assertTrue(e.getMessage().contains("refusing to send"), e.getMessage());
    }

    @Test
    void givenARegionLent_whenTheOutermostScopeSendsBeforeItIsCommitted_thenTheCommitFails() throws Exception {
        enter();
        rewrite(batch(2, 100, 91), INVERT);
        ByteBuffer region = OutputArena.lend(100);

        OutputArena.sent();

        assertThrows(IllegalStateException.class, () -> OutputArena.commit(region, 10));
    }
}
