package io.meshcrypt.istio;

import static io.meshcrypt.istio.IstioManifests.FILTER_CLUSTER;
import static io.meshcrypt.istio.IstioManifests.JSON;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.meshcrypt.testsupport.EnvoyProcess;
import io.meshcrypt.testsupport.RepoRoot;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * A real Envoy 1.40 ({@link EnvoyProcess}) configured like an Istio sidecar, for validation and for traffic; with the
 * ext_proc bridge module on its search path where the config loads it, as istio-proxy gets it (the dynamic-module
 * overlay: {@code ENVOY_DYNAMIC_MODULES_SEARCH_PATH} from {@code proxyMetadata}).
 */
final class SidecarEnvoy implements AutoCloseable {

    private static final Duration READY = Duration.ofSeconds(30);
    static final String DYNAMIC_MODULES = "envoy.filters.network.dynamic_modules";
    /** The bridge module's build output, which {@code ./meshcrypt setup --for-tests} (cargo) makes. */
    static final String BRIDGE_BUILD = "envoy/dynamic-module/ext-proc-bridge/target/release";
    private static final String BRIDGE_FILE = "libmeshcrypt_ext_proc_bridge.so";

    private final EnvoyProcess envoy;

    private SidecarEnvoy(EnvoyProcess envoy) {
        this.envoy = envoy;
    }

    /** Whether {@code config} (a bootstrap or listeners) runs a dynamic module filter, which Envoy must find. */
    static boolean loadsModule(JsonNode config) {
        return config.findValues("name").stream().anyMatch(n -> DYNAMIC_MODULES.equals(n.asText()));
    }

    /** The folder holding the built bridge module; fails saying how to build it. */
    static Path bridgeModuleDir() {
        Path dir = RepoRoot.find().resolve(BRIDGE_BUILD);
        if (!Files.isRegularFile(dir.resolve(BRIDGE_FILE))) {
            throw new AssertionError("the bridge module " + dir.resolve(BRIDGE_FILE) + " is not built: run ./meshcrypt "
                    + "setup --for-tests (or cargo build --release --locked in envoy/dynamic-module/ext-proc-bridge)");
        }
        return dir;
    }

    /** Envoy with {@code args}, and the bridge module on its search path when {@code withBridgeModule}. */
    private static EnvoyProcess.Command command(boolean withBridgeModule, String... args) {
        EnvoyProcess.Command command = EnvoyProcess.Command.of(args);
        return withBridgeModule
                ? command.withEnvironment("ENVOY_DYNAMIC_MODULES_SEARCH_PATH", bridgeModuleDir().toString())
                : command;
    }

    /**
     * What every sidecar has before any EnvoyFilter: Istio's node identity, the virtual outbound listener
     * (original_dst hand-off to the port listeners, REGISTRY_ONLY default chain into the BlackHoleCluster),
     * Istio's SDS cluster, and the filter-service's outbound cluster (HTTP/2 because its port is grpc-*).
     */
    static ObjectNode bootstrap(Path dir, int adminPort) {
        ObjectNode bootstrap = JSON.createObjectNode();
        // SDS refuses to start without a node identity
        bootstrap.putObject("node").put("id", "sidecar~10.0.0.5~orders-7d9f.apps~apps.svc.cluster.local")
                .put("cluster", "orders.apps");
        bootstrap.putObject("admin").set("address", IstioManifests.socketAddress("127.0.0.1", adminPort));
        ObjectNode resources = bootstrap.putObject("static_resources");
        ObjectNode virtualOutbound = resources.putArray("listeners").addObject();
        virtualOutbound.put("name", "virtualOutbound").put("use_original_dst", true)
                .put("traffic_direction", "OUTBOUND")
                .set("address", IstioManifests.socketAddress("0.0.0.0", 15001));
        virtualOutbound.putObject("bind_to_port").put("value", false);
        virtualOutbound.putArray("listener_filters").addObject().put("name", "envoy.filters.listener.original_dst")
                .putObject("typed_config")
                .put("@type", "type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst");
        virtualOutbound.putArray("filter_chains").addObject().put("name", "BlackHoleCluster")
                .putArray("filters").add(tcpProxy("BlackHoleCluster", "BlackHoleCluster"));
        ArrayNode clusters = resources.putArray("clusters");
        clusters.add(IstioManifests.staticCluster("BlackHoleCluster", null, 0));
        ObjectNode sds = IstioManifests.grpcCluster("sds-grpc", "127.0.0.1", 1);
        sds.putObject("load_assignment").put("cluster_name", "sds-grpc").putArray("endpoints").addObject()
                .putArray("lb_endpoints").addObject().putObject("endpoint").putObject("address")
                .putObject("pipe").put("path", dir.resolve("workload-spiffe-uds.sock").toString());
        clusters.add(sds);
        clusters.add(IstioManifests.grpcCluster(FILTER_CLUSTER, "10.0.0.9", 9090));
        return bootstrap;
    }

    /** An HTTP connection manager listener as Istio builds it, with the manifest's patch for {@code context} applied. */
    static ObjectNode httpListener(JsonNode httpFilter, String name, int port, boolean bound, String routeCluster, String context) {
        ObjectNode listener = JSON.createObjectNode();
        listener.put("name", name).set("address", IstioManifests.socketAddress("0.0.0.0", port));
        if (!bound) {
            listener.putObject("bind_to_port").put("value", false);
        }
        ObjectNode hcm = JSON.createObjectNode();
        hcm.put("@type", "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager")
                .put("stat_prefix", name);
        ObjectNode virtualHost = hcm.putObject("route_config").put("name", name).putArray("virtual_hosts").addObject();
        virtualHost.put("name", "allow_any").putArray("domains").add("*");
        virtualHost.putArray("routes").addObject().<ObjectNode>set("match", JSON.createObjectNode().put("prefix", "/"))
                .putObject("route").put("cluster", routeCluster);
        ArrayNode httpFilters = hcm.putArray("http_filters");
        httpFilters.addObject().put("name", "envoy.filters.http.router").putObject("typed_config")
                .put("@type", "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router");
        JsonNode patch = IstioManifests.onlyPatch(httpFilter, "HTTP_FILTER", context);
        assertEquals("envoy.filters.network.http_connection_manager",
                patch.at("/match/listener/filterChain/filter/name").asText());
        IstioManifests.insertBefore(httpFilters, patch,
                patch.at("/match/listener/filterChain/filter/subFilter/name").asText());
        listener.putArray("filter_chains").addObject().putArray("filters").addObject()
                .put("name", "envoy.filters.network.http_connection_manager").set("typed_config", hcm);
        return listener;
    }

    static ObjectNode tcpProxy(String statPrefix, String cluster) {
        ObjectNode filter = JSON.createObjectNode().put("name", "envoy.filters.network.tcp_proxy");
        filter.putObject("typed_config")
                .put("@type", "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy")
                .put("stat_prefix", statPrefix).put("cluster", cluster);
        return filter;
    }

    static void replaceCluster(ObjectNode bootstrap, ObjectNode replacement) {
        ArrayNode clusters = bootstrap.withArray("/static_resources/clusters");
        for (int i = 0; i < clusters.size(); i++) {
            if (clusters.get(i).path("name").asText().equals(replacement.get("name").asText())) {
                clusters.set(i, replacement);
                return;
            }
        }
        throw new AssertionError("no cluster " + replacement.get("name"));
    }

    /** {@code envoy --mode validate}; with the bridge module on the search path when the config loads a module. */
    static EnvoyProcess.Validation validate(Path dir, ObjectNode bootstrap) throws IOException, InterruptedException {
        Path config = write(dir, bootstrap, "validate");
        Path log = dir.resolve("envoy-validate.log");
        // info with a module: the log then says which module was loaded and whether its ABI version matched
        boolean module = loadsModule(bootstrap);
        return EnvoyProcess.validate(config, log, command(module, "--log-level", module ? "info" : "warn"));
    }

    /**
     * Starts Envoy and waits until its admin API reports LIVE; with the bridge module on the search path when the
     * config loads a module.
     */
    static SidecarEnvoy start(Path dir, ObjectNode bootstrap, int adminPort) throws IOException {
        return start(dir, bootstrap, adminPort, loadsModule(bootstrap));
    }

    /** As {@link #start(Path, ObjectNode, int)}; {@code withBridgeModule} for modules in listeners that come by LDS. */
    static SidecarEnvoy start(Path dir, ObjectNode bootstrap, int adminPort, boolean withBridgeModule) throws IOException {
        Path config = write(dir, bootstrap, "run");
        Path log = dir.resolve("envoy.log");
        return new SidecarEnvoy(EnvoyProcess.start(config, adminPort, log, READY,
                command(withBridgeModule, "--log-level", withBridgeModule ? "info" : "warn")));
    }

    int adminPort() {
        return envoy.adminPort();
    }

    /** The value of one counter or gauge. */
    long stat(String name) {
        String body = admin("/stats?filter="
                + URLEncoder.encode("^" + name.replace(".", "\\.") + "$", StandardCharsets.UTF_8));
        for (String line : body.split("\n")) {
            if (line.startsWith(name + ": ")) {
                return Long.parseLong(line.substring(name.length() + 2).strip());
            }
        }
        throw new AssertionError("no stat " + name + " in " + body);
    }

    /** GET on the admin API; empty when it does not answer (yet). */
    String admin(String path) {
        return envoy.admin(path);
    }

    @Override
    public void close() {
        envoy.close();
    }

    static Path write(Path dir, ObjectNode config, String name) throws IOException {
        Path file = dir.resolve("envoy-" + name + ".json");
        Files.writeString(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(config));
        return file;
    }

    static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0)) {
            return socket.getLocalPort();
        }
    }
}
