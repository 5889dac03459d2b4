package io.meshcrypt.filter.framing;

import static io.meshcrypt.filter.framing.FrameStreamPropertyTest.frame;
import static io.meshcrypt.filter.framing.FrameStreamPropertyTest.transformed;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class FrameStreamTest {

    /** PASS unless the first head byte is 'R'. */
    private static final class ByFirstByte implements FrameHandler {
        final List<Integer> sizes = new ArrayList<>();
        final List<ByteString> heads = new ArrayList<>();
        int rewrites;

        @Override
        public FrameAction onFrameStart(int size, ByteBuffer head) {
            sizes.add(size);
            heads.add(ByteString.copyFrom(head.duplicate()));
            return head.remaining() > 0 && head.get(head.position()) == 'R' ? FrameAction.REWRITE : FrameAction.PASS;
        }

        @Override
        public ByteString rewrite(ByteBuffer frame, ByteString original) {
            rewrites++;
            byte[] body = new byte[frame.remaining()];
            frame.get(body);
            return ByteString.copyFrom(transformed(body));
        }
    }

    private static ByteString bytes(byte[]... parts) {
        return ByteString.copyFrom(FrameStreamPropertyTest.concat(List.of(parts)));
    }

    @Test
    void givenChunkOfWholePassFrames_whenAccepted_thenSameInstanceForwarded() throws Exception {
        ByteString chunk = bytes(frame("abc".getBytes()), frame(new byte[0]), frame("xyz12345".getBytes()));
        FrameStream stream = new FrameStream(4, 1024, new ByFirstByte());

        ByteString out = stream.accept(chunk);

        assertSame(chunk, out);
        assertFalse(stream.holdsPartialFrame());
    }

    @Test
    void givenSizeFieldSplitAcrossChunks_whenAccepted_thenNothingForwardedUntilHeadKnown() throws Exception {
        ByteString wire = bytes(frame("pass-me".getBytes()));
        ByFirstByte handler = new ByFirstByte();
        FrameStream stream = new FrameStream(2, 1024, handler);

        ByteString first = stream.accept(wire.substring(0, 2));
        boolean heldAfterFirst = stream.holdsPartialFrame();
        ByteString second = stream.accept(wire.substring(2, 5));
        ByteString third = stream.accept(wire.substring(5, 6));
        ByteString rest = stream.accept(wire.substring(6));

        assertTrue(first.isEmpty());
        assertTrue(heldAfterFirst);
        assertTrue(second.isEmpty(), "size known but head incomplete: still held");
        assertEquals(wire.substring(0, 6), third, "head complete: the held prefix and its head are forwarded");
        assertEquals(wire.substring(6), rest, "the body streams through");
        assertEquals(List.of(7), handler.sizes);
        assertEquals(ByteString.copyFromUtf8("pa"), handler.heads.get(0));
        assertFalse(stream.holdsPartialFrame());
    }

    @Test
    void givenPassFrameBodyStreamingAcrossChunks_whenAccepted_thenNothingHeld() throws Exception {
        ByteString wire = bytes(frame("pass body spanning chunks".getBytes()));
        FrameStream stream = new FrameStream(1, 1024, new ByFirstByte());

        ByteString a = stream.accept(wire.substring(0, 10));
        boolean heldMidBody = stream.holdsPartialFrame();
        ByteString b = stream.accept(wire.substring(10));

        assertEquals(wire.substring(0, 10), a);
        assertFalse(heldMidBody);
        assertEquals(wire.substring(10), b);
    }

    @Test
    void givenRewriteFrameThenPassFrameInOneChunk_whenAccepted_thenRewrittenThenPassedInOrder() throws Exception {
        byte[] rewritten = "R-secret".getBytes();
        byte[] passed = "plain".getBytes();
        byte[] passedBefore = "before".getBytes();
        ByteString chunk = bytes(frame(passedBefore), frame(rewritten), frame(passed));
        ByFirstByte handler = new ByFirstByte();
        FrameStream stream = new FrameStream(1, 1024, handler);

        ByteString out = stream.accept(chunk);

        assertArrayEquals(bytes(frame(passedBefore), transformed(rewritten), frame(passed)).toByteArray(), out.toByteArray());
        assertEquals(1, handler.rewrites);
        assertEquals(List.of(6, 8, 5), handler.sizes);
    }

    @Test
    void givenRewriteFrameSplitAtEveryByte_whenAccepted_thenHeldUntilCompleteThenReplaced() throws Exception {
        byte[] body = "R-held-until-complete".getBytes();
        ByteString wire = bytes(frame(body));
        ByFirstByte handler = new ByFirstByte();
        FrameStream stream = new FrameStream(1, 1024, handler);

        for (int i = 0; i < wire.size() - 1; i++) {
            assertTrue(stream.accept(wire.substring(i, i + 1)).isEmpty(), "byte " + i + " must be held");
            assertTrue(stream.holdsPartialFrame());
        }
        ByteString out = stream.accept(wire.substring(wire.size() - 1));

        assertArrayEquals(transformed(body), out.toByteArray());
        assertFalse(stream.holdsPartialFrame());
        assertEquals(1, handler.sizes.size(), "onFrameStart called exactly once");
    }

    @Test
    void givenEmptyChunk_whenAccepted_thenNothingForwardedAndStateKept() throws Exception {
        ByteString wire = bytes(frame("R".getBytes()));
        FrameStream stream = new FrameStream(1, 1024, new ByFirstByte());

        stream.accept(wire.substring(0, 3));
        ByteString out = stream.accept(ByteString.EMPTY);

        assertTrue(out.isEmpty());
        assertTrue(stream.holdsPartialFrame());
        assertArrayEquals(transformed("R".getBytes()), stream.accept(wire.substring(3)).toByteArray());
    }

    @Test
    void givenZeroSizeFrames_whenAccepted_thenEachReportedWithEmptyHead() throws Exception {
        ByteString wire = bytes(frame(new byte[0]), frame(new byte[0]));
        ByFirstByte handler = new ByFirstByte();
        FrameStream stream = new FrameStream(4, 1024, handler);

        ByteString out = stream.accept(wire.substring(0, 5)).concat(stream.accept(wire.substring(5)));

        assertEquals(wire, out);
        assertEquals(List.of(0, 0), handler.sizes);
        assertTrue(handler.heads.get(0).isEmpty());
    }

    @Test
    void givenNegativeSize_whenAccepted_thenKafkaFrameExceptionAndStreamStaysFailed() {
        ByteString wire = ByteString.copyFrom(new byte[] {(byte) 0x80, 0, 0, 1, 'x'});
        FrameStream stream = new FrameStream(1, 1024, new ByFirstByte());

        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> stream.accept(wire));

        assertTrue(e.getMessage().contains("negative"), e.getMessage());
        assertThrows(KafkaFrameException.class, () -> stream.accept(bytes(frame("ok".getBytes()))),
                "a failed stream must not resume forwarding");
        assertFalse(stream.holdsPartialFrame());
    }

    @Test
    void givenRewriteFrameAboveLimit_whenHeadArrives_thenFailsBeforeBodyIsHeld() {
        byte[] body = new byte[2000];
        body[0] = 'R';
        ByteString wire = bytes(frame(body));
        FrameStream stream = new FrameStream(1, 1000, new ByFirstByte());

        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> stream.accept(wire.substring(0, 5)));

        assertTrue(e.getMessage().contains("2000") && e.getMessage().contains("1000"), e.getMessage());
    }

    @Test
    void givenPassFrameAboveLimit_whenAccepted_thenStreamedThrough() throws Exception {
        ByteString wire = bytes(frame(new byte[5000]));
        FrameStream stream = new FrameStream(1, 1000, new ByFirstByte());

        ByteString out = stream.accept(wire.substring(0, 100)).concat(stream.accept(wire.substring(100)));

        assertEquals(wire, out);
    }

    @Test
    void givenHandlerThrows_whenAccepted_thenExceptionPropagatesAndStreamFailed() {
        FrameHandler failing = new FrameHandler() {
            @Override
            public FrameAction onFrameStart(int size, ByteBuffer head) throws KafkaFrameException {
                throw new KafkaFrameException("unsupported api");
            }

            @Override
            public ByteString rewrite(ByteBuffer frame, ByteString original) {
                throw new AssertionError("not reached");
            }
        };
        FrameStream stream = new FrameStream(2, 1024, failing);

        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> stream.accept(bytes(frame("ab".getBytes()))));

        assertEquals("unsupported api", e.getMessage());
        assertThrows(KafkaFrameException.class, () -> stream.accept(ByteString.EMPTY));
    }

    @Test
    void givenRewriteFrame_whenRewritten_thenHandlerSeesTheBodyWithoutSizeFieldAndTheOriginalFrame() throws Exception {
        byte[] body = "R-body".getBytes();
        List<ByteBuffer> seen = new ArrayList<>();
        List<ByteString> originals = new ArrayList<>();
        RewriteEveryFrame handler = (frame, original) -> {
            seen.add(frame);
            originals.add(original);
            return ByteString.copyFromUtf8("X");
        };
        FrameStream stream = new FrameStream(0, 1024, handler);

        ByteString out = stream.accept(bytes(frame(body)));

        assertEquals(ByteString.copyFromUtf8("X"), out);
        assertTrue(seen.get(0).hasArray(), "array-backed, so checksums and ciphers take their fast paths");
        assertEquals(0, seen.get(0).position());
        assertEquals(ByteString.copyFrom(body), ByteString.copyFrom(seen.get(0)));
        assertEquals(bytes(frame(body)), originals.get(0));
    }

    @Test
    void givenRewriteFrameInOneChunk_whenHandlerAnswersTheOriginal_thenTheChunkIsForwardedWithoutACopy() throws Exception {
        RewriteEveryFrame unchanged = (frame, original) -> original;
        FrameStream stream = new FrameStream(0, 1024, unchanged);
        ByteString chunk = bytes(frame("same".getBytes()));

        ByteString out = stream.accept(chunk);

        assertSame(chunk, out, "the very bytes received");
    }
}
