package io.meshcrypt.istio;

import static io.meshcrypt.istio.IstioManifests.FILTER_CLUSTER;
import static io.meshcrypt.istio.IstioManifests.JSON;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.meshcrypt.e2e.support.Await;
import io.meshcrypt.e2e.support.LocalMesh;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/** A real Envoy 1.40 configured like an Istio sidecar, for validation and for traffic. */
final class SidecarEnvoy implements AutoCloseable {

    private static final Duration READY = Duration.ofSeconds(30);

    record Validation(int exitCode, String output) {
    }

    private final Process process;
    private final int adminPort;

    private SidecarEnvoy(Process process, int adminPort) {
        this.process = process;
        this.adminPort = adminPort;
    }

    /** The Envoy the mesh launcher installed (the project's pinned 1.40), or -Dmeshcrypt.envoy. */
    static Path binary(LocalMesh mesh) {
        Path envoy = Path.of(System.getProperty("meshcrypt.envoy",
                mesh.logs().getParent().resolve("venv/bin/envoy").toString()));
        assertTrue(Files.isExecutable(envoy), "no Envoy at " + envoy + " (set -Dmeshcrypt.envoy)");
        return envoy;
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

    static Validation validate(Path envoy, Path dir, ObjectNode bootstrap) throws IOException, InterruptedException {
        Path config = write(dir, bootstrap, "validate");
        Path log = dir.resolve("envoy-validate.log");
        Process p = new ProcessBuilder(envoy.toString(), "--mode", "validate", "-c", config.toString(),
                "--log-level", "warn").redirectErrorStream(true).redirectOutput(log.toFile()).start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "envoy --mode validate did not finish");
        return new Validation(p.exitValue(), config + "\n" + Files.readString(log));
    }

    /** Starts Envoy and waits until its admin API reports LIVE. */
    static SidecarEnvoy start(Path envoy, Path dir, ObjectNode bootstrap, int adminPort) throws IOException {
        Path config = write(dir, bootstrap, "run");
        Path log = dir.resolve("envoy.log");
        Process p = new ProcessBuilder(envoy.toString(), "-c", config.toString(), "--disable-hot-restart",
                "--log-level", "warn").redirectErrorStream(true).redirectOutput(log.toFile()).start();
        SidecarEnvoy started = new SidecarEnvoy(p, adminPort);
        try {
            Await.until(READY, () -> {
                if (!p.isAlive()) {
                    throw new AssertionError("Envoy exited: " + readQuietly(log));
                }
                return "LIVE".equals(started.admin("/ready").strip());
            }, () -> "Envoy ready on admin port " + adminPort + "; log: " + readQuietly(log));
        } catch (RuntimeException | Error e) {
            p.destroyForcibly();
            throw e;
        }
        return started;
    }

    int adminPort() {
        return adminPort;
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
        try {
            return HttpClient.newHttpClient().send(
                    HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + adminPort + path))
                            .timeout(Duration.ofSeconds(2)).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
        } catch (IOException e) {
            return "";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    @Override
    public void close() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
    }

    static Path write(Path dir, ObjectNode config, String name) throws IOException {
        Path file = dir.resolve("envoy-" + name + ".json");
        Files.writeString(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(config));
        return file;
    }

    static String readQuietly(Path file) {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            return "(" + e + ")";
        }
    }

    static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0)) {
            return socket.getLocalPort();
        }
    }
}
