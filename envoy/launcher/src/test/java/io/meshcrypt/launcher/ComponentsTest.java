package io.meshcrypt.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.meshconfig.mesh.Mesh;
import io.meshcrypt.meshconfig.mesh.MeshReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ComponentsTest {

    @TempDir
    Path home;

    private Components components() {
        StateDir state = new StateDir(home);
        return new Components(Path.of("."), state, PortPlan.of(19000), new Supervisor(state, Duration.ofSeconds(1)), false);
    }

    private Components onUnixSockets() {
        StateDir state = new StateDir(home);
        return new Components(Path.of("."), state, PortPlan.of(19000), new Supervisor(state, Duration.ofSeconds(1)), true,
                ExtProcHop.UNIX);
    }

    @Test
    void givenUnixSockets_whenTheUpMeshFileIsWritten_thenTheSidecarPointsAtItsSocketInAnOwnerOnlyRunFolder() throws Exception {
        Components mesh = onUnixSockets();

        mesh.writeMeshFile(MeshFile.up(PortPlan.of(19000)));

        Mesh written = MeshReader.load(home.resolve("mesh.yaml"));
        assertEquals(List.of(new Mesh.UnixSocket(home.resolve("run/kafka-apps.sock"))),
                written.sidecars().get(MeshFile.SHARED_NODE).filterServices());
        assertTrue(written.tls().isPresent(), "the mesh keeps mutual TLS for the xDS hop and any TCP sidecar");
        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(home.resolve("run"))));
    }

    @Test
    void givenUnixSocketsAndTheTransparentDemo_whenTheMeshFileIsWritten_thenItIsRefusedPointingToTcp() throws Exception {
        Files.writeString(home.resolve("mode"), "transparent\n");
        Components mesh = onUnixSockets();

        LauncherException e = assertThrows(LauncherException.class, () -> mesh.writeMeshFile(MeshFile.transparentDemo(PortPlan.of(19000))));

        assertEquals("MESHCRYPT_EXT_PROC=unix: the transparent demo's sidecars run as another user and reach the filter-service"
                + " through the relay; run it with MESHCRYPT_EXT_PROC=tcp", e.getMessage());
        assertTrue(!Files.exists(home.resolve("mesh.yaml")), "nothing written");
    }

    private void formattedFor(int brokers) throws Exception {
        Files.createDirectories(home.resolve("broker/data"));
        Files.writeString(home.resolve("broker/data/meta.properties"), "cluster.id=HXsmOJInQm2Jfpp9Y7r1Aw\nnode.id=1\n");
        Files.writeString(home.resolve("brokers"), brokers + "\n");
    }

    @Test
    void givenDataOfAThreeBrokerCluster_whenUpAsksForOne_thenRefusedNamingTheCountAndTheDataToDelete() throws Exception {
        formattedFor(3);
        Components mesh = components();

        LauncherException e = assertThrows(LauncherException.class, () -> mesh.useBrokers(1));

        assertTrue(e.getMessage().contains("3-broker cluster's") && e.getMessage().contains("--brokers 3"), e.getMessage());
        assertEquals(3, mesh.brokers());
    }

    @Test
    void givenDataOfAThreeBrokerCluster_whenUpAsksForNothing_thenItRunsThreeNamedBrokerAndBroker2And3() throws Exception {
        formattedFor(3);
        Components mesh = components();

        assertEquals(3, mesh.brokers());
        assertEquals(Optional.of(1), mesh.brokerId("broker"));
        assertEquals(Optional.of(3), mesh.brokerId("broker-3"));
        assertEquals(Optional.empty(), mesh.brokerId("broker-4"));
        assertEquals(Optional.empty(), mesh.brokerId("broker-tap"));
        assertEquals("127.0.0.1:19092,127.0.0.1:19112,127.0.0.1:19113", mesh.brokerDirect());
        assertEquals(Map.of(1, 19193, 2, 19212, 3, 19213), mesh.sharedSidecarListeners());
    }

    @Test
    void givenNoBrokerData_whenUpAsksForThree_thenThreeAndNoOtherBrokerIsTheMesh() {
        Components mesh = components();

        mesh.useBrokers(3);

        assertEquals(3, mesh.brokers());
        assertEquals(Optional.of(2), mesh.brokerId("broker-2"));
    }

    @Test
    void givenNoBrokerData_whenNothingAsked_thenOneBroker() {
        Components mesh = components();

        assertEquals(1, mesh.brokers());
        assertEquals(Optional.empty(), mesh.brokerId("broker-2"));
        assertEquals("127.0.0.1:19092", mesh.brokerDirect());
    }
}
