package io.meshcrypt.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.meshconfig.mesh.Mesh;
import io.meshcrypt.meshconfig.mesh.MeshReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

class MeshFileTest {

    private static final PortPlan PORTS = PortPlan.of(19000);

    private static Mesh roundTrip(Mesh mesh) throws Exception {
        return MeshReader.parse(Path.of("mesh.yaml"), MeshFile.write(mesh).getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void givenTheUpMesh_whenWrittenAndRead_thenTheReaderGetsTheSameModel() throws Exception {
        Mesh up = MeshFile.up(PORTS);

        assertEquals(up, roundTrip(up));
    }

    @Test
    void givenTheUpMeshOfOneBroker_whenBuilt_thenItIsTheSingleBrokerMesh() {
        assertEquals(MeshFile.up(PORTS), MeshFile.up(PORTS, 1));
        assertEquals(Map.of(1, new Mesh.Address("127.0.0.1", 19092)), MeshFile.up(PORTS).kafkaClusters().get(MeshFile.CLUSTER).brokers());
    }

    @Test
    void givenAThreeBrokerUpMesh_whenWrittenAndRead_thenTheClusterNamesEachBrokerAndTheSidecarHasAListenerAdvertisedForEach()
            throws Exception {
        Mesh up = roundTrip(MeshFile.up(PORTS, 3));

        Mesh.KafkaListeners listeners = up.sidecars().get(MeshFile.SHARED_NODE).kafka().get(MeshFile.CLUSTER);
        assertEquals(MeshFile.up(PORTS, 3), up);
        assertEquals(Map.of(1, local(19092), 2, local(19112), 3, local(19113)), up.kafkaClusters().get(MeshFile.CLUSTER).brokers());
        assertEquals(local(19192), listeners.bootstrap());
        assertEquals(Map.of(1, local(19193), 2, local(19212), 3, local(19213)), listeners.brokers());
        assertEquals(listeners.brokers(), listeners.advertised());
        assertEquals(java.util.Set.of(MeshFile.SHARED_NODE), up.sidecars().keySet());
    }

    private static Mesh.Address local(int port) {
        return new Mesh.Address("127.0.0.1", port);
    }

    @Test
    void givenTheDemoMesh_whenWrittenAndRead_thenSidecarsPolicyAndHttpRulesSurvive() throws Exception {
        Mesh demo = MeshFile.demo(PORTS);

        assertEquals(demo, roundTrip(demo));
        assertEquals(5, demo.sidecars().size());
    }

    @Test
    void givenTheTransparentDemoMesh_whenWrittenAndRead_thenTheInterceptingSidecarsSurvive() throws Exception {
        Mesh transparent = MeshFile.transparentDemo(PORTS);

        assertEquals(transparent, roundTrip(transparent));
        assertTrue(transparent.sidecars().get("go-producer").transparent().isPresent());
    }

    @Test
    void givenAMesh_whenWritten_thenTheFileStartsWithTheGeneratedMark() {
        assertTrue(MeshFile.write(MeshFile.up(PORTS)).startsWith(StateDir.GENERATED_MARK + "\n"));
    }

    @Test
    void givenTls_whenTheMeshIsWritten_thenTheTlsSectionFollowsTheModelNamingTheCaTheSidecarsCertificatesAndTheFilterServicesId() {
        String plain = MeshFile.write(MeshFile.up(PORTS));

        String withTls = MeshFile.write(MeshFile.up(PORTS), java.util.Optional.of(Path.of("/h/pki")));

        assertEquals(plain + """
                tls:
                  trustedCa: /h/pki/ca.pem
                  certificates: /h/pki
                  filterService: spiffe://meshcrypt.local/filter-service
                """, withTls);
        assertEquals(plain, MeshFile.write(MeshFile.up(PORTS), java.util.Optional.empty()));
    }
}
