package io.meshcrypt.e2e.bridge;

import io.meshcrypt.e2e.support.StaticSidecar;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * An Envoy a test starts itself, with a static config (no xDS): one Kafka listener through the bridge module to a
 * filter-service address the test picks (a {@link BridgeFaultProxy}, or the mesh's own port) and on to the mesh's
 * broker. The module's {@code filter_config} is the one the xDS server writes, the Envoy binary any version: so the
 * fault tests can put a proxy under the bridge, and the version tests can load it into Envoy 1.38 and 1.39.
 */
final class BridgeFaultSidecar implements AutoCloseable {

    private static final Duration READY_TIMEOUT = Duration.ofSeconds(90);
    private static final HttpClient HTTP = HttpClient.newHttpClient();

    final int port;
    final int adminPort;
    private final Process process;
    private final Path log;

    private BridgeFaultSidecar(int port, int adminPort, Process process, Path log) {
        this.port = port;
        this.adminPort = adminPort;
        this.process = process;
        this.log = log;
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
        ProcessBuilder pb = new ProcessBuilder(List.of(envoy.toString(), "-c", config.toString(), "--disable-hot-restart",
                "--concurrency", "2", "--log-level", "info"))
                .directory(dir.toFile()).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        // the module is found through this variable, as in the mesh's Envoys
        pb.environment().put("ENVOY_DYNAMIC_MODULES_SEARCH_PATH", moduleDir.toString());
        BridgeFaultSidecar sidecar = new BridgeFaultSidecar(port, admin, pb.start(), log);
        sidecar.awaitReady();
        return sidecar;
    }

    String bootstrap() {
        return "127.0.0.1:" + port;
    }

    String log() throws IOException {
        return Files.readString(log);
    }

    boolean alive() {
        return process.isAlive();
    }

    /** GET on the admin API; empty when it does not answer. */
    String admin(String path) {
        try {
            return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + adminPort + path))
                    .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString()).body();
        } catch (IOException e) {
            return "";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private void awaitReady() throws IOException {
        long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
        while (!"LIVE".equals(admin("/ready").strip())) {
            if (!process.isAlive() || System.nanoTime() - deadline > 0) {
                close();
                throw new IllegalStateException("Envoy not LIVE on admin port " + adminPort + " within " + READY_TIMEOUT
                        + " (alive: " + process.isAlive() + "); log " + log + ":\n" + log());
            }
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }
    }

    @Override
    public void close() {
        process.destroy();
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }
}
