package io.meshcrypt.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The status HTTP server of a running xDS server, without Envoys: {@code /status} JSON and {@code /metrics} text. */
class XdsServerStatusTest {

    private static final HttpClient HTTP = HttpClient.newHttpClient();

    @TempDir
    Path dir;

    private static HttpResponse<String> call(XdsServer server, String method, String path) throws Exception {
        InetSocketAddress status = server.statusAddress();
        return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + status.getPort() + path))
                .method(method, HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
    }

    private static JsonNode status(XdsServer server) throws Exception {
        return new ObjectMapper().readTree(call(server, "GET", "/status").body());
    }

    private XdsServer start() throws Exception {
        Path mesh = dir.resolve("mesh.yaml");
        Files.writeString(mesh, OneSidecarMesh.YAML);
        InetSocketAddress any = new InetSocketAddress("127.0.0.1", 0);
        return XdsServer.start(mesh, any, any);
    }

    @Test
    void givenAStartedServer_whenStatusIsRead_thenItNamesTheMeshFileAndItsVersion() throws Exception {
        try (XdsServer server = start()) {
            JsonNode status = status(server);

            assertEquals(List.of("meshFile", "version", "versionSince", "lastMeshError", "meshRejections", "envoys",
                    "filterServices"),
                    status.properties().stream().map(Map.Entry::getKey).toList());
            assertEquals(server.version(), status.get("version").asText());
            assertTrue(server.version().matches("1-[0-9a-f]{8}"), server.version());
            assertTrue(status.get("lastMeshError").isNull());
            // every sidecar of the file is listed, served its snapshot, before its Envoy connects
            assertEquals(1, status.get("envoys").size());
            JsonNode appA = status.get("envoys").get(0);
            assertEquals("app-a", appA.get("node").asText());
            assertTrue(appA.get("inMesh").asBoolean());
            assertEquals(false, appA.get("connected").asBoolean());
            assertEquals(server.version(), appA.get("serving").asText());
        }
    }

    @Test
    void givenAStartedServer_whenMetricsAreRead_thenThePrometheusTextHasTheServerWideSeries() throws Exception {
        try (XdsServer server = start()) {
            HttpResponse<String> metrics = call(server, "GET", "/metrics");

            assertEquals(200, metrics.statusCode());
            assertTrue(metrics.headers().firstValue("Content-Type").orElse("").startsWith("text/plain; version=0.0.4"));
            assertTrue(metrics.body().contains("# TYPE meshcrypt_xds_mesh_rejections_total counter\nmeshcrypt_xds_mesh_rejections_total 0"), metrics.body());
            assertTrue(metrics.body().contains("# TYPE meshcrypt_xds_uptime_seconds gauge\nmeshcrypt_xds_uptime_seconds "), metrics.body());
        }
    }

    @Test
    void givenARunningServer_whenTheMeshFileTurnsInvalid_thenStatusAndMetricsCountTheRejectionAndTheVersionStays() throws Exception {
        try (XdsServer server = start()) {
            String good = server.version();

            Files.writeString(dir.resolve("mesh.yaml"), OneSidecarMesh.YAML.replace("10.0.0.1:9092", "not-an-address"));

            Instant deadline = Instant.now().plus(Duration.ofSeconds(10));
            while (status(server).get("meshRejections").asLong() == 0 && Instant.now().isBefore(deadline)) {
                Thread.sleep(50);
            }
            JsonNode status = status(server);
            assertEquals(1, status.get("meshRejections").asLong());
            assertTrue(status.get("lastMeshError").asText().contains("mesh.yaml"), status.toString());
            assertEquals(good, status.get("version").asText());
            assertTrue(call(server, "GET", "/metrics").body().contains("\nmeshcrypt_xds_mesh_rejections_total 1"));
        }
    }

    @Test
    void givenAStartedServer_whenStatusIsPosted_thenItIsRefused() throws Exception {
        try (XdsServer server = start()) {
            assertEquals(405, call(server, "POST", "/status").statusCode());
        }
    }
}
