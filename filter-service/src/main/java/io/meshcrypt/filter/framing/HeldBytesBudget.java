package io.meshcrypt.filter.framing;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Bounds the bytes that incomplete frames pin in memory: per connection and across all connections of the process.
 * A {@link FrameStream} reserves a REWRITE frame's announced size when the frame starts, before its body arrives, so a
 * peer cannot announce many large frames and trickle them in; the reservation is released when the frame has been
 * rewritten, or when the stream fails or closes. A reservation past either budget fails that frame, which closes that
 * connection only; the process and the other connections are unaffected (fail closed, never fall over).
 *
 * <p>The accounting counts the announced frame sizes, not JVM objects: a rewrite briefly makes a few copies of the
 * frame, so size the total at a fraction of the heap (docs/configuration.md, {@code limits.maxHeldBytesTotal}).
 * Thread-safe; each {@link Account} is confined to its connection's thread.
 */
public final class HeldBytesBudget {

    private final long perConnectionBytes;
    private final long totalBytes;
    private final AtomicLong used = new AtomicLong();

    /**
     * @param perConnectionBytes most bytes one connection (both directions together) may hold
     * @param totalBytes most bytes all connections together may hold
     */
    public HeldBytesBudget(long perConnectionBytes, long totalBytes) {
        if (perConnectionBytes < 1) {
            throw new IllegalArgumentException("perConnectionBytes must be >= 1: " + perConnectionBytes);
        }
        if (totalBytes < 1) {
            throw new IllegalArgumentException("totalBytes must be >= 1: " + totalBytes);
        }
        this.perConnectionBytes = perConnectionBytes;
        this.totalBytes = totalBytes;
    }

    /** No limit beyond the frame size limit of each stream; for tests and callers that predate the budget. */
    public static HeldBytesBudget unlimited() {
        return new HeldBytesBudget(Long.MAX_VALUE, Long.MAX_VALUE);
    }

    /** A new connection's account; give the same one to both directions' {@link FrameStream}s. */
    public Account newAccount() {
        return new Account();
    }

    /** Bytes reserved by all connections right now. */
    public long heldBytes() {
        return used.get();
    }

    public long perConnectionBytes() {
        return perConnectionBytes;
    }

    public long totalBytes() {
        return totalBytes;
    }

    /** One connection's share of the budget. Not thread-safe: used by the connection's thread only. */
    public final class Account {
        private long held;
        private boolean closed;

        private Account() {
        }

        /**
         * Reserves {@code bytes} for a frame about to be held.
         *
         * @throws KafkaFrameException naming the budget that is exceeded; nothing is reserved then
         */
        public void reserve(long bytes) throws KafkaFrameException {
            if (bytes < 0) {
                throw new IllegalArgumentException("bytes must be >= 0: " + bytes);
            }
            if (closed) {
                throw new KafkaFrameException("connection already closed; no frame can be held");
            }
            if (bytes > perConnectionBytes - held) {
                throw new KafkaFrameException("holding a frame of " + bytes + " bytes would make this connection hold "
                        + (held + bytes) + " bytes, over the per-connection budget of " + perConnectionBytes
                        + " bytes (limits.maxHeldBytesPerConnection)");
            }
            long current;
            do {
                current = used.get();
                if (bytes > totalBytes - current) {
                    throw new KafkaFrameException("holding a frame of " + bytes + " bytes would exceed the budget of all"
                            + " connections together: " + current + " of " + totalBytes
                            + " bytes already held (limits.maxHeldBytesTotal)");
                }
            } while (!used.compareAndSet(current, current + bytes));
            held += bytes;
        }

        /** Returns {@code bytes} of earlier reservations. */
        public void release(long bytes) {
            if (bytes < 0 || bytes > held) {
                throw new IllegalArgumentException("releasing " + bytes + " bytes of " + held + " reserved");
            }
            held -= bytes;
            used.addAndGet(-bytes);
        }

        /** Bytes this connection holds. */
        public long heldBytes() {
            return held;
        }

        /** Releases everything this connection still holds; later reservations fail. Idempotent. */
        public void close() {
            closed = true;
            release(held);
        }
    }
}
