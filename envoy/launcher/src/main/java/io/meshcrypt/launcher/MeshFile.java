package io.meshcrypt.launcher;

import io.meshcrypt.meshconfig.http.HeaderChanges;
import io.meshcrypt.meshconfig.http.HttpRule;
import io.meshcrypt.meshconfig.http.HttpRules;
import io.meshcrypt.meshconfig.http.RouteMatch;
import io.meshcrypt.meshconfig.http.RuleSide;
import io.meshcrypt.meshconfig.mesh.Mesh;
import io.meshcrypt.meshconfig.mesh.Mesh.Address;
import io.meshcrypt.meshconfig.mesh.Mesh.HttpListener;
import io.meshcrypt.meshconfig.mesh.Mesh.KafkaCluster;
import io.meshcrypt.meshconfig.mesh.Mesh.KafkaListeners;
import io.meshcrypt.meshconfig.mesh.Mesh.Sidecar;
import io.meshcrypt.meshconfig.mesh.Mesh.Transparent;
import io.meshcrypt.meshconfig.mesh.MeshWriter;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.transform.BodyReplace;
import io.meshcrypt.meshconfig.transform.FieldOp;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import io.meshcrypt.pki.LocalCa;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * The meshes the launcher runs, as models: {@code up}'s and the demo's (explicit and transparent). They are written
 * with mesh-config's MeshWriter for the xDS server, which serves Envoys and delivers policy and HTTP rules to the
 * filter-service (docs/xds.md).
 */
public final class MeshFile {

    /** The Envoy node id of the shared Kafka sidecar, for the user's own clients. */
    public static final String SHARED_NODE = "kafka-apps";
    /** The Envoy node id of the demo's HTTP sidecar. */
    public static final String HTTP_NODE = "http-echo";
    public static final String CLUSTER = "demo";

    private MeshFile() {
    }

    // ---- the launcher's meshes

    /** {@code up}: the broker behind the shared sidecar; every topic encrypted. */
    public static Mesh up(PortPlan ports) {
        return up(ports, 1);
    }

    /**
     * {@code up --brokers N}: the cluster's N brokers behind the shared sidecar, which has one listener per broker
     * (explicit proxy: clients are told only these); every topic encrypted.
     */
    public static Mesh up(PortPlan ports, int brokers) {
        Map<Integer, Address> real = new TreeMap<>();
        Map<Integer, Address> listeners = new TreeMap<>();
        for (int n = 1; n <= brokers; n++) {
            real.put(n, local(ports.broker(n)));
            listeners.put(n, local(ports.envoyBroker(n)));
        }
        Sidecar shared = new Sidecar(SHARED_NODE, local(ports.filterGrpc()),
                Map.of(CLUSTER, new KafkaListeners(CLUSTER, local(ports.envoyBootstrap()), listeners, listeners)), Map.of(), Optional.empty());
        return new Mesh(Map.of(CLUSTER, new KafkaCluster(CLUSTER, real)), Map.of(SHARED_NODE, shared), encryptAll(), HttpRules.NONE);
    }

    /**
     * The explicit demo: the shared sidecar, one sidecar per Kafka app (the filter-service learns each one's broker
     * listener from its ext_proc streams), the HTTP service's sidecar and its rules.
     */
    public static Mesh demo(PortPlan ports) {
        Address filterService = local(ports.filterGrpc());
        Map<String, Sidecar> sidecars = new LinkedHashMap<>();
        sidecars.put(SHARED_NODE, kafkaSidecar(SHARED_NODE, filterService, ports.envoyBootstrap(), ports.envoyBroker1()));
        for (KafkaApp app : KafkaApp.values()) {
            PortPlan.AppSidecarPorts p = ports.appSidecar(app);
            sidecars.put(app.component(), kafkaSidecar(app.component(), filterService, p.bootstrap(), p.broker1()));
        }
        sidecars.put(HTTP_NODE, httpSidecar(ports));
        return new Mesh(Map.of(CLUSTER, new KafkaCluster(CLUSTER, Map.of(1, local(ports.broker())))), sidecars,
                encryptAll(), demoHttpRules());
    }

    /**
     * The transparent demo: the broker at its real (link-local) address; each Kafka app's sidecar, in the app's
     * namespace, intercepts it and reaches the filter-service through the host's relay; the HTTP sidecar as in the
     * explicit demo.
     */
    public static Mesh transparentDemo(PortPlan ports) {
        Address broker = new Address(ports.brokerRealHost(), ports.brokerTransparent());
        Map<String, Sidecar> sidecars = new LinkedHashMap<>();
        for (KafkaApp app : KafkaApp.values()) {
            sidecars.put(app.component(), new Sidecar(app.component(), new Address(ports.brokerRealHost(), ports.relayExtProc()),
                    Map.of(), Map.of(), Optional.of(new Transparent(local(PortPlan.NAMESPACE_SIDECAR_PORT), List.of(CLUSTER)))));
        }
        sidecars.put(HTTP_NODE, httpSidecar(ports));
        return new Mesh(Map.of(CLUSTER, new KafkaCluster(CLUSTER, Map.of(1, broker))), sidecars, encryptAll(), demoHttpRules());
    }

    /** The demo's HTTP service behind its sidecar, on the host in either mode. */
    private static Sidecar httpSidecar(PortPlan ports) {
        return new Sidecar(HTTP_NODE, local(ports.filterGrpc()), Map.of(),
                Map.of("orders", new HttpListener("orders", local(ports.httpSidecar()), local(ports.httpApp()))), Optional.empty());
    }

    private static Sidecar kafkaSidecar(String node, Address filterService, int bootstrap, int broker1) {
        Map<Integer, Address> brokers = Map.of(1, local(broker1));
        return new Sidecar(node, filterService, Map.of(CLUSTER, new KafkaListeners(CLUSTER, local(bootstrap), brokers, brokers)),
                Map.of(), Optional.empty());
    }

    private static EncryptionPolicy encryptAll() {
        return EncryptionPolicy.of(List.of("*"), EncryptionPolicy.Unmatched.PASSTHROUGH);
    }

    /** The demo's HTTP service: POST /orders has its card number encrypted, its CVV redacted, SSNs masked. */
    static HttpRules demoHttpRules() {
        RouteMatch match = new RouteMatch(java.util.Set.of("POST"), "/orders", null, List.of("application/json"), null);
        RuleSide request = new RuleSide(
                List.of(new FieldOp.Encrypt(JsonPointer.parse("/card/number"), false),
                        new FieldOp.Redact(JsonPointer.parse("/card/cvv"), FieldOp.Redact.DEFAULT_WITH, false)),
                List.of(new BodyReplace(Pattern.compile("[0-9]{3}-[0-9]{2}-[0-9]{4}"), "XXX-XX-XXXX")),
                new HeaderChanges(Map.of("x-meshcrypt", "rewritten"), List.of()), RuleSide.OnInvalid.REJECT);
        RuleSide response = new RuleSide(List.of(new FieldOp.Decrypt(JsonPointer.parse("/card/number"), false)), List.of(),
                HeaderChanges.NONE, RuleSide.OnInvalid.REJECT);
        return new HttpRules(List.of(new HttpRule("demo-orders", match, "orders", request, response)));
    }

    private static Address local(int port) {
        return new Address("127.0.0.1", port);
    }

    /** The mesh file for {@code mesh}: the launcher's mark first (docs/xds.md), then what MeshWriter writes. */
    public static String write(Mesh mesh) {
        return write(mesh, Optional.empty());
    }

    /** {@link #write(Mesh)}, with the {@code tls:} section when the mesh runs mutual TLS with the CA in {@code pki}. */
    public static String write(Mesh mesh, Optional<Path> pki) {
        return StateDir.GENERATED_MARK + "\n"
                + "# what the xDS server configures and delivers to the filter-service (docs/xds.md)\n"
                + yaml(mesh, pki);
    }

    /**
     * The YAML of {@code mesh}, with a {@code tls:} section when {@code pki} is present: every sidecar's filter_service
     * cluster shows its own certificate ({@code <pki>/sidecar-<node>/}) and requires the filter-service's SPIFFE id
     * under the mesh CA. The launcher's file and the e2e harness's both go through here.
     */
    public static String yaml(Mesh mesh, Optional<Path> pki) {
        return MeshWriter.write(pki.map(dir -> mesh.withTls(new Mesh.Tls(dir.resolve(LocalCa.CA_CERTIFICATE), dir,
                MeshPki.spiffeId(MeshPki.FILTER_SERVICE)))).orElse(mesh));
    }
}
