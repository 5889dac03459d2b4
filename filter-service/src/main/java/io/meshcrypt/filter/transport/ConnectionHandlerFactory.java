package io.meshcrypt.filter.transport;

/** Creates the handler for each new proxied connection (one gRPC stream). */
@FunctionalInterface
public interface ConnectionHandlerFactory {
    ConnectionHandler open();
}
