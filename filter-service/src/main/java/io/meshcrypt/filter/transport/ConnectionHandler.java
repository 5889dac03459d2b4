package io.meshcrypt.filter.transport;

import com.google.protobuf.ByteString;

/**
 * The byte streams of one proxied TCP connection, as Envoy's network ext_proc delivers them.
 * Every call for one connection comes from that connection's own thread, in arrival order.
 * Throwing from either direction closes the connection: nothing more is forwarded (fail closed), except
 * {@link io.meshcrypt.filter.framing.RewriteDeferred}: the chunk is parked, later chunks queue behind it, and the
 * transport calls the matching {@code resume} method on this connection's thread once the deferral is ready.
 */
public interface ConnectionHandler {

    /** {@link #heldFrameSinceNanos()} when no incomplete frame is held. */
    long NOT_HOLDING = Long.MAX_VALUE;

    /** Client to upstream bytes; returns the bytes to forward in their place (possibly empty, possibly more). */
    ByteString onRead(ByteString data, boolean endOfStream) throws Exception;

    /** Upstream to client bytes; returns the bytes to forward in their place. */
    ByteString onWrite(ByteString data, boolean endOfStream) throws Exception;

    /**
     * Finishes the client-to-upstream chunk whose {@link #onRead} threw
     * {@link io.meshcrypt.filter.framing.RewriteDeferred}, once the deferral is ready; may defer again.
     */
    default ByteString resumeRead() throws Exception {
        throw new IllegalStateException(getClass().getSimpleName() + " never defers");
    }

    /** As {@link #resumeRead}, for the upstream-to-client chunk whose {@link #onWrite} deferred. */
    default ByteString resumeWrite() throws Exception {
        throw new IllegalStateException(getClass().getSimpleName() + " never defers");
    }

    /** The connection is gone (closed, reset, or the stream failed); release what it holds. */
    void onClose();

    /**
     * {@link System#nanoTime()} when the first byte of the oldest incomplete frame this connection still holds
     * arrived (either direction), or {@link #NOT_HOLDING}. The transport resets a connection whose held frame is not
     * complete within the held-frame timeout: a peer that announces a large frame and trickles it in would otherwise
     * pin its memory forever while every message it sends is answered (with nothing to forward).
     */
    default long heldFrameSinceNanos() {
        return NOT_HOLDING;
    }

    /**
     * Whether the connection may be closed now without cutting an exchange in two: no request awaits its response and
     * no frame is half-way through, in either direction. A draining filter-service closes each connection at such a
     * point, so that the client sees an ordinary disconnect between requests and reconnects elsewhere. The default,
     * false, means "never known to be quiet": such connections are cancelled when the drain's grace period ends.
     */
    default boolean isQuiet() {
        return false;
    }

    /**
     * Adds what this connection did (requests, records rewritten, ...) to the line logged when it ends
     * ({@link ConnectionLog}); called once, on the connection's thread, after {@link #onClose}.
     */
    default void summarize(ConnectionLog.Fields fields) {
    }
}
