package io.meshcrypt.filter.config;

import io.meshcrypt.filter.policy.EncryptionPolicy;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.Map;

/**
 * The filter-service configuration, loaded from one YAML file and validated on load.
 *
 * <pre>
 * listen: 127.0.0.1:50051            # gRPC address Envoy's ext_proc connects to
 * maxFrameBytes: 104857600           # largest Kafka frame held for rewriting
 * keyset: keyset.json                # Tink keyset (JSON); relative paths resolve against this file's folder
 * brokers:                           # explicit-proxy mode: broker node id -> address clients reach it through (its Envoy listener)
 *   1: 127.0.0.1:19093
 * policy:
 *   encrypt: ["*"]                   # topic globs whose values are encrypted
 *   unmatched: passthrough           # or reject
 * </pre>
 *
 * @param brokers node id to the advertised (Envoy) address; a broker missing here closes the connection rather than letting a client bypass the proxy
 */
public record FilterConfig(
        InetSocketAddress listen,
        int maxFrameBytes,
        Path keyset,
        Map<Integer, InetSocketAddress> brokers,
        EncryptionPolicy policy) {

    /** Loads and validates; errors name the file, line and field. */
    public static FilterConfig load(Path file) throws ConfigException {
        throw new UnsupportedOperationException("being written");
    }
}
