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
    /** Non-null while a rewrite is deferred: where {@link #resume} picks the chunk up again. */
    private Suspension suspended;

    /**
     * A chunk whose processing stopped at a deferred rewrite: everything before the frame is in {@code out}, and the
     * frame keeps its budget reservation until it is rewritten.
     */
    private record Suspension(ByteString chunk, int pos, ByteString out, ByteString frame, long reserved) {
    }

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

    /**
     * Feeds one chunk; returns the bytes to forward now.
     *
     * @throws RewriteDeferred when a frame's rewrite must wait: call {@link #resume} once it is ready, before the next chunk
     */
    public ByteString accept(ByteString chunk) throws KafkaFrameException {
        Objects.requireNonNull(chunk, "chunk");
        if (failed) {
            throw new KafkaFrameException("frame stream already failed; no further bytes can be framed");
        }
        if (suspended != null) {
            fail();
            throw new KafkaFrameException("a chunk arrived while a deferred rewrite was pending");
        }
        try {
            return process(chunk, 0, ByteString.EMPTY);
        } catch (RewriteDeferred d) {
            throw d; // not a failure: the stream stays usable, and suspended() tells the caller to resume
        } catch (KafkaFrameException | RuntimeException | Error e) {
            fail();
            throw e;
        }
    }

    /**
     * Retries the deferred rewrite and finishes the chunk it interrupted; returns the bytes to forward for that whole
     * chunk. May defer again.
     */
    public ByteString resume() throws KafkaFrameException {
        if (failed) {
            throw new KafkaFrameException("frame stream already failed; no further bytes can be framed");
        }
        Suspension s = suspended;
        if (s == null) {
            throw new IllegalStateException("no deferred rewrite to resume");
        }
        suspended = null;
        try {
            ByteString out = s.out().concat(rewriteOrSuspend(s.frame(), s.reserved(), s.chunk(), s.pos(), s.out()));
            return process(s.chunk(), s.pos(), out);
        } catch (RewriteDeferred d) {
            throw d;
        } catch (KafkaFrameException | RuntimeException | Error e) {
            fail();
            throw e;
        }
    }

    /** True while a rewrite is deferred: {@link #resume} must come before the next {@link #accept}. */
    public boolean suspended() {
        return suspended != null;
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
        if (suspended != null) {
            budget.release(suspended.reserved());
            suspended = null;
        }
    }

    /** True while bytes of an incomplete frame are held (a REWRITE frame, or a size field / head not yet complete). */
    public boolean holdsPartialFrame() {
        return !held.isEmpty() || suspended != null;
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
    private ByteString process(ByteString chunk, int start, ByteString outSoFar) throws KafkaFrameException {
        final int n = chunk.size();
        ByteString out = outSoFar;
        int pos = start;
        int runStart = start;
        int frameStart = start;
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
                                long reservation = takeReservation();
                                startNextFrame();
                                out = out.concat(rewriteOrSuspend(prefix, reservation, chunk, pos, out));
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
                        ByteString frame = held.concat(chunk.substring(frameStart, pos));
                        long reservation = takeReservation();
                        startNextFrame();
                        out = out.concat(rewriteOrSuspend(frame, reservation, chunk, pos, out));
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

    /** Hands the current frame's reservation to its rewrite, so that startNextFrame() does not return it early. */
    private long takeReservation() {
        long r = reserved;
        reserved = 0;
        return r;
    }

    /**
     * Rewrites a complete frame and then returns its reservation; when the handler defers, remembers where the chunk
     * stopped (the frame stays held and reserved, everything before it stays in {@code out}) and passes the deferral up.
     */
    private ByteString rewriteOrSuspend(ByteString frame, long reservation, ByteString chunk, int pos, ByteString out)
            throws KafkaFrameException {
        boolean keep = false;
        try {
            return rewrite(frame);
        } catch (RewriteDeferred d) {
            suspended = new Suspension(chunk, pos, out, frame, reservation);
            keep = true;
            throw d;
        } finally {
            if (!keep) {
                budget.release(reservation);
            }
        }
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
