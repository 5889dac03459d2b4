package io.meshcrypt.launcher;

import com.fasterxml.jackson.core.JsonProcessingException;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import io.meshcrypt.filter.http.HeaderChanges;
import io.meshcrypt.filter.http.HttpRule;
import io.meshcrypt.filter.http.HttpRules;
import io.meshcrypt.filter.http.RouteMatch;
import io.meshcrypt.filter.http.RuleSide;
import io.meshcrypt.filter.policy.EncryptionPolicy;
import io.meshcrypt.filter.policy.TopicRule;
import io.meshcrypt.filter.transform.BodyReplace;
import io.meshcrypt.filter.transform.FieldOp;
import io.meshcrypt.filter.transform.JsonPointer;
import io.meshcrypt.xds.mesh.Mesh;
import io.meshcrypt.xds.mesh.Mesh.Address;
import io.meshcrypt.xds.mesh.Mesh.HttpListener;
import io.meshcrypt.xds.mesh.Mesh.KafkaCluster;
import io.meshcrypt.xds.mesh.Mesh.KafkaListeners;
import io.meshcrypt.xds.mesh.Mesh.Sidecar;
import io.meshcrypt.xds.mesh.Mesh.Transparent;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * The mesh file the launcher hands the xDS server (and, through {@code policyFrom}, the filter-service): the models of
 * {@code up} and of the demo, and their serialisation (docs/xds.md). Serialising is this class's one job that belongs
 * with the model; it moves to the mesh-config module's writer once that exists.
 */
public final class MeshFile {

    /** The Envoy node id of the shared Kafka sidecar, for the user's own clients. */
    public static final String SHARED_NODE = "kafka-apps";
    /** The Envoy node id of the demo's HTTP sidecar. */
    public static final String HTTP_NODE = "http-echo";
    public static final String CLUSTER = "demo";

    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory()
            .disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
            .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES)
            .enable(YAMLGenerator.Feature.INDENT_ARRAYS_WITH_INDICATOR));

    private MeshFile() {
    }

    // ---- the launcher's meshes

    /** {@code up}: the broker behind the shared sidecar; every topic encrypted. */
    public static Mesh up(PortPlan ports) {
        return explicit(ports, false);
    }

    /**
     * The explicit demo: the shared sidecar, one sidecar per Kafka app (the filter-service learns each one's broker
     * listener from its ext_proc streams), the HTTP service's sidecar and its rules.
     */
    public static Mesh demo(PortPlan ports) {
        return explicit(ports, true);
    }

    private static Mesh explicit(PortPlan ports, boolean demo) {
        Address filterService = local(ports.filterGrpc());
        Map<String, Sidecar> sidecars = new LinkedHashMap<>();
        sidecars.put(SHARED_NODE, kafkaSidecar(SHARED_NODE, filterService, ports.envoyBootstrap(), ports.envoyBroker1()));
        if (demo) {
            for (KafkaApp app : KafkaApp.values()) {
                PortPlan.AppSidecarPorts p = ports.appSidecar(app);
                sidecars.put(app.component(), kafkaSidecar(app.component(), filterService, p.bootstrap(), p.broker1()));
            }
            sidecars.put(HTTP_NODE, httpSidecar(ports));
        }
        return new Mesh(Map.of(CLUSTER, new KafkaCluster(CLUSTER, Map.of(1, local(ports.broker())))), sidecars,
                encryptAll(), demo ? demoHttpRules() : HttpRules.NONE);
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

    // ---- serialisation

    /** The mesh file for {@code mesh}, with the launcher's mark first (docs/xds.md); map keys in sorted order. */
    public static String write(Mesh mesh) {
        Map<String, Object> root = new LinkedHashMap<>();
        Map<String, Object> clusters = new LinkedHashMap<>();
        new TreeMap<>(mesh.kafkaClusters()).forEach((name, c) -> clusters.put(name, Map.of("brokers", addresses(c.brokers()))));
        root.put("kafkaClusters", clusters);
        Map<String, Object> sidecars = new LinkedHashMap<>();
        new TreeMap<>(mesh.sidecars()).forEach((node, s) -> sidecars.put(node, sidecar(s)));
        root.put("sidecars", sidecars);
        root.put("policy", policy(mesh.policy()));
        if (!mesh.http().rules().isEmpty()) {
            root.put("http", Map.of("rules", mesh.http().rules().stream().map(MeshFile::rule).toList()));
        }
        try {
            return StateDir.GENERATED_MARK + "\n"
                    + "# what the xDS server configures (docs/xds.md); the filter-service reads policy: and http:\n"
                    + YAML.writeValueAsString(root);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot serialise the mesh", e);
        }
    }

    private static Map<String, Object> sidecar(Sidecar s) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("filterService", s.filterService().toString());
        if (!s.kafka().isEmpty()) {
            Map<String, Object> kafka = new LinkedHashMap<>();
            new TreeMap<>(s.kafka()).forEach((cluster, l) -> {
                Map<String, Object> listeners = new LinkedHashMap<>();
                listeners.put("bootstrap", l.bootstrap().toString());
                Map<Integer, Object> brokers = new LinkedHashMap<>();
                new TreeMap<>(l.brokers()).forEach((id, listen) -> {
                    Address advertised = l.advertised().get(id);
                    brokers.put(id, advertised.equals(listen) ? listen.toString()
                            : Map.of("listen", listen.toString(), "advertise", advertised.toString()));
                });
                listeners.put("brokers", brokers);
                kafka.put(cluster, listeners);
            });
            out.put("kafka", kafka);
        }
        if (!s.http().isEmpty()) {
            Map<String, Object> http = new LinkedHashMap<>();
            new TreeMap<>(s.http()).forEach((name, h) -> {
                Map<String, Object> listener = new LinkedHashMap<>();
                listener.put("listen", h.listen().toString());
                listener.put("upstream", h.upstream().toString());
                http.put(name, listener);
            });
            out.put("http", http);
        }
        s.transparent().ifPresent(t -> {
            Map<String, Object> transparent = new LinkedHashMap<>();
            transparent.put("listen", t.listen().toString());
            transparent.put("kafka", t.kafkaClusters());
            out.put("transparent", transparent);
        });
        return out;
    }

    private static Map<Integer, Object> addresses(Map<Integer, Address> byId) {
        Map<Integer, Object> out = new LinkedHashMap<>();
        new TreeMap<>(byId).forEach((id, a) -> out.put(id, a.toString()));
        return out;
    }

    private static Map<String, Object> policy(EncryptionPolicy policy) {
        Map<String, Object> out = new LinkedHashMap<>();
        List<Object> encrypt = new ArrayList<>();
        for (TopicRule rule : policy.rules()) {
            if (rule.fields().isEmpty() && !rule.deterministicKeys()) {
                encrypt.add(rule.pattern());
                continue;
            }
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("topic", rule.pattern());
            if (!rule.fields().isEmpty()) {
                r.put("fields", rule.fields().stream().map(JsonPointer::toString).toList());
            }
            if (rule.deterministicKeys()) {
                r.put("keys", "deterministic");
            }
            encrypt.add(r);
        }
        out.put("encrypt", encrypt);
        if (!policy.decryptOnly().isEmpty()) {
            out.put("decryptOnly", policy.decryptOnly());
        }
        out.put("unmatched", policy.unmatched().name().toLowerCase(Locale.ROOT));
        return out;
    }

    private static Map<String, Object> rule(HttpRule rule) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("name", rule.name());
        Map<String, Object> match = new LinkedHashMap<>();
        RouteMatch m = rule.match();
        if (!m.methods().isEmpty()) {
            match.put("methods", m.methods().stream().sorted().toList());
        }
        if (m.pathPrefix() != null) {
            match.put("path", m.pathPrefix());
        }
        if (m.pathRegex() != null) {
            match.put("pathRegex", m.pathRegex().pattern());
        }
        if (!m.contentTypes().isEmpty()) {
            match.put("contentType", m.contentTypes().size() == 1 ? m.contentTypes().getFirst() : m.contentTypes());
        }
        if (m.body() != null) {
            match.put("body", m.body().pattern());
        }
        out.put("match", match);
        if (rule.binding() != null) {
            out.put("binding", rule.binding());
        }
        if (!rule.request().isEmpty()) {
            out.put("request", side(rule.request()));
        }
        if (!rule.response().isEmpty()) {
            out.put("response", side(rule.response()));
        }
        return out;
    }

    private static Map<String, Object> side(RuleSide side) {
        Map<String, Object> out = new LinkedHashMap<>();
        if (!side.fields().isEmpty()) {
            out.put("fields", side.fields().stream().map(MeshFile::fieldOp).toList());
        }
        if (!side.body().isEmpty()) {
            out.put("body", side.body().stream().map(b -> {
                Map<String, Object> replace = new LinkedHashMap<>();
                replace.put("pattern", b.pattern().pattern());
                replace.put("with", b.with());
                return replace;
            }).toList());
        }
        if (!side.headers().isEmpty()) {
            Map<String, Object> headers = new LinkedHashMap<>();
            if (!side.headers().set().isEmpty()) {
                headers.put("set", new TreeMap<>(side.headers().set()));
            }
            if (!side.headers().remove().isEmpty()) {
                headers.put("remove", side.headers().remove());
            }
            out.put("headers", headers);
        }
        if (side.onInvalid() != RuleSide.OnInvalid.REJECT) {
            out.put("onInvalid", side.onInvalid().name().toLowerCase(Locale.ROOT));
        }
        return out;
    }

    private static Map<String, Object> fieldOp(FieldOp op) {
        Map<String, Object> out = new LinkedHashMap<>();
        boolean required = switch (op) {
            case FieldOp.Encrypt e -> {
                out.put("encrypt", e.pointer().toString());
                yield e.required();
            }
            case FieldOp.Decrypt d -> {
                out.put("decrypt", d.pointer().toString());
                yield d.required();
            }
            case FieldOp.Redact r -> {
                out.put("redact", r.pointer().toString());
                if (!r.with().equals(FieldOp.Redact.DEFAULT_WITH)) {
                    out.put("with", r.with());
                }
                yield r.required();
            }
            case FieldOp.Replace r -> {
                out.put("replace", r.pointer().toString());
                out.put("pattern", r.pattern().pattern());
                out.put("with", r.with());
                yield r.required();
            }
            case FieldOp.Set s -> {
                out.put("set", s.pointer().toString());
                out.put("value", s.value());
                yield false;
            }
        };
        if (required) {
            out.put("required", true);
        }
        return out;
    }
}
