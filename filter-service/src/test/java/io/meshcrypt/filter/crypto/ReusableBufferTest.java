package io.meshcrypt.filter.crypto;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

/** The array and the views a record rewriter's cipher calls share: reused per record, never per-record objects. */
class ReusableBufferTest {

    @Test
    void givenAnArrayThatDoesNotGrow_whenViewedTwice_thenTheSameBufferIsRepositionedOverIt() {
        ReusableBuffer reuse = new ReusableBuffer();
        byte[] array = reuse.atLeast(100);
        ByteBuffer first = reuse.view(100);
        first.position(40);

        assertSame(array, reuse.atLeast(60));
        ByteBuffer second = reuse.view(60);

        assertSame(first, second);
        assertSame(array, second.array());
        assertEquals(0, second.position());
        assertEquals(60, second.limit());
    }

    @Test
    void givenAnArrayThatGrows_whenViewed_thenTheViewIsOverTheNewArray() {
        ReusableBuffer reuse = new ReusableBuffer();
        reuse.atLeast(10);
        ByteBuffer small = reuse.view(10);

        byte[] grown = reuse.atLeast(10_000);
        ByteBuffer large = reuse.view(10_000);

        assertNotSame(small, large);
        assertSame(grown, large.array());
        assertEquals(10_000, large.remaining());
    }

    @Test
    void givenTheFirstValue_whenTheArrayIsAllocated_thenItIsSizedByThatValueNotAFixedFourKibibytes() {
        ReusableBuffer reuse = new ReusableBuffer();

        assertTrue(reuse.atLeast(1_100).length < 4096, "sized " + reuse.atLeast(1_100).length);
        assertTrue(reuse.atLeast(1_101).length >= 2_200, "grows by doubling");
    }

    @Test
    void givenOneBatchViewRepositionedPerRecord_whenEnvelopeViewsAreTaken_thenTheyAreMadeOnceAndCoverTheAskedRanges() {
        ByteBuffer batch = ByteBuffer.wrap(new byte[1000]);
        for (int i = 0; i < 1000; i++) {
            batch.put(i, (byte) i);
        }
        ByteBuffer values = batch.duplicate();
        ReusableBuffer reuse = new ReusableBuffer();

        values.limit(300).position(100);
        ByteBuffer header1 = reuse.headerView(values, 100, 150);
        ByteBuffer body1 = reuse.bodyView(values, 162, 300);
        values.limit(900).position(500);
        ByteBuffer header2 = reuse.headerView(values, 500, 550);
        ByteBuffer body2 = reuse.bodyView(values, 562, 900);

        assertSame(header1, header2);
        assertSame(body1, body2);
        assertNotSame(header2, body2);
        assertEquals(500, header2.position());
        assertEquals(550, header2.limit());
        assertEquals((byte) 500, header2.get(header2.position()));
        assertEquals(562, body2.position());
        assertEquals(900, body2.limit());
        // the caller's view is not moved
        assertEquals(500, values.position());
        assertEquals(900, values.limit());
    }
}
