package io.meshcrypt.filter.framing;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.constraints.IntRange;

class FrameStreamPropertyTest {

    @Property(tries = 400)
    void givenRandomFramesAndChunkSplits_whenStreamed_thenOutputEqualsExpectedAndHandlerSeesEachFrameOnceInOrder(
            @ForAll("frameBodies") List<byte[]> bodies,
            @ForAll("chunkSizes") List<Integer> chunkSizes,
            @ForAll @IntRange(min = 0, max = 8) int headBytes) throws KafkaFrameException {
        byte[] wire = concat(bodies.stream().map(FrameStreamPropertyTest::frame).toList());
        ByteString expected = ByteString.EMPTY;
        List<Boolean> rewriteDecisions = new ArrayList<>();
        for (byte[] body : bodies) {
            boolean rewrite = decideRewrite(body.length, ByteBuffer.wrap(body, 0, Math.min(body.length, headBytes)));
            rewriteDecisions.add(rewrite);
            expected = expected.concat(ByteString.copyFrom(rewrite ? transformed(body) : frame(body)));
        }
        RecordingHandler handler = new RecordingHandler();
        FrameStream stream = new FrameStream(headBytes, Integer.MAX_VALUE, handler);

        ByteString output = ByteString.EMPTY;
        int offset = 0;
        for (int i = 0; offset < wire.length; i++) {
            int size = Math.min(chunkSizes.get(i % chunkSizes.size()), wire.length - offset);
            output = output.concat(stream.accept(ByteString.copyFrom(wire, offset, size)));
            offset += size;
            assertEquals(expectHeld(bodies, rewriteDecisions, headBytes, offset), stream.holdsPartialFrame(),
                    "holdsPartialFrame after " + offset + " bytes");
        }

        assertArrayEquals(expected.toByteArray(), output.toByteArray());
        assertEquals(bodies.size(), handler.starts.size());
        List<byte[]> expectedRewritten = new ArrayList<>();
        for (int i = 0; i < bodies.size(); i++) {
            byte[] body = bodies.get(i);
            assertEquals(body.length, handler.starts.get(i).size());
            assertArrayEquals(Arrays.copyOf(body, Math.min(body.length, headBytes)), handler.starts.get(i).head());
            if (rewriteDecisions.get(i)) {
                expectedRewritten.add(body);
            }
        }
        assertEquals(expectedRewritten.size(), handler.rewritten.size());
        for (int i = 0; i < expectedRewritten.size(); i++) {
            assertArrayEquals(expectedRewritten.get(i), handler.rewritten.get(i));
        }
    }

    @Property(tries = 200)
    void givenRewriteFrameAboveLimit_whenStreamed_thenFailsOnlyWhenThatFrameStartsAndOutputSoFarIsExact(
            @ForAll("frameBodies") List<byte[]> bodies,
            @ForAll("chunkSizes") List<Integer> chunkSizes) {
        int maxFrameBytes = 100;
        int headBytes = 2;
        byte[] wire = concat(bodies.stream().map(FrameStreamPropertyTest::frame).toList());
        int firstOversized = -1;
        ByteString expectedBeforeFailure = ByteString.EMPTY;
        for (int i = 0; i < bodies.size(); i++) {
            byte[] body = bodies.get(i);
            boolean rewrite = decideRewrite(body.length, ByteBuffer.wrap(body, 0, Math.min(body.length, headBytes)));
            if (rewrite && body.length > maxFrameBytes) {
                firstOversized = i;
                break;
            }
            expectedBeforeFailure = expectedBeforeFailure.concat(ByteString.copyFrom(rewrite ? transformed(body) : frame(body)));
        }
        FrameStream stream = new FrameStream(headBytes, maxFrameBytes, new RecordingHandler());

        ByteString output = ByteString.EMPTY;
        KafkaFrameException failure = null;
        int offset = 0;
        for (int i = 0; offset < wire.length; i++) {
            int size = Math.min(chunkSizes.get(i % chunkSizes.size()), wire.length - offset);
            try {
                output = output.concat(stream.accept(ByteString.copyFrom(wire, offset, size)));
            } catch (KafkaFrameException e) {
                failure = e;
                break;
            }
            offset += size;
        }

        if (firstOversized < 0) {
            assertNull(failure);
            assertArrayEquals(expectedBeforeFailure.toByteArray(), output.toByteArray());
        } else {
            assertNotNull(failure);
            String size = Integer.toString(bodies.get(firstOversized).length);
            assertTrue(failure.getMessage().contains(size)
                    && failure.getMessage().contains("100"), failure.getMessage());
            // Every byte forwarded before the failure belongs to frames before the oversized one.
            assertTrue(expectedBeforeFailure.startsWith(output),
                    "forwarded bytes must be a prefix of the frames before the oversized one");
        }
    }

    @Provide
    Arbitrary<List<byte[]>> frameBodies() {
        Arbitrary<Integer> sizes = Arbitraries.frequencyOf(
                Tuple.of(3, Arbitraries.integers().between(0, 3)),
                Tuple.of(5, Arbitraries.integers().between(4, 64)),
                Tuple.of(2, Arbitraries.integers().between(65, 4096)));
        Arbitrary<byte[]> body = sizes.flatMap(n -> Arbitraries.bytes().array(byte[].class).ofSize(n));
        return body.list().ofMinSize(0).ofMaxSize(25);
    }

    @Provide
    Arbitrary<List<Integer>> chunkSizes() {
        return Arbitraries.frequencyOf(
                        Tuple.of(3, Arbitraries.integers().between(1, 3)),
                        Tuple.of(4, Arbitraries.integers().between(4, 50)),
                        Tuple.of(3, Arbitraries.integers().between(51, 20_000)))
                .list().ofMinSize(1).ofMaxSize(40);
    }

    /** The decision is a pure function of size and head, so the test can predict it. */
    static boolean decideRewrite(int size, ByteBuffer head) {
        int sum = size;
        while (head.hasRemaining()) {
            sum += head.get();
        }
        return (sum & 1) == 1;
    }

    /** A REWRITE frame is replaced by a frame one byte longer: a marker, then its body reversed. */
    static byte[] transformed(byte[] body) {
        byte[] out = new byte[4 + body.length + 1];
        ByteBuffer.wrap(out).putInt(body.length + 1).put((byte) 0x7E);
        for (int i = 0; i < body.length; i++) {
            out[5 + i] = body[body.length - 1 - i];
        }
        return out;
    }

    static byte[] frame(byte[] body) {
        return ByteBuffer.allocate(4 + body.length).putInt(body.length).put(body).array();
    }

    static byte[] concat(List<byte[]> parts) {
        ByteString all = ByteString.EMPTY;
        for (byte[] part : parts) {
            all = all.concat(ByteString.copyFrom(part));
        }
        return all.toByteArray();
    }

    /** Whether, after {@code offset} wire bytes, the stream must hold bytes of an unfinished frame. */
    private static boolean expectHeld(List<byte[]> bodies, List<Boolean> rewrite, int headBytes, int offset) {
        int frameStart = 0;
        for (int i = 0; i < bodies.size(); i++) {
            int size = bodies.get(i).length;
            int frameEnd = frameStart + 4 + size;
            if (offset < frameEnd) {
                int seen = offset - frameStart;
                return seen > 0 && (rewrite.get(i) || seen < 4 + Math.min(size, headBytes));
            }
            frameStart = frameEnd;
        }
        return false;
    }

    record Start(int size, byte[] head) {}

    static final class RecordingHandler implements FrameHandler {
        final List<Start> starts = new ArrayList<>();
        final List<byte[]> rewritten = new ArrayList<>();

        @Override
        public FrameAction onFrameStart(int size, ByteBuffer head) {
            byte[] copy = new byte[head.remaining()];
            head.duplicate().get(copy);
            starts.add(new Start(size, copy));
            return decideRewrite(size, head) ? FrameAction.REWRITE : FrameAction.PASS;
        }

        @Override
        public ByteString rewrite(ByteBuffer frame, ByteString original) {
            byte[] body = new byte[frame.remaining()];
            frame.get(body);
            rewritten.add(body);
            return ByteString.copyFrom(transformed(body));
        }
    }
}
