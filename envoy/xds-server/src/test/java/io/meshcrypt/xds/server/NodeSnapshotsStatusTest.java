package io.meshcrypt.xds.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.meshcrypt.meshconfig.mesh.MeshReader;
import io.meshcrypt.meshconfig.mesh.PolicyDelivery;
import io.meshcrypt.xds.OneSidecarMesh;
import io.meshcrypt.xds.snapshot.EnvoyResources;
import io.meshcrypt.xds.snapshot.MeshSnapshots;
import io.meshcrypt.xds.snapshot.MeshSnapshots.MeshVersion;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** {@code GET /status} lists Envoys and filter-services apart, each as what it is. */
class NodeSnapshotsStatusTest {

    private final NodeSnapshots nodes = new NodeSnapshots(new PrometheusMeterRegistry(PrometheusConfig.DEFAULT));
    private final NackRollbackCallback callback = new NackRollbackCallback(nodes);

    private MeshVersion publish() throws Exception {
        byte[] content = OneSidecarMesh.YAML.getBytes(StandardCharsets.UTF_8);
        MeshVersion version = new MeshSnapshots(EnvoyResources.standard())
                .next(MeshReader.parse(Path.of("mesh.yaml"), content), content);
        nodes.publish(version);
        return version;
    }

    private void connect(long stream, Node.Builder node) {
        callback.onV3StreamRequest(stream, DiscoveryRequest.newBuilder().setNode(node).build());
    }

    @Test
    void givenAFilterServiceSubscribed_whenStatusIsRead_thenItIsAFilterServiceServedThePolicyVersionAndNoEnvoy() throws Exception {
        MeshVersion version = publish();

        connect(1, Node.newBuilder().setId("filter-service@127.0.0.1:50051").setCluster(PolicyDelivery.FILTER_SERVICE_CLUSTER));

        List<Map<String, Object>> filterServices = nodes.filterServiceStatus();
        assertEquals(1, filterServices.size(), filterServices.toString());
        Map<String, Object> fs = filterServices.get(0);
        assertEquals("filter-service@127.0.0.1:50051", fs.get("node"));
        assertEquals(true, fs.get("connected"));
        assertEquals(version.version(), fs.get("serving"));
        assertFalse(fs.containsKey("inMesh"), "a filter-service is no sidecar of the mesh file: " + fs);
        assertEquals(List.of("app-a"), nodes.envoyStatus().stream().map(n -> n.get("node")).toList());
    }

    @Test
    void givenAnEnvoyConnected_whenStatusIsRead_thenItKeepsTheEnvoyFields() throws Exception {
        MeshVersion version = publish();

        connect(1, Node.newBuilder().setId("app-a").setCluster("app-a"));

        Map<String, Object> appA = nodes.envoyStatus().get(0);
        assertEquals(List.of("node", "inMesh", "connected", "mode", "serving", "acked", "nacks"), List.copyOf(appA.keySet()));
        assertEquals(true, appA.get("connected"));
        assertEquals(version.version(), appA.get("serving"));
        assertEquals(List.of(), nodes.filterServiceStatus());
    }

    @Test
    void givenBothKinds_whenNamedForLogs_thenEachIsCalledWhatItIs() {
        connect(1, Node.newBuilder().setId("filter-service@127.0.0.1:50051").setCluster(PolicyDelivery.FILTER_SERVICE_CLUSTER));
        connect(2, Node.newBuilder().setId("app-a"));

        assertEquals("filter-service filter-service@127.0.0.1:50051", nodes.node("filter-service@127.0.0.1:50051").toString());
        assertEquals("Envoy app-a", nodes.node("app-a").toString());
    }
}
