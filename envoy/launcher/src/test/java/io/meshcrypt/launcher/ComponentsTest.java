package io.meshcrypt.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
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
