package io.meshcrypt.filter.transport;

/**
 * The gRPC request headers of one ext_proc stream: what the Envoy listener that opened it says about itself
 * ({@code grpc_service.initial_metadata} in its filter config), read when the connection's handler is created.
 */
@FunctionalInterface
public interface StreamHeaders {

    /**
     * The proxied connection's client address ({@code ip:port}): the xDS server asks Envoy for
     * {@code %DOWNSTREAM_REMOTE_ADDRESS%}, which Envoy evaluates against that connection when it opens the stream.
     * Shown in the connection-end line only; never trusted for a decision.
     */
    String CLIENT_ADDRESS = "x-meshcrypt-client-address";
    /** The sidecar's node id, as the xDS server that configured its listener knows it. Shown only, like the above. */
    String SIDECAR_NODE = "x-meshcrypt-sidecar-node";

    /** A stream that carries no meshcrypt headers (a static bootstrap, or a test). */
    StreamHeaders NONE = name -> null;

    /** @return the value of the lower-case header {@code name}, or null when absent */
    String get(String name);
}
