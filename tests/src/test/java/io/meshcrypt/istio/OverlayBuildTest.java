package io.meshcrypt.istio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.meshcrypt.testsupport.EnvoyProcess;
import io.meshcrypt.testsupport.RepoRoot;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every kustomize overlay, as `kubectl apply -k` would send it: istio/'s Go test builds each overlay
 * with the kustomize library and decodes every object strictly into the Kubernetes and Istio API types
 * (run here so `./mvnw verify` covers it); the EnvoyFilters of each build are then loaded into Envoy.
 */
class OverlayBuildTest {

    private static Path root;
    private static Path builds;
    private static String goTestOutput;
    private static int goTestExit;

    @TempDir
    Path dir;

    @BeforeAll
    static void buildOverlays() throws IOException, InterruptedException {
        root = RepoRoot.find();
        builds = root.resolve("tests/target/istio-build");
        Path log = root.resolve("tests/target/istio-go-test.log");
        Files.createDirectories(builds);
        ProcessBuilder pb = new ProcessBuilder("go", "test", "-count=1", "./...")
                .directory(IstioManifests.istioDir(root).toFile())
                .redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("MESHCRYPT_ISTIO_BUILD_DIR", builds.toString());
        Process p = pb.start();
        // the first run downloads the Go modules
        assertTrue(p.waitFor(10, TimeUnit.MINUTES), "go test in istio/ did not finish; see " + log);
        goTestExit = p.exitValue();
        goTestOutput = Files.readString(log);
    }

    @Test
    void givenEveryOverlay_whenBuiltAndDecodedStrictly_thenGoTestPasses() {
        assertEquals(0, goTestExit, goTestOutput);
        assertTrue(goTestOutput.contains("ok "), goTestOutput);
    }

    @Test
    void givenEveryOverlayBuild_whenItsEnvoyFiltersAreLoadedIntoIstioShapedSidecar_thenEnvoyAcceptsThem()
            throws Exception {
        assertEquals(0, goTestExit, goTestOutput);
        List<Path> overlays;
        try (Stream<Path> files = Files.list(builds)) {
            overlays = files.filter(f -> f.toString().endsWith(".yaml")).sorted().toList();
        }
        assertTrue(overlays.size() >= 2, "overlay builds in " + builds + ": " + overlays);

        for (Path overlay : overlays) {
            List<JsonNode> objects = readAll(overlay);
            JsonNode service = find(objects, "Service", "meshcrypt-filter-service");
            // Istio's outbound cluster name for this overlay's filter-service
            String filterCluster = "outbound|" + service.at("/spec/ports/0/port").asInt() + "||"
                    + service.at("/metadata/name").asText() + "." + service.at("/metadata/namespace").asText()
                    + ".svc.cluster.local";
            ObjectNode bootstrap = SidecarEnvoy.bootstrap(dir, SidecarEnvoy.freePort());
            if (!filterCluster.equals(IstioManifests.FILTER_CLUSTER)) {
                bootstrap.withArray("/static_resources/clusters")
                        .add(IstioManifests.grpcCluster(filterCluster, "10.0.0.9", 9090));
            }
            JsonNode kafka = find(objects, "EnvoyFilter", "meshcrypt-kafka");
            // the Kafka listener, and for the bridge module (dynamic-module overlay) its loopback listener
            for (JsonNode listener : IstioManifests.patches(kafka, "LISTENER", "SIDECAR_OUTBOUND")) {
                bootstrap.withArray("/static_resources/listeners").add(listener.at("/patch/value").deepCopy());
            }
            bootstrap.withArray("/static_resources/clusters")
                    .add(IstioManifests.onlyPatch(kafka, "CLUSTER", "SIDECAR_OUTBOUND").at("/patch/value").deepCopy());
            JsonNode http = findOrNull(objects, "EnvoyFilter", "meshcrypt-http");
            if (http != null) {
                int port = 18080;
                for (String context : List.of("SIDECAR_INBOUND", "SIDECAR_OUTBOUND")) {
                    if (!IstioManifests.patches(http, "HTTP_FILTER", context).isEmpty()) {
                        bootstrap.withArray("/static_resources/listeners").add(SidecarEnvoy.httpListener(http,
                                context + "_" + port, port++, false, "BlackHoleCluster", context));
                    }
                }
            }

            EnvoyProcess.Validation result = SidecarEnvoy.validate(dir, bootstrap);

            assertEquals(0, result.exitCode(), overlay + ": " + result.output());
        }
    }

    private static List<JsonNode> readAll(Path file) throws IOException {
        List<JsonNode> out = new ArrayList<>();
        try (MappingIterator<JsonNode> docs = new YAMLMapper().readerFor(JsonNode.class).readValues(file.toFile())) {
            while (docs.hasNext()) {
                out.add(docs.next());
            }
        }
        assertFalse(out.isEmpty(), file + " is empty");
        return out;
    }

    private static JsonNode find(List<JsonNode> objects, String kind, String name) {
        JsonNode found = findOrNull(objects, kind, name);
        if (found == null) {
            throw new AssertionError("no " + kind + " " + name);
        }
        return found;
    }

    private static JsonNode findOrNull(List<JsonNode> objects, String kind, String name) {
        return objects.stream()
                .filter(o -> o.path("kind").asText().equals(kind) && o.at("/metadata/name").asText().equals(name))
                .findFirst().orElse(null);
    }
}
