package io.meshcrypt.filter.framing;

import static io.meshcrypt.filter.framing.FrameStreamPropertyTest.concat;
import static io.meshcrypt.filter.framing.FrameStreamPropertyTest.frame;
import static io.meshcrypt.filter.framing.FrameStreamPropertyTest.transformed;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/** A rewrite that must wait suspends the stream mid-chunk; resume finishes exactly that chunk. */
class FrameStreamDeferralTest {

    /** REWRITE when the first head byte is 'R'; defers the first {@code defers} rewrites. */
    private static final class DeferringHandler implements FrameHandler {
        int defers;
        int rewrites;
        final CompletableFuture<Void> ready = new CompletableFuture<>();

        DeferringHandler(int defers) {
            this.defers = defers;
        }

        @Override
        public FrameAction onFrameStart(int size, ByteBuffer head) {
            return head.remaining() > 0 && head.get(head.position()) == 'R' ? FrameAction.REWRITE : FrameAction.PASS;
        }

        @Override
        public ByteString rewrite(ByteBuffer frame, ByteString original) throws RewriteDeferred {
            rewrites++;
            if (defers > 0) {
                defers--;
                throw new RewriteDeferred("key not ready", ready);
            }
            byte[] body = new byte[frame.remaining()];
            frame.get(body);
            return ByteString.copyFrom(transformed(body));
        }
    }

    @Test
    void givenChunkWithPassRewritePassFrames_whenRewriteDefersTwice_thenResumeForwardsTheWholeChunkInOrder() throws Exception {
        byte[] before = frame("pass-1".getBytes());
        byte[] rewrite = frame("Rewrite-me".getBytes());
        byte[] after = frame("pass-2".getBytes());
        ByteString chunk = ByteString.copyFrom(concat(List.of(before, rewrite, after)));
        DeferringHandler handler = new DeferringHandler(2);
        FrameStream stream = new FrameStream(1, 1024, handler);

        assertThrows(RewriteDeferred.class, () -> stream.accept(chunk));
        boolean suspendedAfterAccept = stream.suspended();
        boolean holdsWhileSuspended = stream.holdsPartialFrame();
        assertThrows(RewriteDeferred.class, stream::resume);
        ByteString out = stream.resume();

        assertTrue(suspendedAfterAccept);
        assertTrue(holdsWhileSuspended, "a deferred frame counts as held");
        assertArrayEquals(concat(List.of(before, transformed("Rewrite-me".getBytes()), after)), out.toByteArray());
        assertEquals(3, handler.rewrites, "the same frame is offered again on each resume");
        assertFalse(stream.suspended());
        assertFalse(stream.holdsPartialFrame());
    }

    @Test
    void givenRewriteFrameSplitAcrossChunks_whenDeferredOnTheLastChunk_thenResumeReturnsTheRewrittenFrameAndTheTail() throws Exception {
        byte[] rewrite = frame("Rsplit-frame".getBytes());
        byte[] tail = frame("tail".getBytes());
        ByteString wire = ByteString.copyFrom(concat(List.of(rewrite, tail)));
        DeferringHandler handler = new DeferringHandler(1);
        FrameStream stream = new FrameStream(1, 1024, handler);

        ByteString first = stream.accept(wire.substring(0, 7));
        assertThrows(RewriteDeferred.class, () -> stream.accept(wire.substring(7)));
        ByteString resumed = stream.resume();
        ByteString next = stream.accept(ByteString.copyFrom(frame("more".getBytes())));

        assertTrue(first.isEmpty());
        assertArrayEquals(concat(List.of(transformed("Rsplit-frame".getBytes()), tail)), resumed.toByteArray());
        assertArrayEquals(frame("more".getBytes()), next.toByteArray(), "the stream continues normally after a resume");
    }

    @Test
    void givenSuspendedStream_whenAnotherChunkArrivesBeforeResume_thenTheStreamFailsClosed() throws Exception {
        FrameStream stream = new FrameStream(1, 1024, new DeferringHandler(1));
        assertThrows(RewriteDeferred.class, () -> stream.accept(ByteString.copyFrom(frame("Rx".getBytes()))));

        assertThrows(KafkaFrameException.class, () -> stream.accept(ByteString.copyFrom(frame("pass".getBytes()))));
        assertThrows(KafkaFrameException.class, stream::resume, "a failed stream never resumes");
    }

    @Test
    void givenNothingDeferred_whenResumeCalled_thenIllegalState() {
        FrameStream stream = new FrameStream(1, 1024, new DeferringHandler(0));

        assertThrows(IllegalStateException.class, stream::resume);
    }

    @Test
    void givenDeferredFrame_whenReDeferred_thenHeldSinceIsTheFirstDeferralSoTheDeadlineCoversIt() throws Exception {
        DeferringHandler handler = new DeferringHandler(2);
        FrameStream stream = new FrameStream(1, 1024, handler);
        ByteString chunk = ByteString.copyFrom(frame("Rdeferred".getBytes()));

        long before = System.nanoTime();
        assertThrows(RewriteDeferred.class, () -> stream.accept(chunk));
        long after = System.nanoTime();
        long since = stream.heldSinceNanos();
        Thread.sleep(5);
        assertThrows(RewriteDeferred.class, stream::resume);
        long sinceAfterReDeferral = stream.heldSinceNanos();
        stream.resume();

        assertTrue(since != FrameStream.NOT_HOLDING && since - before >= 0 && after - since >= 0,
                "a suspended frame counts as held from its first deferral");
        assertEquals(since, sinceAfterReDeferral, "re-deferring does not restart the clock");
        assertEquals(FrameStream.NOT_HOLDING, stream.heldSinceNanos());
    }

    @Test
    void givenDeferredFrame_whileSuspended_thenItKeepsItsBytesReservedButNotTheRewriteCopies() throws Exception {
        HeldBytesBudget budget = new HeldBytesBudget(1 << 20, 1 << 20, 3);
        HeldBytesBudget.Account connection = budget.newAccount();
        FrameStream stream = new FrameStream(1, 1024, new DeferringHandler(1), connection);
        byte[] wire = frame("Rkeep-me".getBytes());

        assertThrows(RewriteDeferred.class, () -> stream.accept(ByteString.copyFrom(wire)));
        long whileSuspended = budget.heldBytes();
        long admittedWhileSuspended = connection.admittedBytes();
        stream.resume();

        assertEquals(wire.length, whileSuspended);
        assertEquals(wire.length, admittedWhileSuspended);
        assertEquals(0, budget.heldBytes());
        assertEquals(0, connection.admittedBytes());
    }
}
