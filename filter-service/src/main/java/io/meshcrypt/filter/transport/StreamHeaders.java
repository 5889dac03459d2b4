package io.meshcrypt.filter.transport;

/**
 * The gRPC request headers of one ext_proc stream: what the Envoy listener that opened it says about itself
 * ({@code grpc_service.initial_metadata} in its filter config), read when the connection's handler is created.
 */
@FunctionalInterface
public interface StreamHeaders {

    /** A stream that carries no meshcrypt headers (a static bootstrap, or a test). */
    StreamHeaders NONE = name -> null;

    /** @return the value of the lower-case header {@code name}, or null when absent */
    String get(String name);
}
