package io.meshcrypt.launcher;

import java.util.ArrayList;
import java.util.List;

/**
 * Every port of one mesh, derived from its port base B (MESHCRYPT_PORT_BASE) in this one place. All host ports are on
 * 127.0.0.1, except the transparent demo's broker address and relay, which sit on the link-local address
 * {@link #brokerRealHost()}. Two meshes side by side need bases at least 1000 apart. A cluster ({@code up --brokers N})
 * adds, for each broker n from 2 to N, its own port B+110+n, its controller B+120+n and the shared sidecar's listener
 * of it B+210+n ({@link #broker(int)}, {@link #controller(int)}, {@link #envoyBroker(int)}).
 *
 * @param base B
 * @param xds the xDS server's ADS port, B+18
 * @param xdsStatus the xDS server's status endpoint, B+19
 * @param filterGrpc the filter-service's ext_proc gRPC listener, B+51
 * @param relayExtProc transparent demo: the relay's ext_proc port on {@link #brokerRealHost()}, B+52
 * @param relayXds transparent demo: the relay's xDS port on {@link #brokerRealHost()}, B+53
 * @param filterMetrics the filter-service's metrics and health endpoint (/metrics, /healthz, /readyz), B+54
 * @param httpApp the demo's HTTP service, B+80
 * @param httpSidecar its Envoy sidecar (HTTP_URL), B+81
 * @param broker the broker itself (BROKER_DIRECT), B+92; in a cluster, broker 1
 * @param controller the broker's KRaft controller, B+93
 * @param brokerTransparent transparent demo: the broker's real address on {@link #brokerRealHost()}, B+94
 * @param envoyBootstrap the shared Envoy sidecar's bootstrap listener (KAFKA_BOOTSTRAP), B+192
 * @param envoyBroker1 the shared Envoy sidecar's listener of broker 1, B+193
 * @param envoyAdmin the shared Envoy sidecar's admin, B+901
 * @param httpSidecarAdmin the HTTP sidecar's admin, B+902
 * @param relayAdmin transparent demo: the relay's admin, B+903
 * @param namespaceSidecarAdmin transparent demo: each app namespace's sidecar admin, on the namespace's loopback, B+904
 */
public record PortPlan(int base, int xds, int xdsStatus, int filterGrpc, int relayExtProc, int relayXds, int filterMetrics, int httpApp,
                       int httpSidecar, int broker, int controller, int brokerTransparent, int envoyBootstrap,
                       int envoyBroker1, int envoyAdmin, int httpSidecarAdmin, int relayAdmin, int namespaceSidecarAdmin) {

    public static final int DEFAULT_BASE = 19000;
    /** The highest offset in use: B+907, the admin of the last Kafka app's sidecar. */
    public static final int SPAN = 907;
    /** The most brokers {@code up --brokers} runs: node ids 1 to 9 keep each broker's ports in its own decade slot. */
    public static final int MAX_BROKERS = 9;
    /** Transparent demo: the port each app namespace's sidecar intercepts on, as Istio's. */
    public static final int NAMESPACE_SIDECAR_PORT = 15001;

    /** The listeners of one Kafka app's own sidecar in the explicit demo (go 0, node 1, java 2). */
    public record AppSidecarPorts(int bootstrap, int broker1, int admin) {
    }

    /** @throws IllegalArgumentException when the base leaves no room for every port below 65536 */
    public static PortPlan of(int base) {
        if (base < 1024 || base + SPAN > 65535) {
            throw new IllegalArgumentException("must be a number with 1024 <= base <= " + (65535 - SPAN) + " (got " + base + ")");
        }
        return new PortPlan(base, base + 18, base + 19, base + 51, base + 52, base + 53, base + 54, base + 80, base + 81, base + 92,
                base + 93, base + 94, base + 192, base + 193, base + 901, base + 902, base + 903, base + 904);
    }

    /** Parses MESHCRYPT_PORT_BASE (null or empty: the default). */
    public static PortPlan parse(String base) {
        if (base == null || base.isEmpty()) {
            return of(DEFAULT_BASE);
        }
        if (!base.matches("[0-9]{1,5}")) {
            throw new IllegalArgumentException("must be a number with 1024 <= base <= " + (65535 - SPAN) + " (got " + base + ")");
        }
        return of(Integer.parseInt(base));
    }

    public AppSidecarPorts appSidecar(KafkaApp app) {
        int i = app.index();
        return new AppSidecarPorts(base + 194 + 2 * i, base + 195 + 2 * i, base + 905 + i);
    }

    /** Broker {@code id}'s own listener (BROKER_DIRECT lists them all): B+92 for broker 1, B+110+id for the others. */
    public int broker(int id) {
        return id == 1 ? broker : base + 110 + checkedBrokerId(id);
    }

    /** Broker {@code id}'s KRaft controller listener (every broker is a controller too): B+93, else B+120+id. */
    public int controller(int id) {
        return id == 1 ? controller : base + 120 + checkedBrokerId(id);
    }

    /** The shared sidecar's listener of broker {@code id}, the address clients are told: B+193, else B+210+id. */
    public int envoyBroker(int id) {
        return id == 1 ? envoyBroker1 : base + 210 + checkedBrokerId(id);
    }

    private static int checkedBrokerId(int id) {
        if (id < 1 || id > MAX_BROKERS) {
            throw new IllegalArgumentException("broker id " + id + " is not between 1 and " + MAX_BROKERS);
        }
        return id;
    }

    /** The first three octets of the transparent demo's link-local network (from the base, so meshes do not collide). */
    public String linkLocalSubnet() {
        return "169.254." + (base / 1000) % 256;
    }

    /** Transparent demo: the broker's real address, the host end of the kafka namespace's veth. */
    public String brokerRealHost() {
        return linkLocalSubnet() + ".1";
    }

    /** Prefix of the transparent demo's namespace and interface names, e.g. mc19000. */
    public String netnsPrefix() {
        return "mc" + base;
    }

    /** Every port that listens on the host's 127.0.0.1 while a demo runs (not the link-local or in-namespace ones). */
    public List<Integer> loopbackPorts() {
        List<Integer> ports = new ArrayList<>(List.of(xds, xdsStatus, filterGrpc, filterMetrics, httpApp, httpSidecar, broker, controller,
                envoyBootstrap, envoyBroker1, envoyAdmin, httpSidecarAdmin, relayAdmin, namespaceSidecarAdmin));
        for (KafkaApp app : KafkaApp.values()) {
            AppSidecarPorts p = appSidecar(app);
            ports.addAll(List.of(p.bootstrap(), p.broker1(), p.admin()));
        }
        return ports.stream().sorted().toList();
    }
}
