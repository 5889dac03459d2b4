package io.meshcrypt.filter.config;

import io.meshcrypt.filter.http.HttpRules;
import io.meshcrypt.filter.policy.EncryptionPolicy;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;

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
 *   encrypt:                         # topic globs whose values are encrypted; the first entry a topic matches applies
 *     - "audit*"
 *     - {topic: "orders*", fields: ["/card/number"]}   # JSON values: only these fields
 *   unmatched: passthrough           # or reject
 * http:                              # HTTP ext_proc rules, see docs/configuration.md
 *   rules: [...]
 * </pre>
 *
 * <p>Only {@code keyset} is required. Defaults: {@code listen} 127.0.0.1:50051, {@code maxFrameBytes} 104857600
 * (100 MiB), {@code brokers} empty, {@code policy.encrypt} ["*"], {@code policy.unmatched} passthrough. Unknown
 * keys, wrong types, malformed host:port values, non-positive sizes and empty patterns are errors. Every error
 * names the file, line:column and field path, e.g.
 * {@code /etc/meshcrypt/filter.yaml:7:3: policy.unmatched: must be one of passthrough, reject (got "drop")}.
 *
 * <p>Host names: {@code listen} is resolved on load (it is bound locally; port 0 picks a free port). Broker
 * addresses stay unresolved: they are only handed to clients. The keyset path is resolved but not opened here.
 *
 * @param listen the address the gRPC server binds
 * @param maxFrameBytes the largest Kafka frame held for rewriting
 * @param keyset absolute path of the Tink JSON keyset
 * @param brokers node id to the advertised (Envoy) address; a broker missing here closes the connection rather than letting a client bypass the proxy
 * @param policy which topics are encrypted
 * @param http the HTTP rules (empty: HTTP traffic passes unchanged)
 */
public record FilterConfig(
        InetSocketAddress listen,
        int maxFrameBytes,
        Path keyset,
        Map<Integer, InetSocketAddress> brokers,
        EncryptionPolicy policy,
        HttpRules http) {

    public static final String DEFAULT_LISTEN = "127.0.0.1:50051";
    public static final int DEFAULT_MAX_FRAME_BYTES = 104_857_600;

    public FilterConfig {
        Objects.requireNonNull(listen, "listen");
        Objects.requireNonNull(keyset, "keyset");
        Objects.requireNonNull(policy, "policy");
        Objects.requireNonNull(http, "http");
        if (maxFrameBytes <= 0) {
            throw new IllegalArgumentException("maxFrameBytes must be positive");
        }
        brokers = Map.copyOf(brokers);
    }

    /** Loads and validates; errors name the file, line and field. */
    public static FilterConfig load(Path file) throws ConfigException {
        byte[] yaml;
        try {
            yaml = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new ConfigException(file + ": config file not found", e);
        } catch (IOException e) {
            throw new ConfigException(file + ": cannot read config file: " + e, e);
        }
        return new ConfigReader(file).read(YamlTree.parse(file.toString(), yaml));
    }
}
