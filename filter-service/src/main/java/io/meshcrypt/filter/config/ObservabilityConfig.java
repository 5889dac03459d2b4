package io.meshcrypt.filter.config;

import io.meshcrypt.filter.transport.ConnectionLog;
import java.net.InetSocketAddress;
import java.util.Objects;

/**
 * The {@code observability:} section of filter.yaml: the HTTP endpoint serving {@code /metrics} (Prometheus text),
 * {@code /healthz} and {@code /readyz}. Absent: no endpoint (the gRPC health service still answers on {@code listen}).
 *
 * <pre>
 * observability:
 *   listen: 127.0.0.1:9464     # default; a non-loopback address exposes topic names to whoever can connect
 *   maxTopicLabels: 100        # topics counted under their own label; later ones are counted as topic="other"
 *   connectionLog: text        # one INFO line per connection end: text (default), json or none
 * </pre>
 *
 * @param listen the address the HTTP endpoint binds (port 0 picks a free one)
 * @param maxTopicLabels how many distinct topic labels the record counters take before the rest go to {@code other}
 * @param connectionLog how each proxied connection's end is logged
 */
public record ObservabilityConfig(InetSocketAddress listen, int maxTopicLabels, ConnectionLog.Format connectionLog) {
    public static final String DEFAULT_LISTEN = "127.0.0.1:9464";
    public static final int DEFAULT_MAX_TOPIC_LABELS = 100;

    public ObservabilityConfig(InetSocketAddress listen, int maxTopicLabels) {
        this(listen, maxTopicLabels, ConnectionLog.Format.TEXT);
    }

    public ObservabilityConfig {
        Objects.requireNonNull(listen, "listen");
        Objects.requireNonNull(connectionLog, "connectionLog");
        if (maxTopicLabels < 1) {
            throw new IllegalArgumentException("maxTopicLabels must be >= 1: " + maxTopicLabels);
        }
    }
}
