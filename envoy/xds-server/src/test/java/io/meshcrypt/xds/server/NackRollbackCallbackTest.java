package io.meshcrypt.xds.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.rpc.Status;
import io.envoyproxy.controlplane.cache.v3.Snapshot;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.meshcrypt.meshconfig.mesh.MeshReader;
import io.meshcrypt.xds.OneSidecarMesh;
import io.meshcrypt.xds.snapshot.EnvoyResources;
import io.meshcrypt.xds.snapshot.MeshSnapshots;
import io.meshcrypt.xds.snapshot.MeshSnapshots.MeshVersion;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * ACK/NACK tracking and rollback on one state-of-the-world stream of Envoy {@code app-a}, driven through the
 * callbacks java-control-plane calls, without an Envoy. (XdsScenarios covers the same with real Envoys.)
 */
class NackRollbackCallbackTest {

    private static final String LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener";
    private static final long STREAM = 1;

    private final PrometheusMeterRegistry meters = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final NodeSnapshots nodes = new NodeSnapshots(meters);
    private final MeshSnapshots snapshots = new MeshSnapshots(EnvoyResources.standard());
    private final NackRollbackCallback callback = new NackRollbackCallback(nodes);
    private int nonces;

    private MeshVersion publish(String yaml) throws Exception {
        byte[] content = yaml.getBytes(StandardCharsets.UTF_8);
        MeshVersion version = snapshots.next(MeshReader.parse(Path.of("mesh.yaml"), content), content);
        nodes.publish(version);
        return version;
    }

    /** The server sends {@code version} on the stream; returns the response's nonce. */
    private String send(String version) {
        String nonce = "n" + ++nonces;
        callback.onV3StreamResponse(STREAM, DiscoveryRequest.getDefaultInstance(),
                DiscoveryResponse.newBuilder().setTypeUrl(LISTENER_TYPE).setVersionInfo(version).setNonce(nonce).build());
        return nonce;
    }

    /** Envoy's request: {@code nonce} answered, {@code held} the version it runs, {@code error} for a NACK. */
    private void request(String nonce, String held, String error) {
        DiscoveryRequest.Builder request = DiscoveryRequest.newBuilder()
                .setNode(Node.newBuilder().setId("app-a"))
                .setTypeUrl(LISTENER_TYPE)
                .setResponseNonce(nonce)
                .setVersionInfo(held);
        if (error != null) {
            request.setErrorDetail(Status.newBuilder().setMessage(error));
        }
        callback.onV3StreamRequest(STREAM, request.build());
    }

    private Snapshot served() {
        return nodes.cache().getSnapshot("app-a");
    }

    private MeshVersion connectedAndAcked() throws Exception {
        MeshVersion v1 = publish(OneSidecarMesh.YAML);
        request("", "", null);
        request(send(v1.version()), v1.version(), null);
        return v1;
    }

    @Test
    void givenAnAcknowledgedVersion_whenTheNextIsRejected_thenTheNodeGetsTheAcknowledgedListenersUnderARollbackVersion() throws Exception {
        MeshVersion v1 = connectedAndAcked();
        MeshVersion v2 = publish(OneSidecarMesh.YAML.replace("19192", "19292"));

        request(send(v2.version()), v1.version(), "cannot bind 127.0.0.1:19292");

        assertEquals(v2.version() + "~rollback1", MeshSnapshots.versionOf(served()));
        assertEquals(MeshSnapshots.snapshot(v1.sidecars().get("app-a"), "any").listeners().resources(), served().listeners().resources());
    }

    @Test
    void givenNothingAcknowledgedSinceStart_whenTheVersionIsRejected_thenTheSnapshotIsLabelledWithTheVersionEnvoyHolds() throws Exception {
        MeshVersion v1 = publish(OneSidecarMesh.YAML);
        request("", "7-0badc0de", null);

        request(send(v1.version()), "7-0badc0de", "cannot bind");

        assertEquals("7-0badc0de", MeshSnapshots.versionOf(served()));
    }

    @Test
    void givenANewerVersionAlreadyPublished_whenAnOlderOneIsRejected_thenTheNewerOneStays() throws Exception {
        MeshVersion v1 = connectedAndAcked();
        MeshVersion v2 = publish(OneSidecarMesh.YAML.replace("19192", "19292"));
        String v2Nonce = send(v2.version());
        MeshVersion v3 = publish(OneSidecarMesh.YAML.replace("19192", "19392"));

        request(v2Nonce, v1.version(), "cannot bind");

        assertEquals(v3.version(), MeshSnapshots.versionOf(served()));
    }

    @Test
    void givenARejection_whenStatusAndMetricsAreRead_thenBothCountItForTheNode() throws Exception {
        MeshVersion v1 = connectedAndAcked();
        MeshVersion v2 = publish(OneSidecarMesh.YAML.replace("19192", "19292"));

        request(send(v2.version()), v1.version(), "cannot bind");

        Map<String, Object> envoy = nodes.envoyStatus().getFirst();
        assertEquals("app-a", envoy.get("node"));
        assertEquals(1L, envoy.get("nacks"));
        assertEquals(true, envoy.get("connected"));
        assertEquals(Map.of("Listener", v1.version()), envoy.get("acked"));
        @SuppressWarnings("unchecked")
        Map<String, Object> nack = (Map<String, Object>) envoy.get("lastNack");
        assertEquals(v2.version(), nack.get("version"));
        assertEquals("cannot bind", nack.get("detail"));
        String metrics = meters.scrape();
        assertTrue(metrics.contains("meshcrypt_xds_nacks_total{node=\"app-a\"} 1"), metrics);
        assertTrue(metrics.contains("meshcrypt_xds_connected{node=\"app-a\"} 1"), metrics);
        // the node still runs the generation it acknowledged, one behind the mesh
        assertTrue(metrics.contains("meshcrypt_xds_acked_generation{node=\"app-a\"} " + NodeSnapshots.generation(v1.version())),
                metrics);
        assertTrue(metrics.contains("meshcrypt_xds_mesh_generation " + NodeSnapshots.generation(v2.version())), metrics);
        assertEquals(NodeSnapshots.generation(v1.version()) + 1, NodeSnapshots.generation(v2.version()));
    }

    @Test
    void givenAConnectedEnvoy_whenItsStreamCloses_thenItIsNoLongerConnected() throws Exception {
        connectedAndAcked();

        callback.onStreamClose(STREAM, LISTENER_TYPE);

        assertEquals(false, nodes.envoyStatus().getFirst().get("connected"));
        String metrics = meters.scrape();
        assertTrue(metrics.contains("meshcrypt_xds_connected{node=\"app-a\"} 0"), metrics);
        assertNotEquals(null, served(), "the node keeps its snapshot for when it reconnects");
    }
}
