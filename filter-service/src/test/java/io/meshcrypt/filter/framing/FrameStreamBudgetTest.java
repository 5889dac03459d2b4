package io.meshcrypt.filter.framing;

import static io.meshcrypt.filter.framing.FrameStreamPropertyTest.frame;
import static io.meshcrypt.filter.framing.FrameStreamPropertyTest.transformed;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

/** The held-bytes budget and the held-since clock of {@link FrameStream}. */
class FrameStreamBudgetTest {

    /** REWRITE when the first head byte is 'R', PASS otherwise. */
    private static final class ByFirstByte implements FrameHandler {
        @Override
        public FrameAction onFrameStart(int size, ByteBuffer head) {
            return head.remaining() > 0 && head.get(head.position()) == 'R' ? FrameAction.REWRITE : FrameAction.PASS;
        }

        @Override
        public ByteString rewrite(ByteBuffer frame, ByteString original) {
            byte[] body = new byte[frame.remaining()];
            frame.get(body);
            return ByteString.copyFrom(transformed(body));
        }
    }

    /** A REWRITE frame whose size field announces {@code size} bytes, with only its first {@code sent} body bytes. */
    private static ByteString announced(int size, int sent) {
        byte[] body = new byte[sent];
        body[0] = 'R';
        return ByteString.copyFrom(ByteBuffer.allocate(4 + sent).putInt(size).put(body).array());
    }

    private static byte[] rewriteBody(int size) {
        byte[] body = new byte[size];
        body[0] = 'R';
        return body;
    }

    @Test
    void givenRewriteFrameAnnounced_whenOnlyPartOfItArrives_thenTheTotalIsChargedOnlyTheBytesReceived() throws Exception {
        HeldBytesBudget budget = new HeldBytesBudget(1 << 20, 1 << 20, 3);
        HeldBytesBudget.Account connection = budget.newAccount();
        FrameStream stream = new FrameStream(1, 1 << 20, new ByFirstByte(), connection);

        ByteString out = stream.accept(announced(100_000, 1));
        long afterHead = budget.heldBytes();
        stream.accept(ByteString.copyFrom(new byte[1000]));

        assertTrue(out.isEmpty());
        assertEquals(5, afterHead, "size field and head only: what was received");
        assertEquals(1005, budget.heldBytes());
        assertEquals(1005, stream.reservedBytes());
        assertEquals(100_004, connection.admittedBytes(), "the announced size counts against the connection");
    }

    @Test
    void givenRewriteFrameCompleted_whenRewritten_thenReservationReleased() throws Exception {
        HeldBytesBudget budget = new HeldBytesBudget(1 << 20, 1 << 20, 3);
        HeldBytesBudget.Account connection = budget.newAccount();
        FrameStream stream = new FrameStream(1, 1 << 20, new ByFirstByte(), connection);
        byte[] wire = frame(rewriteBody(5000));

        stream.accept(ByteString.copyFrom(wire, 0, 100));
        long duringFrame = budget.heldBytes();
        ByteString out = stream.accept(ByteString.copyFrom(wire, 100, wire.length - 100));

        assertEquals(100, duringFrame);
        assertArrayEquals(transformed(rewriteBody(5000)), out.toByteArray());
        assertEquals(0, budget.heldBytes());
        assertEquals(0, stream.reservedBytes());
        assertEquals(0, connection.admittedBytes());
    }

    @Test
    void givenFrameBeingRewritten_whenTheHandlerRuns_thenTheTotalIsChargedThreeTimesTheFrameUntilItReturns()
            throws Exception {
        HeldBytesBudget budget = new HeldBytesBudget(1 << 20, 1 << 20, 3);
        long[] seenByHandler = new long[1];
        FrameStream stream = new FrameStream(1, 1 << 20, new FrameHandler() {
            @Override
            public FrameAction onFrameStart(int size, ByteBuffer head) {
                return FrameAction.REWRITE;
            }

            @Override
            public ByteString rewrite(ByteBuffer frame, ByteString original) {
                seenByHandler[0] = budget.heldBytes();
                return ByteString.copyFrom(new byte[] {0, 0, 0, 0});
            }
        }, budget.newAccount());

        ByteString out = stream.accept(ByteString.copyFrom(frame(rewriteBody(2000))));

        assertEquals(3 * 2004, seenByHandler[0], "held frame + private copy + output, charged while the rewrite runs");
        assertArrayEquals(new byte[] {0, 0, 0, 0}, out.toByteArray());
        assertEquals(0, budget.heldBytes());
    }

    @Test
    void givenTotalThatHoldsTheFrameButNotItsCopies_whenTheFrameCompletes_thenFailsNamingTheTotalAndReleasesAll() {
        HeldBytesBudget budget = new HeldBytesBudget(1 << 20, 2 * 2004, 3);
        HeldBytesBudget.Account connection = budget.newAccount();
        FrameStream stream = new FrameStream(1, 1 << 20, new ByFirstByte(), connection);

        KafkaFrameException e = assertThrows(KafkaFrameException.class,
                () -> stream.accept(ByteString.copyFrom(frame(rewriteBody(2000)))));

        assertTrue(e.getMessage().contains("limits.maxHeldBytesTotal"), e.getMessage());
        assertEquals(0, budget.heldBytes());
        assertEquals(0, connection.admittedBytes());
    }

    @Test
    void givenFrameAbovePerConnectionBudget_whenHeadArrives_thenFailsNamingThatBudgetAndReservesNothing() {
        HeldBytesBudget budget = new HeldBytesBudget(1000, 1 << 20, 3);
        FrameStream stream = new FrameStream(1, 1 << 20, new ByFirstByte(), budget.newAccount());

        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> stream.accept(announced(997, 1)));

        assertTrue(e.getMessage().contains("limits.maxHeldBytesPerConnection"), e.getMessage());
        assertTrue(e.getMessage().contains("1001"), e.getMessage());
        assertEquals(0, budget.heldBytes());
        assertThrows(KafkaFrameException.class, () -> stream.accept(ByteString.copyFrom(frame("ok".getBytes()))),
                "the stream stays failed");
    }

    @Test
    void givenBothDirectionsHolding_whenTogetherAbovePerConnectionBudget_thenTheSecondFails() throws Exception {
        HeldBytesBudget budget = new HeldBytesBudget(1500, 1 << 20, 3);
        HeldBytesBudget.Account connection = budget.newAccount();
        FrameStream requests = new FrameStream(1, 1 << 20, new ByFirstByte(), connection);
        FrameStream responses = new FrameStream(1, 1 << 20, new ByFirstByte(), connection);
        requests.accept(announced(996, 1));

        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> responses.accept(announced(996, 1)));

        assertTrue(e.getMessage().contains("limits.maxHeldBytesPerConnection"), e.getMessage());
        assertEquals(1000, connection.admittedBytes());
        assertEquals(5, connection.heldBytes(), "only the received bytes are charged to the total");
        assertEquals(5, budget.heldBytes());
    }

    @Test
    void givenSilentConnectionsThatAnnouncedLargeFrames_whenAnotherConnectionRewritesAFrame_thenItIsNotLockedOut()
            throws Exception {
        // Review item 2: `06 3F FF FC 00 00 00 09 ...` (a 100 MiB Produce) from a few connections used to reserve the
        // whole total up front. Each announcement here alone exceeds the total.
        HeldBytesBudget budget = new HeldBytesBudget(200_000, 30_000, 3);
        for (int i = 0; i < 3; i++) {
            FrameStream silent = new FrameStream(1, 1 << 20, new ByFirstByte(), budget.newAccount());
            silent.accept(announced(100_000, 8));
        }
        FrameStream innocent = new FrameStream(1, 1 << 20, new ByFirstByte(), budget.newAccount());

        ByteString out = innocent.accept(ByteString.copyFrom(frame(rewriteBody(5000))));

        assertArrayEquals(transformed(rewriteBody(5000)), out.toByteArray());
        assertEquals(3 * 12, budget.heldBytes(), "the silent connections hold what they sent");
    }

    @Test
    void givenGlobalBudgetFilledWithBytesReallyHeld_whenAFrameNeedsMore_thenOnlyThatConnectionFailsNamingTheTotal()
            throws Exception {
        HeldBytesBudget budget = new HeldBytesBudget(100_000, 25_000, 3);
        FrameStream trickler = new FrameStream(1, 1 << 20, new ByFirstByte(), budget.newAccount());
        trickler.accept(announced(50_000, 20_000));
        FrameStream other = new FrameStream(1, 1 << 20, new ByFirstByte(), budget.newAccount());
        other.accept(announced(10_000, 1));

        KafkaFrameException e = assertThrows(KafkaFrameException.class,
                () -> other.accept(ByteString.copyFrom(new byte[6000])));

        assertTrue(e.getMessage().contains("limits.maxHeldBytesTotal"), e.getMessage());
        assertEquals(20_004, budget.heldBytes(), "the failed connection's bytes are released, the trickler's kept");
        // Frames that are not held never count: a PASS frame still flows on a fresh connection.
        FrameStream small = new FrameStream(1, 1 << 20, new ByFirstByte(), budget.newAccount());
        byte[] pass = frame(new byte[50_000]);
        assertArrayEquals(pass, small.accept(ByteString.copyFrom(pass)).toByteArray());
        assertEquals(20_004, budget.heldBytes());
    }

    @Test
    void givenConnectionHoldingFrames_whenStreamsAndAccountClosed_thenEverythingReleased() throws Exception {
        HeldBytesBudget budget = new HeldBytesBudget(1 << 20, 1 << 20, 3);
        HeldBytesBudget.Account connection = budget.newAccount();
        FrameStream requests = new FrameStream(1, 1 << 20, new ByFirstByte(), connection);
        FrameStream responses = new FrameStream(1, 1 << 20, new ByFirstByte(), connection);
        requests.accept(announced(4000, 10));
        responses.accept(announced(6000, 10));
        assertEquals(28, budget.heldBytes());
        assertEquals(10_008, connection.admittedBytes());

        requests.close();
        assertEquals(14, budget.heldBytes());
        assertEquals(6004, connection.admittedBytes());
        responses.close();
        responses.close();
        connection.close();

        assertEquals(0, budget.heldBytes());
        assertEquals(0, connection.admittedBytes());
        assertFalse(requests.holdsPartialFrame());
        assertThrows(KafkaFrameException.class, () -> requests.accept(ByteString.copyFrom(frame("x".getBytes()))));
    }

    @Test
    void givenHandlerFailsOnAHeldFrame_whenRewriteThrows_thenReservationReleased() {
        HeldBytesBudget budget = new HeldBytesBudget(1 << 20, 1 << 20, 3);
        FrameStream stream = new FrameStream(1, 1 << 20, new FrameHandler() {
            @Override
            public FrameAction onFrameStart(int size, ByteBuffer head) {
                return FrameAction.REWRITE;
            }

            @Override
            public ByteString rewrite(ByteBuffer frame, ByteString original) {
                throw new StackOverflowError("simulated");
            }
        }, budget.newAccount());

        assertThrows(StackOverflowError.class, () -> stream.accept(ByteString.copyFrom(frame(rewriteBody(300)))));

        assertEquals(0, budget.heldBytes());
    }

    @Test
    void givenPartialFrame_whenHeldAcrossChunks_thenHeldSinceIsItsFirstChunkAndClearsWhenComplete() throws Exception {
        FrameStream stream = new FrameStream(1, 1 << 20, new ByFirstByte());
        byte[] wire = frame(rewriteBody(1000));
        assertEquals(FrameStream.NOT_HOLDING, stream.heldSinceNanos());

        long before = System.nanoTime();
        stream.accept(ByteString.copyFrom(wire, 0, 2));
        long after = System.nanoTime();
        long since = stream.heldSinceNanos();
        Thread.sleep(5);
        stream.accept(ByteString.copyFrom(wire, 2, 500));
        long sinceLater = stream.heldSinceNanos();
        stream.accept(ByteString.copyFrom(wire, 502, wire.length - 502));

        assertTrue(since - before >= 0 && after - since >= 0, "measured when the first byte arrived");
        assertEquals(since, sinceLater, "more bytes of the same frame do not move the clock");
        assertEquals(FrameStream.NOT_HOLDING, stream.heldSinceNanos());
    }

    @Test
    void givenFrameCompletesAndTheNextStartsInTheSameChunk_whenHeld_thenClockRestartsForTheNewFrame() throws Exception {
        FrameStream stream = new FrameStream(1, 1 << 20, new ByFirstByte());
        byte[] first = frame(rewriteBody(100));
        byte[] second = frame(rewriteBody(100));
        stream.accept(ByteString.copyFrom(first, 0, 50));
        long firstSince = stream.heldSinceNanos();
        Thread.sleep(5);

        stream.accept(ByteString.copyFrom(first, 50, first.length - 50).concat(ByteString.copyFrom(second, 0, 3)));

        assertTrue(stream.heldSinceNanos() - firstSince > 0, "the new frame's clock starts when its first byte came");
        FrameStream other = new FrameStream(1, 1 << 20, new ByFirstByte());
        assertEquals(stream.heldSinceNanos(), FrameStream.oldestHeldSinceNanos(stream, other));
        other.accept(ByteString.copyFrom(second, 0, 2));
        assertEquals(stream.heldSinceNanos(), FrameStream.oldestHeldSinceNanos(other, stream));
    }

    @Test
    void givenPartialPrefixAtTheEndOfALargeChunk_whenHeld_thenOnlyThePrefixBytesAreKept() throws Exception {
        FrameStream stream = new FrameStream(8, 1 << 20, new ByFirstByte());
        byte[] pass = frame(new byte[1 << 20]);
        ByteString chunk = ByteString.copyFrom(pass).concat(ByteString.copyFrom(new byte[] {0, 0}));

        ByteString out = stream.accept(chunk);

        assertEquals(pass.length, out.size());
        assertTrue(stream.holdsPartialFrame());
        // Not observable through the API beyond this: the rest of the frame still frames correctly.
        byte[] rest = frame(rewriteBody(10));
        ByteString tail = stream.accept(ByteString.copyFrom(rest, 2, rest.length - 2));
        assertArrayEquals(transformed(rewriteBody(10)), tail.toByteArray());
    }
}
