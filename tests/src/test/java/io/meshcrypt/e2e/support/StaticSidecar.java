package io.meshcrypt.e2e.support;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Pieces of a static Envoy config for a Kafka sidecar a test starts itself (not one the xDS server configures): a
 * listener whose connections stream to the filter-service over network ext_proc on their way to a broker, and the
 * clusters it needs.
 */
public final class StaticSidecar {
    private StaticSidecar() {
    }

    /**
     * A whole static Kafka sidecar {@code name} in front of one broker: admin on {@code ports[2]}, a bootstrap listener
     * on {@code ports[0]} and broker 1's on {@code ports[1]}, both through the filter-service, whose cluster
     * {@code filterService} appends.
     */
    public static String kafkaSidecar(String name, int[] ports, String brokerHost, int brokerPort, Consumer<StringBuilder> filterService) {
        String listenerMap = "1=127.0.0.1:" + ports[1];
        StringBuilder y = new StringBuilder();
        y.append("admin:\n  address:\n    socket_address: { address: 127.0.0.1, port_value: ").append(ports[2]).append(" }\n");
        y.append("static_resources:\n  listeners:\n");
        kafkaListener(y, name + "_bootstrap", ports[0], "broker", listenerMap);
        kafkaListener(y, name + "_node_1", ports[1], "broker", listenerMap);
        y.append("  clusters:\n");
        filterService.accept(y);
        cluster(y, "broker", brokerHost, brokerPort);
        return y.toString();
    }

    /**
     * A listener on 127.0.0.1:{@code port} whose connections go through the filter-service to {@code cluster}.
     *
     * @param listenerMap the {@code x-meshcrypt-broker-listeners} value: where clients reach each broker through it
     */
    public static void kafkaListener(StringBuilder y, String name, int port, String cluster, String listenerMap) {
        y.append("""
                  - name: %1$s
                    address:
                      socket_address: { address: 127.0.0.1, port_value: %2$d }
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.ext_proc
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.ext_proc.v3.NetworkExternalProcessor
                          stat_prefix: %1$s
                          failure_mode_allow: false
                          processing_mode: { process_read: STREAMED, process_write: STREAMED }
                          message_timeout: 5s
                          grpc_service:
                            envoy_grpc: { cluster_name: filter_service }
                            initial_metadata:
                            - { key: x-meshcrypt-broker-listeners, value: "%4$s" }
                      - name: envoy.filters.network.tcp_proxy
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                          stat_prefix: %1$s
                          cluster: %3$s
                """.formatted(name, port, cluster, listenerMap));
    }

    /**
     * The {@code filter_service} cluster: HTTP/2 to the filter-service's gRPC port on 127.0.0.1.
     *
     * @param transportSocket a {@code transport_socket:} block indented for the cluster (mutual TLS), or ""
     */
    public static void filterServiceCluster(StringBuilder y, int port, String transportSocket) {
        filterServiceCluster(y, "socket_address: { address: 127.0.0.1, port_value: %d }".formatted(port), transportSocket);
    }

    /** The {@code filter_service} cluster on the filter-service's Unix socket {@code path}: HTTP/2, no TLS. */
    public static void filterServiceClusterOnUnixSocket(StringBuilder y, Path path) {
        filterServiceCluster(y, "pipe: { path: \"%s\" }".formatted(path), "");
    }

    private static void filterServiceCluster(StringBuilder y, String address, String transportSocket) {
        y.append("""
                  - name: filter_service
                    type: STATIC
                    connect_timeout: 1s
                    typed_extension_protocol_options:
                      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                        explicit_http_config:
                          http2_protocol_options:
                            initial_stream_window_size: 67108864
                            initial_connection_window_size: 268435456
                    circuit_breakers:
                      thresholds:
                      - priority: DEFAULT
                        max_connections: 100000
                        max_pending_requests: 100000
                        max_requests: 100000
                """).append(transportSocket).append("""
                    load_assignment:
                      cluster_name: filter_service
                      endpoints:
                      - lb_endpoints:
                        - endpoint:
                            address:
                              %s
                """.formatted(address));
    }

    /** A cluster of one static endpoint. */
    public static void cluster(StringBuilder y, String name, String host, int port) {
        y.append("""
                  - name: %1$s
                    type: STATIC
                    connect_timeout: 5s
                    load_assignment:
                      cluster_name: %1$s
                      endpoints:
                      - lb_endpoints:
                        - endpoint:
                            address:
                              socket_address: { address: %2$s, port_value: %3$d }
                """.formatted(name, host, port));
    }

    /** {@code n} loopback ports free a moment ago. */
    public static int[] freePorts(int n) throws IOException {
        List<ServerSocket> held = new ArrayList<>();
        try {
            int[] out = new int[n];
            for (int i = 0; i < n; i++) {
                ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
                held.add(s);
                out[i] = s.getLocalPort();
            }
            return out;
        } finally {
            for (ServerSocket s : held) {
                s.close();
            }
        }
    }
}
