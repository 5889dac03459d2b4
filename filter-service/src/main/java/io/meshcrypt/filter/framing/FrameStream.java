package io.meshcrypt.filter.framing;

import com.google.protobuf.ByteString;
import java.nio.ByteBuffer;
import java.util.Objects;

/**
 * Splits one direction of a Kafka connection into length-prefixed frames across arbitrary chunk
 * boundaries. PASS frames stream through as their bytes arrive (never held, never copied more than
 * ByteString slicing needs); REWRITE frames are held until complete and replaced by what the handler returns.
 *
 * <p>Memory: a REWRITE frame's announced size is reserved from a {@link HeldBytesBudget.Account} when the frame starts
 * (before its body arrives) and released once it is rewritten or the stream fails or {@link #close closes}; a prefix
 * held across chunks is at most {@code 4 + headBytes} bytes, copied so it pins no larger chunk. How long a frame has
 * been held is exposed by {@link #heldSinceNanos()} so the caller can enforce a deadline.
 *
 * <p>Not thread-safe: one instance per direction of one connection, driven by that connection's thread.
 * Once any call fails the stream is poisoned and every later call fails: the byte stream can no longer
 * be trusted to be frame-aligned.
 */
public final class FrameStream {

    private static final int SIZE_FIELD_BYTES = 4;

    /** {@link #heldSinceNanos()} when nothing is held; equal to {@code ConnectionHandler.NOT_HOLDING}. */
    public static final long NOT_HOLDING = Long.MAX_VALUE;

    private enum Phase {
        /** Collecting the size field and the head of the next frame. */
        PREFIX,
        /** Forwarding the rest of a PASS frame as it arrives. */
        PASS_BODY,
        /** Holding the rest of a REWRITE frame until it is complete. */
        REWRITE_BODY
    }

    private final int headBytes;
    private final int maxFrameBytes;
    private final FrameHandler handler;
    private final HeldBytesBudget.Account budget;

    private Phase phase = Phase.PREFIX;
    /** Bytes of the current frame received in earlier chunks and not forwarded (prefix or REWRITE frame). */
    private ByteString held = ByteString.EMPTY;
    /** Bytes of the current frame seen so far, size field included (PREFIX and REWRITE_BODY). */
    private long frameBytesSeen;
    /** Size field of the current frame, or -1 while not yet known. */
    private int frameSize = -1;
    /** Bytes of the current PASS frame still to forward. */
    private int passRemaining;
    /** Bytes of {@link #budget} reserved for the current REWRITE frame. */
    private long reserved;
    /** System.nanoTime() at the end of the chunk in which the held partial frame began, or NOT_HOLDING. */
    private long heldSince = NOT_HOLDING;
    private boolean failed;

    /**
     * @param headBytes how many bytes after the size field {@link FrameHandler#onFrameStart} needs to decide
     * @param maxFrameBytes largest size field of a REWRITE frame; bounds what one connection direction holds
     * @param handler decides and rewrites frames
     */
    public FrameStream(int headBytes, int maxFrameBytes, FrameHandler handler) {
        this(headBytes, maxFrameBytes, handler, HeldBytesBudget.unlimited().newAccount());
    }

    /**
     * @param headBytes how many bytes after the size field {@link FrameHandler#onFrameStart} needs to decide
     * @param maxFrameBytes largest size field of a REWRITE frame
     * @param handler decides and rewrites frames
     * @param budget the connection's held-bytes account (shared by its two directions) each REWRITE frame reserves
     *     its announced size from; a reservation past its limits fails the frame
     */
    public FrameStream(int headBytes, int maxFrameBytes, FrameHandler handler, HeldBytesBudget.Account budget) {
        if (headBytes < 0) {
            throw new IllegalArgumentException("headBytes must be >= 0: " + headBytes);
        }
        if (maxFrameBytes < 0) {
            throw new IllegalArgumentException("maxFrameBytes must be >= 0: " + maxFrameBytes);
        }
        this.headBytes = headBytes;
        this.maxFrameBytes = maxFrameBytes;
        this.handler = Objects.requireNonNull(handler, "handler");
        this.budget = Objects.requireNonNull(budget, "budget");
    }

    /** Feeds one chunk; returns the bytes to forward now. */
    public ByteString accept(ByteString chunk) throws KafkaFrameException {
        Objects.requireNonNull(chunk, "chunk");
        if (failed) {
            throw new KafkaFrameException("frame stream already failed; no further bytes can be framed");
        }
        try {
            return process(chunk);
        } catch (KafkaFrameException | RuntimeException | Error e) {
            fail();
            throw e;
        }
    }

    /**
     * The connection is gone: drops what is held and returns its reservation to the budget. Later calls to
     * {@link #accept} fail. Idempotent.
     */
    public void close() {
        fail();
    }

    private void fail() {
        failed = true;
        held = ByteString.EMPTY;
        heldSince = NOT_HOLDING;
        releaseReservation();
    }

    /** True while bytes of an incomplete frame are held (a REWRITE frame, or a size field / head not yet complete). */
    public boolean holdsPartialFrame() {
        return !held.isEmpty();
    }

    /**
     * {@link System#nanoTime()} when the incomplete frame held now began arriving (measured when the chunk holding
     * its first byte was accepted), or {@link #NOT_HOLDING}.
     */
    public long heldSinceNanos() {
        return held.isEmpty() ? NOT_HOLDING : heldSince;
    }

    /** Bytes of the budget this stream has reserved for the frame it holds. */
    public long reservedBytes() {
        return reserved;
    }

    /** The oldest of several streams' {@link #heldSinceNanos()}: what a connection reports for both directions. */
    public static long oldestHeldSinceNanos(FrameStream a, FrameStream b) {
        long x = a.heldSinceNanos();
        long y = b.heldSinceNanos();
        if (x == NOT_HOLDING) {
            return y;
        }
        if (y == NOT_HOLDING) {
            return x;
        }
        return x - y <= 0 ? x : y;
    }

    /*
     * Within one chunk, pass-through bytes are forwarded as one slice per run of PASS bytes (runStart..),
     * so a chunk made only of PASS frames is forwarded as the very same ByteString. frameStart marks where
     * the current frame's bytes begin in this chunk; bytes of it from earlier chunks are in `held`.
     */
    private ByteString process(ByteString chunk) throws KafkaFrameException {
        final int n = chunk.size();
        ByteString out = ByteString.EMPTY;
        int pos = 0;
        int runStart = 0;
        int frameStart = 0;
        while (pos < n) {
            switch (phase) {
                case PASS_BODY -> {
                    int take = Math.min(passRemaining, n - pos);
                    pos += take;
                    passRemaining -= take;
                    if (passRemaining == 0) {
                        startNextFrame();
                        frameStart = pos;
                    }
                }
                case PREFIX -> {
                    long target = prefixTarget();
                    int take = (int) Math.min(target - frameBytesSeen, n - pos);
                    pos += take;
                    frameBytesSeen += take;
                    if (frameSize < 0 && frameBytesSeen == SIZE_FIELD_BYTES) {
                        frameSize = readSize(held.concat(chunk.substring(frameStart, pos)));
                        target = prefixTarget();
                    }
                    if (frameSize >= 0 && frameBytesSeen == target) {
                        ByteString prefix = held.concat(chunk.substring(frameStart, pos));
                        FrameAction action = handler.onFrameStart(
                                frameSize, prefix.substring(SIZE_FIELD_BYTES).asReadOnlyByteBuffer());
                        int bodyLeft = frameSize - (int) (target - SIZE_FIELD_BYTES);
                        if (action == FrameAction.PASS) {
                            // A prefix from earlier chunks precedes everything of this chunk: nothing of
                            // this chunk has been added to `out` yet, and the run still starts at 0.
                            out = out.concat(held);
                            held = ByteString.EMPTY;
                            if (bodyLeft == 0) {
                                startNextFrame();
                                frameStart = pos;
                            } else {
                                phase = Phase.PASS_BODY;
                                passRemaining = bodyLeft;
                            }
                        } else if (action == FrameAction.REWRITE) {
                            if (frameSize > maxFrameBytes) {
                                throw new KafkaFrameException("frame of " + frameSize
                                        + " bytes exceeds the limit of " + maxFrameBytes + " bytes for rewritten frames");
                            }
                            // The announced size, before the body arrives: trickling cannot hold more than was granted.
                            budget.reserve(frameSize + (long) SIZE_FIELD_BYTES);
                            reserved = frameSize + (long) SIZE_FIELD_BYTES;
                            out = concat(out, chunk, runStart, frameStart);
                            phase = Phase.REWRITE_BODY;
                            if (bodyLeft == 0) {
                                out = out.concat(rewrite(prefix));
                                startNextFrame();
                                frameStart = pos;
                                runStart = pos;
                            }
                        } else {
                            throw new KafkaFrameException("frame handler returned no action");
                        }
                    }
                }
                case REWRITE_BODY -> {
                    long frameEnd = (long) frameSize + SIZE_FIELD_BYTES;
                    int take = (int) Math.min(frameEnd - frameBytesSeen, n - pos);
                    pos += take;
                    frameBytesSeen += take;
                    if (frameBytesSeen == frameEnd) {
                        out = out.concat(rewrite(held.concat(chunk.substring(frameStart, pos))));
                        startNextFrame();
                        frameStart = pos;
                        runStart = pos;
                    }
                }
            }
        }
        if (phase == Phase.PASS_BODY) {
            out = concat(out, chunk, runStart, n);
        } else {
            if (phase == Phase.PREFIX) {
                out = concat(out, chunk, runStart, frameStart);
                if (frameStart < n) {
                    // At most 4 + headBytes bytes: a copy, so a partial prefix does not pin the whole chunk.
                    held = held.concat(ByteString.copyFrom(chunk.substring(frameStart, n).asReadOnlyByteBuffer()));
                }
            } else {
                held = held.concat(chunk.substring(frameStart, n));
            }
            if (heldSince == NOT_HOLDING && !held.isEmpty()) {
                heldSince = System.nanoTime();
            }
        }
        return out;
    }

    private void releaseReservation() {
        if (reserved > 0) {
            budget.release(reserved);
            reserved = 0;
        }
    }

    private long prefixTarget() {
        return frameSize < 0 ? SIZE_FIELD_BYTES : SIZE_FIELD_BYTES + (long) Math.min(frameSize, headBytes);
    }

    private void startNextFrame() {
        releaseReservation();
        heldSince = NOT_HOLDING;
        phase = Phase.PREFIX;
        held = ByteString.EMPTY;
        frameBytesSeen = 0;
        frameSize = -1;
        passRemaining = 0;
    }

    private ByteString rewrite(ByteString frame) throws KafkaFrameException {
        // One copy into a private array: a frame held across chunks is a rope that would be flattened anyway,
        // and an array-backed buffer keeps CRC32C, decompression and AES-GCM on their fast paths (a read-only
        // view has no accessible array and sends Kafka's checksum code byte by byte).
        ByteString replacement = handler.rewrite(ByteBuffer.wrap(frame.substring(SIZE_FIELD_BYTES).toByteArray()));
        if (replacement == null) {
            throw new KafkaFrameException("frame handler returned no bytes for a rewritten frame");
        }
        return replacement;
    }

    private static int readSize(ByteString sizeField) throws KafkaFrameException {
        int size = (sizeField.byteAt(0) & 0xff) << 24
                | (sizeField.byteAt(1) & 0xff) << 16
                | (sizeField.byteAt(2) & 0xff) << 8
                | (sizeField.byteAt(3) & 0xff);
        if (size < 0) {
            throw new KafkaFrameException("negative Kafka frame size " + size);
        }
        return size;
    }

    private static ByteString concat(ByteString out, ByteString chunk, int from, int to) {
        if (to <= from) {
            return out;
        }
        // substring() always wraps; forwarding the chunk itself keeps the common all-PASS case allocation free.
        return out.concat(from == 0 && to == chunk.size() ? chunk : chunk.substring(from, to));
    }
}
