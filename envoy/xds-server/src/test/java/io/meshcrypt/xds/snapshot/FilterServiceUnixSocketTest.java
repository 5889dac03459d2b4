package io.meshcrypt.xds.snapshot;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.core.v3.Address;
import io.envoyproxy.envoy.config.endpoint.v3.LbEndpoint;
import io.envoyproxy.envoy.extensions.upstreams.http.v3.HttpProtocolOptions;
import io.meshcrypt.meshconfig.mesh.Mesh;
import io.meshcrypt.meshconfig.mesh.MeshReader;
import io.meshcrypt.xds.OneSidecarMesh;
import io.meshcrypt.xds.snapshot.EnvoyResources.Resources;
import io.meshcrypt.xds.snapshot.ExtProcSettings.KafkaFilter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The filter_service cluster of a sidecar whose {@code filterService} is {@code unix:<path>}. */
class FilterServiceUnixSocketTest {

    private static final String TLS = FilterServiceTlsTest.TLS;
    private static final String ON_SOCKET = OneSidecarMesh.YAML.replace("filterService: 127.0.0.1:50051",
            "filterService: unix:/run/meshcrypt/app-a.sock");

    private static Resources resources(String yaml, KafkaFilter filter) throws Exception {
        Mesh mesh = MeshReader.parse(Path.of("/etc/mesh.yaml"), yaml.getBytes(StandardCharsets.UTF_8));
        return EnvoyResources.standard(filter).forSidecar(mesh, mesh.sidecars().get("app-a"), "1-abc");
    }

    private static Cluster filterService(Resources resources) {
        return resources.clusters().stream().filter(c -> c.getName().equals(EnvoyResources.FILTER_SERVICE_CLUSTER)).findFirst().orElseThrow();
    }

    private static List<Address> endpoints(Cluster cluster) {
        return cluster.getLoadAssignment().getEndpointsList().stream()
                .flatMap(l -> l.getLbEndpointsList().stream()).map(LbEndpoint::getEndpoint).map(e -> e.getAddress()).toList();
    }

    @Test
    void givenAUnixSocketFilterService_whenResourcesBuilt_thenTheClusterIsAStaticPipe() throws Exception {
        Cluster cluster = filterService(resources(ON_SOCKET, KafkaFilter.EXT_PROC));

        assertEquals(Cluster.DiscoveryType.STATIC, cluster.getType());
        List<Address> endpoints = endpoints(cluster);
        assertEquals(1, endpoints.size());
        assertTrue(endpoints.getFirst().hasPipe(), endpoints.getFirst().toString());
        assertEquals("/run/meshcrypt/app-a.sock", endpoints.getFirst().getPipe().getPath());
        assertFalse(cluster.hasTransportSocket());
    }

    @Test
    void givenAUnixSocketFilterService_whenResourcesBuilt_thenHttp2HealthChecksAndLimitsAreThoseOfTheTcpCluster() throws Exception {
        Cluster socket = filterService(resources(ON_SOCKET, KafkaFilter.EXT_PROC));
        Cluster tcp = filterService(resources(OneSidecarMesh.YAML, KafkaFilter.EXT_PROC));

        assertEquals(tcp.getTypedExtensionProtocolOptionsMap().get("envoy.extensions.upstreams.http.v3.HttpProtocolOptions")
                        .unpack(HttpProtocolOptions.class),
                socket.getTypedExtensionProtocolOptionsMap().get("envoy.extensions.upstreams.http.v3.HttpProtocolOptions")
                        .unpack(HttpProtocolOptions.class));
        assertEquals(tcp.toBuilder().clearLoadAssignment().build(), socket.toBuilder().clearLoadAssignment().build(),
                "only the endpoints differ");
    }

    @Test
    void givenAUnixSocketFilterServiceInAMeshWithTls_whenResourcesBuilt_thenThatHopHasNoTlsAndNoClientCertificate() throws Exception {
        Resources resources = resources(ON_SOCKET + TLS, KafkaFilter.EXT_PROC);

        assertFalse(filterService(resources).hasTransportSocket());
        assertEquals(List.of(), resources.secrets());
    }

    @Test
    void givenAnotherSidecarOnTcpInTheSameTlsMesh_whenResourcesBuilt_thenItKeepsMutualTls() throws Exception {
        String twoSidecars = (ON_SOCKET + TLS).replace("sidecars:\n", """
                sidecars:
                  app-b:
                    filterService: 127.0.0.1:50051
                    kafka:
                      main:
                        bootstrap: 127.0.0.1:29192
                        brokers:
                          1: 127.0.0.1:29193
                """);
        Mesh mesh = MeshReader.parse(Path.of("/etc/mesh.yaml"), twoSidecars.getBytes(StandardCharsets.UTF_8));

        Resources b = EnvoyResources.standard(KafkaFilter.EXT_PROC).forSidecar(mesh, mesh.sidecars().get("app-b"), "1-abc");

        assertTrue(filterService(b).hasTransportSocket());
        assertEquals(EnvoyResources.CLIENT_CERTIFICATE_SECRET, b.secrets().getFirst().getName());
    }

    @Test
    void givenUnixSocketReplicas_whenResourcesBuilt_thenEachIsAPipeEndpointInFileOrder() throws Exception {
        String replicas = OneSidecarMesh.YAML.replace("filterService: 127.0.0.1:50051",
                "filterService: [unix:/run/meshcrypt/r1.sock, unix:/run/meshcrypt/r0.sock]");

        List<Address> endpoints = endpoints(filterService(resources(replicas, KafkaFilter.EXT_PROC)));

        assertEquals(List.of("/run/meshcrypt/r1.sock", "/run/meshcrypt/r0.sock"), endpoints.stream().map(a -> a.getPipe().getPath()).toList());
    }

    @Test
    void givenTheBridgeAndAUnixSocketFilterService_whenResourcesBuilt_thenTheyAreRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> resources(ON_SOCKET, KafkaFilter.BRIDGE));

        assertEquals("sidecar app-a: MESHCRYPT_KAFKA_FILTER=bridge dials a filter-service host:port, not a Unix socket"
                + " (unix:/run/meshcrypt/app-a.sock); use Envoy's network ext_proc (the default) or a host:port filterService", e.getMessage());
    }
}
