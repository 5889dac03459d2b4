package io.meshcrypt.filter.transport;

import com.google.protobuf.ByteString;

/**
 * The byte streams of one proxied TCP connection, as Envoy's network ext_proc delivers them.
 * Every call for one connection comes from that connection's own thread, in arrival order.
 * Throwing from either direction closes the connection: nothing more is forwarded (fail closed).
 */
public interface ConnectionHandler {

    /** Client to upstream bytes; returns the bytes to forward in their place (possibly empty, possibly more). */
    ByteString onRead(ByteString data, boolean endOfStream) throws Exception;

    /** Upstream to client bytes; returns the bytes to forward in their place. */
    ByteString onWrite(ByteString data, boolean endOfStream) throws Exception;

    /** The connection is gone (closed, reset, or the stream failed); release what it holds. */
    void onClose();
}
