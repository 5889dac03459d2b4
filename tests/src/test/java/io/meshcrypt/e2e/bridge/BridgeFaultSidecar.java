package io.meshcrypt.e2e.bridge;

import io.meshcrypt.e2e.support.StaticSidecar;
import io.meshcrypt.testsupport.EnvoyProcess;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * An Envoy a test starts itself, with a static config (no xDS): one Kafka listener through the bridge module to a
 * filter-service address the test picks (a {@link BridgeFaultProxy}, or the mesh's own port) and on to the mesh's
 * broker. The module's {@code filter_config} is the one the xDS server writes, the Envoy binary any version: so the
 * fault tests can put a proxy under the bridge, and the version tests can load it into Envoy 1.38 and 1.39.
 */
final class BridgeFaultSidecar implements AutoCloseable {

    private static final Duration READY_TIMEOUT = Duration.ofSeconds(90);

    final int port;
    private final EnvoyProcess envoy;

    private BridgeFaultSidecar(int port, EnvoyProcess envoy) {
        this.port = port;
        this.envoy = envoy;
    }

    /**
     * Starts {@code envoy} in {@code dir} with the bridge ({@code lib<module>.so} in {@code moduleDir}) talking to the
     * filter-service on 127.0.0.1:{@code filterServicePort}, in front of {@code broker} (host:port, node id 1).
     */
    static BridgeFaultSidecar start(Path envoy, Path moduleDir, int filterServicePort, String broker, Path dir)
            throws IOException {
        int[] ports = StaticSidecar.freePorts(2);
        int port = ports[0];
        int admin = ports[1];
        String[] hostPort = broker.split(":");
        // what ExtProcSettings gives the xDS server's bridge filter: listener map, node, client address, 5 s timeout
        String filterConfig = ("{\"filter_service\":\"http://127.0.0.1:%d\",\"message_timeout_ms\":5000,"
                + "\"initial_metadata\":[{\"key\":\"x-meshcrypt-broker-listeners\",\"value\":\"1=127.0.0.1:%d\"},"
                + "{\"key\":\"x-meshcrypt-sidecar-node\",\"value\":\"bridge-fault\"},"
                + "{\"key\":\"x-meshcrypt-client-address\",\"value\":\"%%DOWNSTREAM_REMOTE_ADDRESS%%\"}]}")
                .formatted(filterServicePort, port);
        StringBuilder y = new StringBuilder();
        y.append("admin:\n  address:\n    socket_address: { address: 127.0.0.1, port_value: ").append(admin).append(" }\n");
        y.append("static_resources:\n  listeners:\n");
        y.append("""
                  - name: kafka_bridge
                    address:
                      socket_address: { address: 127.0.0.1, port_value: %d }
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.dynamic_modules
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.dynamic_modules.v3.DynamicModuleNetworkFilter
                          dynamic_module_config: { name: meshcrypt_ext_proc_bridge }
                          filter_name: ext_proc_bridge
                          filter_config:
                            "@type": type.googleapis.com/google.protobuf.StringValue
                            value: '%s'
                      - name: envoy.filters.network.tcp_proxy
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                          stat_prefix: kafka_bridge
                          cluster: broker
                  clusters:
                """.formatted(port, filterConfig));
        StaticSidecar.cluster(y, "broker", hostPort[0], Integer.parseInt(hostPort[1]));
        Files.createDirectories(dir);
        Path config = Files.writeString(dir.resolve("envoy.yaml"), y.toString());
        Path log = dir.resolve("envoy.log");
        Files.deleteIfExists(log); // the tests read it: nothing from an earlier run
        // the module is found through ENVOY_DYNAMIC_MODULES_SEARCH_PATH, as in the mesh's Envoys
        EnvoyProcess.Command command = EnvoyProcess.Command.of("--concurrency", "2", "--log-level", "info")
                .withBinary(envoy).withEnvironment("ENVOY_DYNAMIC_MODULES_SEARCH_PATH", moduleDir.toString());
        return new BridgeFaultSidecar(port, EnvoyProcess.start(config, admin, log, READY_TIMEOUT, command));
    }

    String bootstrap() {
        return "127.0.0.1:" + port;
    }

    String log() {
        return envoy.logText();
    }

    boolean alive() {
        return envoy.process().isAlive();
    }

    /** GET on the admin API; empty when it does not answer. */
    String admin(String path) {
        return envoy.admin(path);
    }

    @Override
    public void close() {
        envoy.close();
    }
}
