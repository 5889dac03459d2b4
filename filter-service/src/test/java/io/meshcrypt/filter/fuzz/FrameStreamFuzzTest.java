package io.meshcrypt.filter.fuzz;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.fail;

import com.code_intelligence.jazzer.junit.FuzzTest;
import com.google.protobuf.ByteString;
import io.meshcrypt.filter.framing.FrameAction;
import io.meshcrypt.filter.framing.FrameHandler;
import io.meshcrypt.filter.framing.FrameStream;
import io.meshcrypt.filter.framing.KafkaFrameException;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * FrameStream on random bytes cut into random chunks, against a reference model that reads the whole stream at once.
 *
 * <p>Input: byte 0 = head bytes the handler asks for (0-15), byte 1 = limit for rewritten frames (x4 bytes), byte 2 =
 * chunking seed, the rest = the byte stream. The handler rewrites frames whose first head byte (or, without head,
 * size) is odd, refuses a frame whose head starts with 0xEE and fails a rewrite whose last byte is 0xEF.
 *
 * <p>Invariants: only KafkaFrameException escapes, exactly at the chunk that completes the offending bytes, and the
 * stream stays failed afterwards; after every chunk the bytes forwarded so far are exactly what the model says
 * (pass-through frames byte for byte, rewritten frames replaced where they end); the handler sees each frame's size,
 * head and body as they are on the wire; holdsPartialFrame() tells the truth.
 */
class FrameStreamFuzzTest {
    private static final byte REFUSE = (byte) 0xEE;
    private static final byte FAIL_REWRITE = (byte) 0xEF;

    @FuzzTest(maxDuration = "60s")
    void givenRandomBytesInRandomChunks_whenFramed_thenOnlyKafkaFrameExceptionAndForwardedBytesMatchTheModel(byte[] input) {
        if (input.length < 3) {
            return;
        }
        int headBytes = input[0] & 0x0F;
        int maxFrameBytes = (input[1] & 0xFF) * 4;
        byte[] stream = Arrays.copyOfRange(input, 3, input.length);
        Model model = new Model(stream, headBytes, maxFrameBytes);
        ModelHandler handler = new ModelHandler(model);
        FrameStream frames = new FrameStream(headBytes, maxFrameBytes, handler);

        int fed = 0;
        int forwarded = 0;
        for (ByteString chunk : FuzzSupport.chunks(stream, 0, input[2])) {
            int end = fed + chunk.size();
            boolean failsHere = model.failAt >= fed && model.failAt < end;
            ByteString out;
            try {
                out = frames.accept(chunk);
            } catch (KafkaFrameException e) {
                if (!failsHere) {
                    fail("unexpected KafkaFrameException after " + fed + " bytes: " + e.getMessage(), e);
                }
                assertThrows(KafkaFrameException.class, () -> frames.accept(ByteString.EMPTY),
                        "a failed stream must stay failed");
                return;
            }
            if (failsHere) {
                fail("the stream accepted byte " + model.failAt + ", which the model rejects");
            }
            fed = end;
            int expected = model.outputAvailableAfter(fed);
            assertEquals(expected - forwarded, out.size(), "bytes forwarded by the chunk ending at " + fed);
            assertArrayEquals(Arrays.copyOfRange(model.output(), forwarded, expected), out.toByteArray(),
                    "forwarded bytes of the chunk ending at " + fed);
            forwarded = expected;
            assertEquals(model.holds(fed), frames.holdsPartialFrame(), "holdsPartialFrame after " + fed + " bytes");
        }
        assertEquals(model.starts.size(), handler.starts, "frames announced to the handler");
    }

    /** The handler's decisions, shared with the model so that both agree. */
    static FrameAction decide(int size, byte[] head) throws KafkaFrameException {
        if (head.length > 0 && head[0] == REFUSE) {
            throw new KafkaFrameException("refused by the handler");
        }
        return ((head.length > 0 ? head[0] : size) & 1) == 1 ? FrameAction.REWRITE : FrameAction.PASS;
    }

    static byte[] rewritten(byte[] frame) throws KafkaFrameException {
        if (frame.length > 0 && frame[frame.length - 1] == FAIL_REWRITE) {
            throw new KafkaFrameException("rewrite failed");
        }
        // A different length than the input on purpose: a size field, a marker byte, the body reversed.
        ByteBuffer out = ByteBuffer.allocate(5 + frame.length).putInt(frame.length + 1).put((byte) 'R');
        for (int i = frame.length - 1; i >= 0; i--) {
            out.put(frame[i]);
        }
        return out.array();
    }

    /** What a correct FrameStream forwards, computed over the whole stream at once. */
    static final class Model {
        record Start(int size, byte[] head) {
        }

        /** Index of the stream byte whose arrival must fail the stream, or -1. */
        long failAt = -1;
        final List<Start> starts = new ArrayList<>();
        final List<byte[]> rewrites = new ArrayList<>();
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();
        /** For each output byte, the stream index whose arrival releases it (non-decreasing). */
        private int[] release = new int[64];
        /** Half-open ranges (from, to] of "bytes fed" counts at which a partial frame is held. */
        private final List<long[]> held = new ArrayList<>();
        private byte[] output;

        Model(byte[] s, int headBytes, int maxFrameBytes) {
            int n = s.length;
            long pos = 0;
            try {
                while (pos < n) {
                    int p = (int) pos;
                    if (n - p < 4) {
                        held.add(new long[] {p, Long.MAX_VALUE});
                        break;
                    }
                    // The size field and the head are held until complete, whatever is decided then.
                    held.add(new long[] {p, p + 3});
                    int size = ByteBuffer.wrap(s, p, 4).getInt();
                    if (size < 0) {
                        failAt = p + 3;
                        break;
                    }
                    long prefixEnd = p + 4L + Math.min(size, headBytes);
                    long frameEnd = p + 4L + size;
                    held.add(new long[] {p, prefixEnd - 1});
                    if (prefixEnd > n) {
                        break;
                    }
                    byte[] head = Arrays.copyOfRange(s, p + 4, (int) prefixEnd);
                    starts.add(new Start(size, head));
                    FrameAction action;
                    try {
                        action = decide(size, head);
                    } catch (KafkaFrameException e) {
                        failAt = prefixEnd - 1;
                        break;
                    }
                    if (action == FrameAction.REWRITE) {
                        if (size > maxFrameBytes) {
                            failAt = prefixEnd - 1;
                            break;
                        }
                        held.add(new long[] {p, frameEnd - 1});
                        if (frameEnd > n) {
                            break;
                        }
                        byte[] frame = Arrays.copyOfRange(s, p + 4, (int) frameEnd);
                        rewrites.add(frame);
                        byte[] replacement;
                        try {
                            replacement = rewritten(frame);
                        } catch (KafkaFrameException e) {
                            failAt = frameEnd - 1;
                            break;
                        }
                        emit(replacement, 0, replacement.length, frameEnd - 1);
                    } else {
                        emit(s, p, (int) (prefixEnd - p), prefixEnd - 1);
                        for (long i = prefixEnd; i < Math.min(frameEnd, n); i++) {
                            emit(s, (int) i, 1, i);
                        }
                    }
                    pos = frameEnd;
                }
            } finally {
                output = out.toByteArray();
            }
        }

        private void emit(byte[] b, int from, int length, long releasedAt) {
            int at = out.size();
            out.write(b, from, length);
            if (release.length < out.size()) {
                release = Arrays.copyOf(release, Math.max(out.size(), release.length * 2));
            }
            Arrays.fill(release, at, out.size(), (int) releasedAt);
        }

        byte[] output() {
            return output;
        }

        /** Output bytes released once {@code fed} stream bytes have arrived. */
        int outputAvailableAfter(int fed) {
            int lo = 0;
            int hi = output.length;
            while (lo < hi) {
                int mid = (lo + hi) >>> 1;
                if (release[mid] < fed) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            return lo;
        }

        boolean holds(int fed) {
            for (long[] range : held) {
                if (fed > range[0] && fed <= range[1]) {
                    return true;
                }
            }
            return false;
        }
    }

    /** Follows the model's decisions and checks that it is shown the frames the model expects. */
    static final class ModelHandler implements FrameHandler {
        private final Model model;
        int starts;
        private int rewrites;

        ModelHandler(Model model) {
            this.model = model;
        }

        @Override
        public FrameAction onFrameStart(int size, ByteBuffer head) throws KafkaFrameException {
            Model.Start expected = model.starts.get(starts++);
            assertEquals(expected.size(), size, "size field of frame " + starts);
            byte[] seen = new byte[head.remaining()];
            head.duplicate().get(seen);
            assertArrayEquals(expected.head(), seen, "head of frame " + starts);
            return decide(size, seen);
        }

        @Override
        public ByteString rewrite(ByteBuffer frame, ByteString original) throws KafkaFrameException {
            byte[] seen = new byte[frame.remaining()];
            frame.duplicate().get(seen);
            assertArrayEquals(model.rewrites.get(rewrites++), seen, "body of rewritten frame " + rewrites);
            return ByteString.copyFrom(rewritten(seen));
        }
    }

    @Test
    void writeSeeds(@TempDir Path scratch) throws Exception {
        Path root = FuzzSupport.seedRoot(scratch);
        String method = "givenRandomBytesInRandomChunks_whenFramed_thenOnlyKafkaFrameExceptionAndForwardedBytesMatchTheModel";
        byte[] pass = frame(new byte[] {2, 0, 0, 0, 0, 0, 0, 9, 0, 1, 'x'});
        byte[] rewrite = frame(new byte[] {1, 0, 0, 3, 0, 0, 0, 7, 'a', 'b', 'c'});
        byte[] empty = frame(new byte[0]);
        FuzzSupport.seed(root, getClass(), method, "pass-rewrite-empty",
                FuzzSupport.concat(new byte[] {8, 16, 1}, pass, rewrite, empty, pass));
        FuzzSupport.seed(root, getClass(), method, "partial-tail",
                FuzzSupport.concat(new byte[] {4, 16, 2}, rewrite, pass, Arrays.copyOf(rewrite, 7)));
        FuzzSupport.seed(root, getClass(), method, "refused-and-too-large",
                FuzzSupport.concat(new byte[] {4, 1, 3}, pass, frame(new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9})));
        FuzzSupport.seed(root, getClass(), method, "negative-size",
                FuzzSupport.concat(new byte[] {0, 0, 4}, pass, new byte[] {(byte) 0x80, 0, 0, 0}));
        FuzzSupport.requireSeeds(root, getClass());
    }

    private static byte[] frame(byte[] body) {
        return ByteBuffer.allocate(4 + body.length).putInt(body.length).put(body).array();
    }
}
