package io.meshcrypt.filter.framing;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Bounds the bytes that incomplete frames pin in memory: per connection and across all connections of the process.
 *
 * <p>Two measures, because they answer different attacks:
 * <ul>
 *   <li>Per connection, the <em>announced</em> sizes of the REWRITE frames it has started ({@link Account#admit}), checked
 *       when a frame starts, before its body arrives: one peer cannot announce many large frames and trickle them in.</li>
 *   <li>Across connections, the bytes <em>actually</em> held ({@link Account#reserve}), charged as they arrive, plus
 *       what a rewrite copies while it runs ({@link FrameStream}): a peer that announces a 100 MiB frame and sends 12
 *       bytes holds 12 bytes of the total, so a few silent connections cannot lock every other connection out.</li>
 * </ul>
 * A frame past either budget fails, which closes that connection only; the process and the other connections are
 * unaffected (fail closed, never fall over). When the total is used up by bytes really held, the connection whose frame
 * needs more is the one reset, not the one holding the most: see docs/configuration.md, {@code limits.maxHeldBytesTotal}.
 * Thread-safe; each {@link Account} is confined to its connection's thread.
 */
public final class HeldBytesBudget {

    private final long perConnectionBytes;
    private final long totalBytes;
    private final int rewriteCharge;
    private final AtomicLong used = new AtomicLong();
    /** REWRITE frames started and not yet rewritten or dropped, all connections. */
    private final AtomicLong frames = new AtomicLong();

    /**
     * @param perConnectionBytes most bytes the frames one connection (both directions together) has started may announce
     * @param totalBytes most bytes all connections together may hold, rewrite copies included
     * @param rewriteCharge how many times its size a frame being rewritten is charged to the total ({@link FrameStream}
     *     holds the frame, the handler copies what it rewrites and builds the output): the filter config's limits own it,
     *     with the totals it sizes
     */
    public HeldBytesBudget(long perConnectionBytes, long totalBytes, int rewriteCharge) {
        if (perConnectionBytes < 1) {
            throw new IllegalArgumentException("perConnectionBytes must be >= 1: " + perConnectionBytes);
        }
        if (totalBytes < 1) {
            throw new IllegalArgumentException("totalBytes must be >= 1: " + totalBytes);
        }
        if (rewriteCharge < 1) {
            throw new IllegalArgumentException("rewriteCharge must be >= 1 (the frame itself): " + rewriteCharge);
        }
        this.perConnectionBytes = perConnectionBytes;
        this.totalBytes = totalBytes;
        this.rewriteCharge = rewriteCharge;
    }

    /** No limit beyond the frame size limit of each stream; for tests and callers that predate the budget. */
    public static HeldBytesBudget unlimited() {
        return new HeldBytesBudget(Long.MAX_VALUE, Long.MAX_VALUE, 1);
    }

    /** A new connection's account; give the same one to both directions' {@link FrameStream}s. */
    public Account newAccount() {
        return new Account();
    }

    /** Bytes reserved by all connections right now. */
    public long heldBytes() {
        return used.get();
    }

    /** Frames held for rewriting by all connections right now: started (admitted) and not rewritten or dropped. */
    public long heldFrames() {
        return frames.get();
    }

    public long perConnectionBytes() {
        return perConnectionBytes;
    }

    public long totalBytes() {
        return totalBytes;
    }

    public int rewriteCharge() {
        return rewriteCharge;
    }

    /** One connection's share of the budget. Not thread-safe: used by the connection's thread only. */
    public final class Account {
        /** Bytes charged to the total: really held, or being copied by a rewrite. */
        private long held;
        /** Announced sizes of the frames started and not yet rewritten, both directions. */
        private long admitted;
        /** Frames admitted and not retired. */
        private int admittedFrames;
        private boolean closed;

        private Account() {
        }

        /**
         * Admits a frame announcing {@code bytes} (size field included) against the per-connection budget; nothing is
         * charged to the total until its bytes arrive.
         *
         * @throws KafkaFrameException naming the per-connection budget when it is exceeded; nothing is admitted then
         */
        public void admit(long bytes) throws KafkaFrameException {
            if (bytes < 0) {
                throw new IllegalArgumentException("bytes must be >= 0: " + bytes);
            }
            if (closed) {
                throw new KafkaFrameException("connection already closed; no frame can be held");
            }
            if (bytes > perConnectionBytes - admitted) {
                throw new FrameTooLargeException("holding a frame of " + bytes + " bytes would make this connection hold "
                        + (admitted + bytes) + " bytes, over the per-connection budget of " + perConnectionBytes
                        + " bytes (limits.maxHeldBytesPerConnection)");
            }
            admitted += bytes;
            admittedFrames++;
            frames.incrementAndGet();
        }

        /** Ends an {@link #admit} of {@code bytes}: the frame was rewritten or dropped. A no-op once closed. */
        public void retire(long bytes) {
            if (closed) {
                return; // close() returned everything; a stream cleaning up after it must not fail
            }
            if (bytes < 0 || bytes > admitted) {
                throw new IllegalArgumentException("retiring " + bytes + " bytes of " + admitted + " admitted");
            }
            admitted -= bytes;
            if (admittedFrames > 0) {
                admittedFrames--;
                frames.decrementAndGet();
            }
        }

        /**
         * Charges {@code bytes} about to be held (or copied) to the total of all connections.
         *
         * @throws KafkaFrameException naming the total budget when it is exceeded; nothing is charged then
         */
        public void reserve(long bytes) throws KafkaFrameException {
            if (bytes < 0) {
                throw new IllegalArgumentException("bytes must be >= 0: " + bytes);
            }
            if (closed) {
                throw new KafkaFrameException("connection already closed; no frame can be held");
            }
            long current;
            do {
                current = used.get();
                if (bytes > totalBytes - current) {
                    throw new KafkaFrameException("holding " + bytes + " more bytes of a frame would exceed the budget"
                            + " of all connections together: " + current + " of " + totalBytes
                            + " bytes already held (limits.maxHeldBytesTotal)");
                }
            } while (!used.compareAndSet(current, current + bytes));
            held += bytes;
        }

        /** Returns {@code bytes} of earlier reservations. A no-op once closed. */
        public void release(long bytes) {
            if (closed) {
                return; // close() returned everything; a stream cleaning up after it must not fail
            }
            if (bytes < 0 || bytes > held) {
                throw new IllegalArgumentException("releasing " + bytes + " bytes of " + held + " reserved");
            }
            held -= bytes;
            used.addAndGet(-bytes);
        }

        /** How many times its size a frame being rewritten is charged: the budget's {@link #rewriteCharge()}. */
        public int rewriteCharge() {
            return rewriteCharge;
        }

        /** Bytes this connection has charged to the total. */
        public long heldBytes() {
            return held;
        }

        /** Announced bytes of the frames this connection has started and not finished. */
        public long admittedBytes() {
            return admitted;
        }

        /** Releases everything this connection still holds; later reservations fail. Idempotent. */
        public void close() {
            if (closed) {
                return;
            }
            used.addAndGet(-held);
            frames.addAndGet(-admittedFrames);
            held = 0;
            admitted = 0;
            admittedFrames = 0;
            closed = true;
        }
    }
}
