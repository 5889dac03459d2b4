package io.meshcrypt.xds.snapshot;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.cluster.v3.OutlierDetection;
import io.envoyproxy.envoy.config.core.v3.HealthCheck;
import io.envoyproxy.envoy.config.core.v3.SocketAddress;
import io.envoyproxy.envoy.config.endpoint.v3.LbEndpoint;
import io.meshcrypt.meshconfig.mesh.Mesh;
import io.meshcrypt.meshconfig.mesh.MeshReader;
import io.meshcrypt.xds.OneSidecarMesh;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The filter_service cluster of a sidecar with several filter-service replicas (the mesh file's filterService list). */
class FilterServiceReplicasTest {

    private static Cluster filterService(String filterService) throws Exception {
        String yaml = OneSidecarMesh.YAML.replace("filterService: 127.0.0.1:50051", "filterService: " + filterService);
        Mesh mesh = MeshReader.parse(Path.of("/etc/mesh.yaml"), yaml.getBytes(StandardCharsets.UTF_8));
        return EnvoyResources.standard().forSidecar(mesh, mesh.sidecars().get("app-a"), "1-abc").clusters().stream()
                .filter(c -> c.getName().equals(EnvoyResources.FILTER_SERVICE_CLUSTER)).findFirst().orElseThrow();
    }

    private static List<String> endpoints(Cluster cluster) {
        assertEquals(1, cluster.getLoadAssignment().getEndpointsCount(), "one locality");
        return cluster.getLoadAssignment().getEndpoints(0).getLbEndpointsList().stream()
                .map(LbEndpoint::getEndpoint)
                .map(e -> e.getAddress().getSocketAddress())
                .map((SocketAddress a) -> a.getAddress() + " " + a.getPortValue())
                .toList();
    }

    @Test
    void givenThreeReplicas_whenResourcesAreGenerated_thenTheClusterHasOneEndpointEachInFileOrder() throws Exception {
        Cluster cluster = filterService("[10.0.0.2:50051, 10.0.0.1:50051, \"[fd00::3]:50052\"]");

        assertEquals(List.of("10.0.0.2 50051", "10.0.0.1 50051", "fd00::3 50052"), endpoints(cluster));
        assertEquals(Cluster.DiscoveryType.STATIC, cluster.getType());
    }

    @Test
    void givenReplicasByHostName_whenResourcesAreGenerated_thenEachNameIsResolvedAndEveryAddressIsAnEndpoint() throws Exception {
        Cluster cluster = filterService("[fs-0.filter.svc:50051, 10.0.0.1:50051]");

        assertEquals(List.of("fs-0.filter.svc 50051", "10.0.0.1 50051"), endpoints(cluster));
        assertEquals(Cluster.DiscoveryType.STRICT_DNS, cluster.getType(), "a headless Service name resolves to every pod");
    }

    @Test
    void givenReplicas_whenResourcesAreGenerated_thenNewStreamsGoWhereFewestAreOpen() throws Exception {
        Cluster cluster = filterService("[10.0.0.1:50051, 10.0.0.2:50051]");

        assertEquals(Cluster.LbPolicy.LEAST_REQUEST, cluster.getLbPolicy());
    }

    @Test
    void givenReplicas_whenResourcesAreGenerated_thenEachIsHealthCheckedOverGrpcOftenEvenBeforeTraffic() throws Exception {
        Cluster cluster = filterService("[10.0.0.1:50051, 10.0.0.2:50051]");

        assertEquals(1, cluster.getHealthChecksCount());
        HealthCheck check = cluster.getHealthChecks(0);
        assertTrue(check.hasGrpcHealthCheck(), "grpc.health.v1, which the filter-service serves on its ext_proc port");
        assertEquals("", check.getGrpcHealthCheck().getServiceName(), "the server as a whole");
        assertEquals(2, check.getUnhealthyThreshold().getValue());
        assertEquals(2, check.getHealthyThreshold().getValue());
        assertEquals(3, check.getInterval().getSeconds());
        assertEquals(3, check.getNoTrafficInterval().getSeconds(), "not Envoy's 60 s default before the first stream");
        assertTrue(check.getTimeout().getSeconds() < check.getInterval().getSeconds(), "a check ends before the next starts");
    }

    @Test
    void givenReplicas_whenResourcesAreGenerated_thenOnlyLocalFailuresEjectAReplicaAndAtMostHalfOfThem() throws Exception {
        OutlierDetection outliers = filterService("[10.0.0.1:50051, 10.0.0.2:50051]").getOutlierDetection();

        assertTrue(outliers.getSplitExternalLocalOriginErrors(), "a gRPC status ending a hostile client's stream is no failure");
        assertEquals(3, outliers.getConsecutiveLocalOriginFailure().getValue());
        assertEquals(100, outliers.getEnforcingConsecutiveLocalOriginFailure().getValue());
        assertTrue(outliers.hasEnforcingConsecutive5Xx(), "Envoy enforces 5xx ejection unless told not to");
        assertEquals(0, outliers.getEnforcingConsecutive5Xx().getValue());
        assertEquals(0, outliers.getEnforcingSuccessRate().getValue());
        assertEquals(0, outliers.getEnforcingLocalOriginSuccessRate().getValue());
        assertEquals(50, outliers.getMaxEjectionPercent().getValue());
    }

    @Test
    void givenOneReplica_whenResourcesAreGenerated_thenItIsTheOnlyEndpointWithTheSameChecks() throws Exception {
        Cluster cluster = filterService("127.0.0.1:50051");

        assertEquals(List.of("127.0.0.1 50051"), endpoints(cluster));
        assertEquals(EnvoyResources.REPLICA_HEALTH_CHECK, cluster.getHealthChecks(0));
        assertEquals(EnvoyResources.REPLICA_OUTLIERS, cluster.getOutlierDetection());
    }
}
