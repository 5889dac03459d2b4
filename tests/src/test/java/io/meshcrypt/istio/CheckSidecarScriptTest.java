package io.meshcrypt.istio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.meshcrypt.e2e.support.Await;
import io.meshcrypt.testsupport.RepoRoot;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * istio/check-sidecar.sh against a real Envoy 1.40 that receives the EnvoyFilter's Kafka listener over
 * LDS (from a watched file, as istiod would push it), including rejected updates. kubectl is replaced
 * by a stand-in that answers `kubectl exec ... -c istio-proxy -- pilot-agent request GET PATH` from the
 * Envoy's admin API, which is what pilot-agent does in a pod.
 */
class CheckSidecarScriptTest {

    private static final String LISTENER = "meshcrypt-kafka-9092";

    private static Path root;
    private static JsonNode kafkaFilter;

    @TempDir
    Path dir;

    private SidecarEnvoy envoy;

    @BeforeAll
    static void locate() {
        root = RepoRoot.find();
        kafkaFilter = IstioManifests.read(
                IstioManifests.istioDir(root).resolve("base/workloads/envoyfilter-kafka.yaml"));
    }

    @AfterEach
    void stop() {
        if (envoy != null) {
            envoy.close();
        }
    }

    @Test
    void givenSidecarWithMeshcryptListener_whenChecked_thenEveryCheckPasses() throws Exception {
        startSidecar(List.of(meshcryptListener()));

        Result result = checkSidecar();

        assertEquals(0, result.exitCode(), result.output());
        assertTrue(result.output().contains("ok    proxy has envoy.filters.network.ext_proc"), result.output());
        assertTrue(result.output().contains("ok    listener " + LISTENER + " is active"), result.output());
    }

    @Test
    void givenRejectedListenerUpdate_whenChecked_thenPreviousFilteredListenerStaysAndCheckFails() throws Exception {
        startSidecar(List.of(meshcryptListener()));

        // When: an update the proxy cannot load (what a proxy without the filter does with every version)
        pushListeners(List.of(withUnknownNetworkFilter(meshcryptListener())), "2");
        Await.until(Duration.ofSeconds(20), () -> envoy.stat("listener_manager.lds.update_rejected") == 1,
                () -> "Envoy rejecting the listener update");
        Result result = checkSidecar();

        // Then: Envoy keeps the previous version, which still has ext_proc; the script reports the NACK
        String dump = envoy.admin("/config_dump?resource=dynamic_listeners");
        JsonNode listener = activeListener(dump);
        assertEquals("envoy.filters.network.ext_proc",
                listener.at("/active_state/listener/filter_chains/0/filters/0/name").asText(), dump);
        assertEquals(1, result.exitCode(), result.output());
        assertTrue(result.output().contains("FAIL  1 LDS update(s) rejected"), result.output());
        assertTrue(result.output().contains("FAIL  a listener is in error_state"), result.output());
    }

    @Test
    void givenListenerRejectedFromTheStart_whenChecked_thenNoKafkaListenerExistsAndCheckFails() throws Exception {
        startSidecar(List.of(withUnknownNetworkFilter(meshcryptListener())));
        Await.until(Duration.ofSeconds(20), () -> envoy.stat("listener_manager.lds.update_rejected") >= 1,
                () -> "Envoy rejecting the listener");

        Result result = checkSidecar();

        assertFalse(envoy.admin("/listeners").contains(LISTENER), "a rejected listener must not exist");
        assertEquals(1, result.exitCode(), result.output());
        assertTrue(result.output().contains("FAIL  listener " + LISTENER + " is not active"), result.output());
    }

    @Test
    void givenIstioGeneratedKafkaListenerBesideMeshcrypt_whenChecked_thenBypassReported() throws Exception {
        // what istiod generates when the Kafka service is visible to the sidecar (Sidecar resource missing)
        ObjectNode istioListener = IstioManifests.JSON.createObjectNode();
        istioListener.put("name", "10.96.0.20_9092")
                .set("address", IstioManifests.socketAddress("10.96.0.20", 9092));
        istioListener.putObject("bind_to_port").put("value", false);
        istioListener.putArray("filter_chains").addObject().putArray("filters")
                .add(SidecarEnvoy.tcpProxy("outbound|9092||kafka.kafka.svc.cluster.local", "BlackHoleCluster"));
        startSidecar(List.of(meshcryptListener(), istioListener));

        Result result = checkSidecar();

        assertEquals(1, result.exitCode(), result.output());
        assertTrue(result.output().contains("FAIL  other listeners serve port 9092"), result.output());
    }

    @Test
    void givenSidecarWithTheBridgeModuleListener_whenChecked_thenEveryCheckPassesAndTheLoopbackListenerIsFound()
            throws Exception {
        List<ObjectNode> bridge = bridgeListeners();
        startSidecar(bridge, true);

        Result result = checkSidecar();

        assertEquals(0, result.exitCode(), result.output());
        assertTrue(result.output().contains("ok    listener " + LISTENER + " is active with the ext_proc bridge module"),
                result.output());
        assertTrue(result.output().contains("ok    the bridge's loopback listener 127.0.0.1:"), result.output());
    }

    @Test
    void givenBridgeModuleWithoutItsLoopbackListener_whenChecked_thenCheckFails() throws Exception {
        startSidecar(List.of(bridgeListeners().get(0)), true);

        Result result = checkSidecar();

        assertEquals(1, result.exitCode(), result.output());
        assertTrue(result.output().contains("FAIL  the bridge calls 127.0.0.1:"), result.output());
    }

    // ---- the sidecar

    /**
     * The Kafka listener and the loopback listener as istio/components/dynamic-module makes them: its JSON patch applied
     * to the base listener, the loopback's cluster the sample layout's filter-service cluster (what the wiring component
     * writes and the patch copies), on a free port with the module's filter_service following it (a host shares one
     * loopback among tests).
     */
    private List<ObjectNode> bridgeListeners() throws IOException {
        JsonNode component = IstioManifests.read(IstioManifests.istioDir(root).resolve("components/dynamic-module/kustomization.yaml"));
        ObjectNode kafka = meshcryptListener();
        ObjectNode loopback = null;
        for (JsonNode op : new YAMLMapper().readTree(component.at("/patches/0/patch").asText())) {
            if (op.path("op").asText().equals("replace") && op.path("path").asText().endsWith("/filters/0")) {
                ((ArrayNode) kafka.at("/filter_chains/0/filters")).set(0, op.get("value").deepCopy());
            } else if (op.path("op").asText().equals("add")) {
                loopback = (ObjectNode) op.at("/value/patch/value").deepCopy();
            }
        }
        assertTrue(loopback != null && SidecarEnvoy.loadsModule(kafka), "the component's patch: " + component);
        int port = SidecarEnvoy.freePort();
        loopback.set("address", IstioManifests.socketAddress("127.0.0.1", port));
        ((ObjectNode) loopback.at("/filter_chains/0/filters/0/typed_config")).put("cluster", IstioManifests.FILTER_CLUSTER);
        ObjectNode filterConfig = (ObjectNode) kafka.at("/filter_chains/0/filters/0/typed_config/filter_config");
        ObjectNode moduleConfig = (ObjectNode) IstioManifests.JSON.readTree(filterConfig.get("value").asText());
        moduleConfig.put("filter_service", "http://127.0.0.1:" + port);
        filterConfig.put("value", IstioManifests.JSON.writeValueAsString(moduleConfig));
        return List.of(kafka, loopback);
    }

    private ObjectNode meshcryptListener() {
        return (ObjectNode) IstioManifests.onlyPatch(kafkaFilter, "LISTENER", "SIDECAR_OUTBOUND")
                .at("/patch/value").deepCopy();
    }

    private static ObjectNode withUnknownNetworkFilter(ObjectNode listener) {
        // a message Envoy knows but has no network filter for: the same "Didn't find a registered
        // implementation" a proxy built without network ext_proc answers for NetworkExternalProcessor
        ((ObjectNode) listener.at("/filter_chains/0/filters/0")).putObject("typed_config")
                .put("@type", "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router");
        return listener;
    }

    private void startSidecar(List<ObjectNode> listeners) throws IOException {
        startSidecar(listeners, false);
    }

    private void startSidecar(List<ObjectNode> listeners, boolean withBridgeModule) throws IOException {
        int adminPort = SidecarEnvoy.freePort();
        ObjectNode bootstrap = SidecarEnvoy.bootstrap(dir, adminPort);
        // the Kafka cluster without SDS (none runs here); the listener under test is what matters
        String cluster = IstioManifests.onlyPatch(kafkaFilter, "CLUSTER", "SIDECAR_OUTBOUND").at("/patch/value/name").asText();
        bootstrap.withArray("/static_resources/clusters").add(IstioManifests.staticCluster(cluster, "127.0.0.1", 9));
        Path lds = Files.createDirectories(dir.resolve("lds"));
        ObjectNode ldsConfig = bootstrap.putObject("dynamic_resources").putObject("lds_config");
        ldsConfig.put("resource_api_version", "V3").putObject("path_config_source")
                .put("path", lds.resolve("lds.json").toString())
                .putObject("watched_directory").put("path", lds.toString());
        pushListeners(listeners, "1");
        envoy = SidecarEnvoy.start(dir, bootstrap, adminPort, withBridgeModule);
    }

    /** Replaces the LDS file atomically, as Envoy's watched-directory source expects. */
    private void pushListeners(List<ObjectNode> listeners, String version) throws IOException {
        ObjectNode response = IstioManifests.JSON.createObjectNode().put("version_info", version);
        for (ObjectNode listener : listeners) {
            ObjectNode resource = listener.deepCopy();
            resource.put("@type", "type.googleapis.com/envoy.config.listener.v3.Listener");
            response.withArray("resources").add(resource);
        }
        Path tmp = dir.resolve("lds.json.tmp");
        Files.writeString(tmp, IstioManifests.JSON.writeValueAsString(response));
        Files.move(tmp, dir.resolve("lds/lds.json"), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    private static JsonNode activeListener(String dump) throws IOException {
        for (JsonNode listener : IstioManifests.JSON.readTree(dump).path("configs")) {
            if (listener.path("name").asText().equals(LISTENER)) {
                return listener;
            }
        }
        throw new AssertionError("no dynamic listener " + LISTENER + " in " + dump);
    }

    // ---- the script

    private record Result(int exitCode, String output) {
    }

    private Result checkSidecar() throws IOException, InterruptedException {
        Path bin = Files.createDirectories(dir.resolve("bin"));
        Path kubectl = bin.resolve("kubectl");
        Files.writeString(kubectl, """
                #!/usr/bin/env bash
                # stand-in: kubectl exec -n NS POD -c istio-proxy -- pilot-agent request GET PATH
                set -euo pipefail
                args=("$@")
                n=${#args[@]}
                [[ ${args[0]} == exec && ${args[n-4]} == pilot-agent && ${args[n-3]} == request && ${args[n-2]} == GET ]] \\
                  || { echo "unexpected kubectl call: $*" >&2; exit 2; }
                exec curl -fsS "http://127.0.0.1:%d/${args[n-1]}"
                """.formatted(envoy.adminPort()));
        Files.setPosixFilePermissions(kubectl, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path script = IstioManifests.istioDir(root).resolve("check-sidecar.sh");
        Path out = dir.resolve("check-sidecar.out");
        ProcessBuilder pb = new ProcessBuilder("bash", script.toString(), "apps", "orders-7d9f", "9092")
                .redirectErrorStream(true).redirectOutput(out.toFile());
        // no istioctl here: that check is skipped, the others run against the real Envoy
        pb.environment().put("PATH", bin + ":/usr/local/bin:/usr/bin:/bin");
        Process p = pb.start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "check-sidecar.sh did not finish");
        return new Result(p.exitValue(), Files.readString(out));
    }
}
