package io.meshcrypt.filter.transport;

import com.google.protobuf.ByteString;

/**
 * The byte streams of one proxied TCP connection, as Envoy's network ext_proc delivers them.
 * Every call for one connection comes from that connection's own thread, in arrival order.
 * Throwing from either direction closes the connection: nothing more is forwarded (fail closed).
 */
public interface ConnectionHandler {

    /** {@link #heldFrameSinceNanos()} when no incomplete frame is held. */
    long NOT_HOLDING = Long.MAX_VALUE;

    /** Client to upstream bytes; returns the bytes to forward in their place (possibly empty, possibly more). */
    ByteString onRead(ByteString data, boolean endOfStream) throws Exception;

    /** Upstream to client bytes; returns the bytes to forward in their place. */
    ByteString onWrite(ByteString data, boolean endOfStream) throws Exception;

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
}
