package io.meshcrypt.filter.transport;

/** Creates the handler for each new proxied connection (one gRPC stream). */
@FunctionalInterface
public interface ConnectionHandlerFactory {

    /**
     * @param headers the stream's request headers
     * @throws RuntimeException when the stream cannot be served (e.g. a malformed header): its connection is closed
     */
    ConnectionHandler open(StreamHeaders headers);

    /**
     * @param identity the workload identity the filter-service authenticated on the stream ({@link StreamIdentity}),
     *     or null; factories that do not decide by identity ignore it
     */
    default ConnectionHandler open(StreamHeaders headers, String identity) {
        return open(headers);
    }
}
