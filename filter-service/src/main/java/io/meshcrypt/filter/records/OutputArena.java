package io.meshcrypt.filter.records;

import java.nio.ByteBuffer;

/**
 * Where {@link RecordBatchRewriter} writes rewritten records on a thread that sends them right away: a per-thread array
 * the rewrites of one response are bump-allocated from, reused once that response was sent. gRPC serialises a response
 * inside {@code ServerCall.sendMessage} (grpc-java's {@code MessageFramer} drains the message into its own buffers
 * before {@code onNext} returns), so a rewritten frame's bytes need to live only until the send that carries them.
 * That saves allocating, per partition, an array the size of its rewritten records. It holds for the Netty transport
 * the filter-service serves on, not for grpc-java's in-process transport, which hands the message object itself to
 * the client: never open a scope around a call whose responses are not serialised when {@code onNext} returns.
 *
 * <p>The lifetime rules, all on one thread:
 * <ul>
 *   <li>Bytes are handed out only inside a {@link #enter() scope} opened by the code that will send them (a stream's
 *       task), and only in the outermost one: a scope nested in another (a callback of another stream run inside this
 *       one's task) and code outside any scope get nothing, and the rewriter allocates exactly as it would without an
 *       arena.</li>
 *   <li>{@link #sent()}, called right after the response was handed to gRPC, makes every byte given out so far
 *       reusable. So a task must not keep rewritten bytes for a later response past a send of its own.</li>
 *   <li>Bytes still given out when the outermost scope ends were not sent: whoever holds them (a frame parked until a
 *       data key arrives) may send them later. The array is then left to them and the garbage collector, never written
 *       again; the thread starts a new one when it next needs it.</li>
 * </ul>
 * A reuse the rules did not foresee fails closed: {@link #resets()} counts the reuses, and a stream that finds it
 * changed between rewriting a request's frames and sending them resets the connection instead of sending bytes that
 * may have been overwritten ({@link #requireNoResetSince}).
 */
public final class OutputArena {

    /** The first array a thread takes; it doubles when a rewrite does not fit, up to {@link #MAX_BYTES}. */
    static final int INITIAL_BYTES = 256 * 1024;
    /**
     * The largest array a thread keeps, reused response after response: the records of larger responses are allocated
     * exactly, as without an arena. Two fetch responses of the consumers' default {@code max.partition.fetch.bytes}.
     */
    static final int MAX_BYTES = 2 * 1024 * 1024;

    private static final ThreadLocal<OutputArena> ARENA = ThreadLocal.withInitial(OutputArena::new);

    private byte[] array;
    /** Bytes of {@link #array} given out since the last reuse. */
    private int top;
    private int depth;
    private long resets;
    /** The region a rewrite is writing into and has not committed yet; null when none. */
    private ByteBuffer lent;

    private OutputArena() {
    }

    /** Opens a scope on this thread: the caller sends what is rewritten inside it, then {@link #exit()}. */
    public static void enter() {
        ARENA.get().depth++;
    }

    /**
     * Closes the scope {@link #enter()} opened. Leaving the outermost one with bytes given out and not sent leaves the
     * array to whoever holds them.
     */
    public static void exit() {
        OutputArena arena = ARENA.get();
        if (arena.depth <= 0) {
            throw new IllegalStateException("OutputArena.exit without enter");
        }
        if (--arena.depth == 0 && (arena.top > 0 || arena.lent != null)) {
            arena.abandon();
        }
    }

    /**
     * The response that carries what this thread rewrote was handed to gRPC (which copied it): the bytes may be reused.
     * Does nothing inside a nested scope, whose sends carry nothing of the arena.
     */
    public static void sent() {
        OutputArena arena = ARENA.get();
        if (arena.depth == 1 && arena.top > 0) {
            if (arena.lent != null) {
                // A send inside a rewrite (a bug): the region stays that rewrite's, whose commit then fails.
                arena.abandon();
            } else {
                arena.top = 0;
            }
            arena.resets++;
        }
    }

    /** How many times this thread's arena bytes were reused so far; see {@link #requireNoResetSince}. */
    public static long resets() {
        return ARENA.get().resets;
    }

    /**
     * Fails unless this thread's arena bytes were not reused since {@link #resets()} returned {@code resets}: what was
     * rewritten after that is still intact. Call before sending it; the failure must reset the connection.
     */
    public static void requireNoResetSince(long resets) {
        long now = ARENA.get().resets;
        if (now != resets) {
            throw new IllegalStateException("rewritten records were released for reuse before their response was sent ("
                    + (now - resets) + " reuses since the rewrite began); refusing to send them");
        }
    }

    /**
     * A region to write at least {@code length} bytes into (position 0, capacity all that is free), or null: outside
     * the outermost scope, while another region is lent, or when {@code length} would not fit even an empty
     * {@link #MAX_BYTES} array. Give it back with {@link #commit} or {@link #giveBack}.
     */
    static ByteBuffer lend(int length) {
        OutputArena arena = ARENA.get();
        if (arena.depth != 1 || arena.lent != null || length > MAX_BYTES) {
            return null;
        }
        if (arena.array == null || arena.array.length - arena.top < length) {
            if (arena.array != null && arena.array.length >= MAX_BYTES && arena.top > 0) {
                return null; // full of bytes not sent yet: this rewrite allocates its own, as without an arena
            }
            // Large enough for what is given out already and this: the next response of the same shape fits. Bytes
            // given out stay in the old array, which is never written again.
            // A thread whose array was left to a parked frame starts small again: a peer that makes frames wait for
            // data keys over and over costs little garbage per deferral.
            long wanted = (long) arena.top + length;
            int size = arena.array == null ? INITIAL_BYTES : arena.array.length;
            while (size < wanted && size < MAX_BYTES) {
                size = Math.min(MAX_BYTES, size * 2);
            }
            arena.array = new byte[size];
            arena.top = 0;
        }
        arena.lent = ByteBuffer.wrap(arena.array, arena.top, arena.array.length - arena.top).slice();
        return arena.lent;
    }

    /**
     * The first {@code length} bytes written into {@code region} (from {@link #lend}), kept until the next
     * {@link #sent()}; the rest of the region is free again.
     */
    static ByteBuffer commit(ByteBuffer region, int length) {
        OutputArena arena = ARENA.get();
        if (region != arena.lent || region.array() != arena.array) {
            throw new IllegalStateException("OutputArena: committing a region that is not the one lent");
        }
        if (length < 0 || length > region.capacity()) {
            throw new IllegalStateException("OutputArena: " + length + " bytes do not fit the region lent");
        }
        arena.lent = null;
        arena.top += length;
        return region.duplicate().position(0).limit(length).slice();
    }

    /** Returns a region from {@link #lend} without keeping anything of it; no-op when it was committed. */
    static void giveBack(ByteBuffer region) {
        OutputArena arena = ARENA.get();
        if (region != null && region == arena.lent) {
            arena.lent = null;
        }
    }

    private void abandon() {
        array = null;
        top = 0;
        lent = null;
    }
}
