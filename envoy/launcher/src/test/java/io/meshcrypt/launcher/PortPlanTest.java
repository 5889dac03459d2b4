package io.meshcrypt.launcher;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.List;
import org.junit.jupiter.api.Test;

class PortPlanTest {

    @Test
    void givenTheDefaultBase_whenPlanned_thenEachPortIsWhereTheHelpSaysItIs() {
        PortPlan p = PortPlan.parse(null);

        assertAll(
                () -> assertEquals(19000, p.base()),
                () -> assertEquals(19018, p.xds()),
                () -> assertEquals(19019, p.xdsStatus()),
                () -> assertEquals(19051, p.filterGrpc()),
                () -> assertEquals(19052, p.relayExtProc()),
                () -> assertEquals(19053, p.relayXds()),
                () -> assertEquals(19054, p.filterMetrics()),
                () -> assertEquals(19080, p.httpApp()),
                () -> assertEquals(19081, p.httpSidecar()),
                () -> assertEquals(19092, p.broker()),
                () -> assertEquals(19093, p.controller()),
                () -> assertEquals(19094, p.brokerTransparent()),
                () -> assertEquals(19192, p.envoyBootstrap()),
                () -> assertEquals(19193, p.envoyBroker1()),
                () -> assertEquals(19901, p.envoyAdmin()),
                () -> assertEquals(19902, p.httpSidecarAdmin()),
                () -> assertEquals(19903, p.relayAdmin()),
                () -> assertEquals(19904, p.namespaceSidecarAdmin()),
                () -> assertEquals("169.254.19.1", p.brokerRealHost()),
                () -> assertEquals("mc19000", p.netnsPrefix()));
    }

    @Test
    void givenTheKafkaApps_whenPlanned_thenEachHasItsOwnSidecarPortsInAppOrder() {
        PortPlan p = PortPlan.of(22000);

        assertAll(
                () -> assertEquals(new PortPlan.AppSidecarPorts(22194, 22195, 22905), p.appSidecar(KafkaApp.GO)),
                () -> assertEquals(new PortPlan.AppSidecarPorts(22196, 22197, 22906), p.appSidecar(KafkaApp.NODE)),
                () -> assertEquals(new PortPlan.AppSidecarPorts(22198, 22199, 22907), p.appSidecar(KafkaApp.JAVA)));
    }

    @Test
    void givenAPlan_whenLoopbackPortsListed_thenTheyAreDistinctAndWithinTheSpan() {
        PortPlan p = PortPlan.of(29000);
        List<Integer> ports = p.loopbackPorts();

        assertEquals(ports.size(), new HashSet<>(ports).size(), ports::toString);
        assertEquals(23, ports.size());
        assertEquals(29018, ports.getFirst());
        assertEquals(29000 + PortPlan.SPAN, ports.getLast());
    }

    @Test
    void givenAThreeBrokerCluster_whenPlanned_thenBroker1KeepsItsPortsAndTheOthersGetTheirDocumentedOnes() {
        PortPlan p = PortPlan.of(19000);

        assertAll(
                () -> assertEquals(List.of(19092, 19112, 19113), List.of(p.broker(1), p.broker(2), p.broker(3))),
                () -> assertEquals(List.of(19093, 19122, 19123), List.of(p.controller(1), p.controller(2), p.controller(3))),
                () -> assertEquals(List.of(19193, 19212, 19213), List.of(p.envoyBroker(1), p.envoyBroker(2), p.envoyBroker(3))),
                () -> assertEquals(p.broker(), p.broker(1)),
                () -> assertEquals(p.envoyBroker1(), p.envoyBroker(1)));
    }

    @Test
    void givenTheLargestCluster_whenPlanned_thenEveryBrokerPortIsNewDistinctAndWithinTheSpan() {
        PortPlan p = PortPlan.of(29000);
        List<Integer> cluster = new java.util.ArrayList<>();
        for (int id = 2; id <= PortPlan.MAX_BROKERS; id++) {
            cluster.addAll(List.of(p.broker(id), p.controller(id), p.envoyBroker(id)));
        }
        HashSet<Integer> all = new HashSet<>(cluster);
        all.addAll(p.loopbackPorts());
        all.add(p.brokerTransparent());

        assertEquals(cluster.size() + p.loopbackPorts().size() + 1, all.size(), () -> cluster + " overlaps " + p.loopbackPorts());
        assertTrue(cluster.stream().allMatch(port -> port > p.base() && port <= p.base() + PortPlan.SPAN), cluster::toString);
    }

    @Test
    void givenABrokerIdOutsideOneToNine_whenPlanned_thenRejected() {
        PortPlan p = PortPlan.of(19000);

        assertThrows(IllegalArgumentException.class, () -> p.broker(0));
        assertThrows(IllegalArgumentException.class, () -> p.controller(PortPlan.MAX_BROKERS + 1));
        assertThrows(IllegalArgumentException.class, () -> p.envoyBroker(-1));
    }

    @Test
    void givenABaseWithoutRoomForEveryPort_whenParsed_thenRejected() {
        assertThrows(IllegalArgumentException.class, () -> PortPlan.parse("1023"));
        assertThrows(IllegalArgumentException.class, () -> PortPlan.parse("64629"));
        assertThrows(IllegalArgumentException.class, () -> PortPlan.parse("19k"));
        assertEquals(64628, PortPlan.parse("64628").base());
    }
}
