package io.meshcrypt.filter.framing;

import com.google.protobuf.ByteOutput;
import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.Objects;

/**
 * Splits one direction of a Kafka connection into length-prefixed frames across arbitrary chunk
 * boundaries. PASS frames stream through as their bytes arrive (never held, never copied more than
 * ByteString slicing needs); REWRITE frames are held until complete and replaced by what the handler returns.
 *
 * <p>Memory, with a {@link HeldBytesBudget.Account}: a REWRITE frame's announced size is admitted against the
 * per-connection budget when the frame starts (before its body arrives), and its bytes are charged to the total of all
 * connections as they really arrive, so announcing a large frame and going silent holds only what was sent. While the
 * complete frame is rewritten it is charged the budget's {@link HeldBytesBudget#rewriteCharge() rewrite charge} times its
 * size: the held bytes, the copies the handler makes of what it rewrites, and the output it builds (about the frame's size). Everything is returned once the rewrite returned, or
 * when the stream fails or {@link #close closes}; a deferred frame keeps only its held bytes. A prefix held across chunks
 * is at most {@code 4 + headBytes} bytes, copied so it pins no larger chunk. How long a frame has been held (or
 * deferred) is exposed by {@link #heldSinceNanos()} so the caller can enforce a deadline.
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
    /** Bytes of the current REWRITE frame received so far and charged to {@link #budget}'s total. */
    private long reserved;
    /** Announced size (size field included) of the current REWRITE frame, admitted against the connection's budget. */
    private long admitted;
    /** System.nanoTime() at the end of the chunk in which the held partial frame began, or NOT_HOLDING. */
    private long heldSince = NOT_HOLDING;
    private boolean failed;
    /** Non-null while a rewrite is deferred: where {@link #resume} picks the chunk up again. */
    private Suspension suspended;

    /**
     * A chunk whose processing stopped at a deferred rewrite: everything before the frame is in {@code out}, and the
     * frame keeps its budget reservation and admission until it is rewritten. {@code since} is when the frame was first
     * deferred: re-deferring does not restart the held-frame clock.
     */
    private record Suspension(ByteString chunk, int pos, ByteString out, ByteString frame, long reserved, long admitted,
                              long since) {
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
     * @param budget the connection's held-bytes account (shared by its two directions): each REWRITE frame's announced
     *     size is admitted against it, its bytes charged as they arrive; past either limit the frame fails
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
            ByteString out = s.out().concat(
                    rewriteOrSuspend(s.frame(), s.reserved(), s.admitted(), s.since(), s.chunk(), s.pos(), s.out()));
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
            budget.retire(suspended.admitted());
            suspended = null;
        }
    }

    /**
     * True between frames: nothing held, nothing deferred, and no passed-through frame still owed bytes. A connection
     * closed here cuts no frame in two.
     */
    public boolean atFrameBoundary() {
        return phase == Phase.PREFIX && held.isEmpty() && suspended == null;
    }

    /** True while bytes of an incomplete frame are held (a REWRITE frame, or a size field / head not yet complete). */
    public boolean holdsPartialFrame() {
        return !held.isEmpty() || suspended != null;
    }

    /**
     * {@link System#nanoTime()} when the incomplete frame held now began arriving (measured when the chunk holding
     * its first byte was accepted), or when the deferred frame was first deferred; else {@link #NOT_HOLDING}. A deferral
     * counts as holding so that the held-frame deadline also bounds how long (and how often) a frame may be deferred.
     */
    public long heldSinceNanos() {
        if (suspended != null) {
            return suspended.since();
        }
        return held.isEmpty() ? NOT_HOLDING : heldSince;
    }

    /** Bytes of the budget's total this stream has charged for the frame it holds (or has deferred). */
    public long reservedBytes() {
        return reserved + (suspended != null ? suspended.reserved() : 0);
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
                                throw new FrameTooLargeException("frame of " + frameSize
                                        + " bytes exceeds the limit of " + maxFrameBytes + " bytes for rewritten frames");
                            }
                            // The announced size counts against this connection before the body arrives (trickling
                            // cannot hold more than was granted); the total is charged only with bytes really held,
                            // so an announcement alone cannot lock the other connections out.
                            budget.admit(frameSize + (long) SIZE_FIELD_BYTES);
                            admitted = frameSize + (long) SIZE_FIELD_BYTES;
                            budget.reserve(target);
                            reserved = target;
                            out = concat(out, chunk, runStart, frameStart);
                            phase = Phase.REWRITE_BODY;
                            if (bodyLeft == 0) {
                                long reservation = takeReservation();
                                long admission = takeAdmission();
                                startNextFrame();
                                out = out.concat(rewriteOrSuspend(prefix, reservation, admission, NOT_HOLDING, chunk,
                                        pos, out));
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
                    budget.reserve(take);
                    reserved += take;
                    pos += take;
                    frameBytesSeen += take;
                    if (frameBytesSeen == frameEnd) {
                        ByteString frame = held.concat(slice(chunk, frameStart, pos));
                        long reservation = takeReservation();
                        long admission = takeAdmission();
                        startNextFrame();
                        out = out.concat(rewriteOrSuspend(frame, reservation, admission, NOT_HOLDING, chunk, pos, out));
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
                // The charge counts the frame's bytes: a slice of a much larger chunk would pin the whole chunk, so
                // copy a tail shorter than half of it (bounded by the chunk, once per chunk).
                ByteString part = chunk.substring(frameStart, n);
                held = held.concat(2L * part.size() < n ? ByteString.copyFrom(part.asReadOnlyByteBuffer()) : part);
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

    /** As {@link #takeReservation()}, for the frame's admission against the connection's budget. */
    private long takeAdmission() {
        long a = admitted;
        admitted = 0;
        return a;
    }

    /**
     * Charges the rewrite's copies, rewrites a complete frame and then returns its reservation, admission and the copies'
     * charge; when the handler defers, remembers where the chunk stopped (the frame stays held, reserved and admitted,
     * everything before it stays in {@code out}; the copies are gone) and passes the deferral up.
     *
     * @param deferredSince when the frame was first deferred, or NOT_HOLDING if it never was
     */
    private ByteString rewriteOrSuspend(ByteString frame, long reservation, long admission, long deferredSince,
                                        ByteString chunk, int pos, ByteString out) throws KafkaFrameException {
        boolean keep = false;
        long copies = 0;
        try {
            // The held frame stays referenced (a deferral retries from it) while the handler copies what it rewrites and
            // builds the output: charge both before they exist, so the total bounds what rewrites really allocate.
            long charge = (budget.rewriteCharge() - 1L) * frame.size();
            budget.reserve(charge);
            copies = charge;
            return rewrite(frame);
        } catch (RewriteDeferred d) {
            suspended = new Suspension(chunk, pos, out, frame, reservation, admission,
                    deferredSince == NOT_HOLDING ? System.nanoTime() : deferredSince);
            keep = true;
            throw d;
        } finally {
            budget.release(copies);
            if (!keep) {
                budget.release(reservation);
                budget.retire(admission);
            }
        }
    }

    private void releaseReservation() {
        if (reserved > 0) {
            budget.release(reserved);
            reserved = 0;
        }
        if (admitted > 0) {
            budget.retire(admitted);
            admitted = 0;
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
        ByteString replacement = handler.rewrite(body(frame), frame);
        if (replacement == null) {
            throw new KafkaFrameException("frame handler returned no bytes for a rewritten frame");
        }
        return replacement;
    }

    /**
     * The frame after its size field, over the frame's own array when it arrived in one piece (no copy: the common
     * case, a whole frame in one chunk), else over a flattened copy. Array-backed either way, so CRC32C and the cipher
     * read it in place; never written (see {@link FrameHandler#rewrite}).
     */
    private static ByteBuffer body(ByteString frame) {
        OnePiece piece = new OnePiece();
        try {
            UnsafeByteOperations.unsafeWriteTo(frame, piece);
        } catch (IOException e) {
            throw new UncheckedIOException("OnePiece does not throw", e);
        }
        ByteBuffer whole = piece.pieces == 1 && piece.array != null
                ? ByteBuffer.wrap(piece.array, piece.offset, piece.length)
                : ByteBuffer.wrap(frame.toByteArray());
        return whole.position(whole.position() + SIZE_FIELD_BYTES).slice();
    }

    /** Captures the array of a ByteString made of one array piece; counts the pieces of any other. */
    private static final class OnePiece extends ByteOutput {
        private int pieces;
        private byte[] array;
        private int offset;
        private int length;

        @Override
        public void writeLazy(byte[] value, int offset, int length) {
            pieces++;
            this.array = value;
            this.offset = offset;
            this.length = length;
        }

        @Override
        public void write(byte[] value, int offset, int length) {
            pieces += 2; // a copying write: not a piece to alias
        }

        @Override
        public void write(byte value) {
            pieces += 2;
        }

        @Override
        public void write(ByteBuffer value) {
            pieces += 2;
        }

        @Override
        public void writeLazy(ByteBuffer value) {
            pieces += 2;
        }
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
        // Forwarding the chunk itself keeps the common all-PASS case allocation free.
        return out.concat(slice(chunk, from, to));
    }

    /** {@code chunk[from, to)}: the chunk itself when that is all of it (substring() always wraps). */
    private static ByteString slice(ByteString chunk, int from, int to) {
        return from == 0 && to == chunk.size() ? chunk : chunk.substring(from, to);
    }
}
