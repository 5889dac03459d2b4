package io.meshcrypt.meshconfig.mesh;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.meshcrypt.meshconfig.http.HeaderChanges;
import io.meshcrypt.meshconfig.http.HttpRule;
import io.meshcrypt.meshconfig.http.RouteMatch;
import io.meshcrypt.meshconfig.http.RuleSide;
import io.meshcrypt.meshconfig.mesh.Mesh.Address;
import io.meshcrypt.meshconfig.mesh.Mesh.BrokerTls;
import io.meshcrypt.meshconfig.mesh.Mesh.CertificateFiles;
import io.meshcrypt.meshconfig.mesh.Mesh.HttpListener;
import io.meshcrypt.meshconfig.mesh.Mesh.KafkaCluster;
import io.meshcrypt.meshconfig.mesh.Mesh.KafkaListeners;
import io.meshcrypt.meshconfig.mesh.Mesh.Sidecar;
import io.meshcrypt.meshconfig.mesh.Mesh.TlsVersion;
import io.meshcrypt.meshconfig.mesh.Policies;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.Forgotten;
import io.meshcrypt.meshconfig.policy.Identities;
import io.meshcrypt.meshconfig.policy.SubjectSource;
import io.meshcrypt.meshconfig.policy.TopicRule;
import io.meshcrypt.meshconfig.transform.BodyReplace;
import io.meshcrypt.meshconfig.transform.FieldOp;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * Serialises the model back to the YAML that {@link MeshReader} (and the policy reader) accept: a whole mesh file,
 * or only its {@code policy:} and {@code http:} sections, which the xDS server delivers to filter-services. Reading
 * what this writes gives back an equal model. Maps keyed by name come out sorted, so equal models write equal text.
 */
public final class MeshWriter {

    private static final YAMLMapper YAML = YAMLMapper.builder()
            .disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
            // a file people edit: quotes only where YAML needs them, list items indented under their key
            .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES)
            .enable(YAMLGenerator.Feature.ALWAYS_QUOTE_NUMBERS_AS_STRINGS)
            .enable(YAMLGenerator.Feature.INDENT_ARRAYS_WITH_INDICATOR)
            .build();
    private static final JsonNodeFactory F = JsonNodeFactory.withExactBigDecimals(true);

    private MeshWriter() {
    }

    public static String write(Mesh mesh) {
        ObjectNode root = F.objectNode();
        ObjectNode clusters = root.putObject("kafkaClusters");
        for (KafkaCluster cluster : new TreeMap<>(mesh.kafkaClusters()).values()) {
            ObjectNode c = clusters.putObject(cluster.name());
            c.set("brokers", addresses(cluster.brokers()));
            cluster.tls().ifPresent(tls -> c.set("tls", brokerTls(tls)));
        }
        ObjectNode sidecars = root.putObject("sidecars");
        for (Sidecar sidecar : new TreeMap<>(mesh.sidecars()).values()) {
            sidecars.set(sidecar.nodeId(), sidecar(sidecar));
        }
        policySections(root, new Policies(mesh.policy(), mesh.http()));
        mesh.tls().ifPresent(tls -> root.putObject("tls").put("trustedCa", tls.trustedCa().toString())
                .put("certificates", tls.certificates().toString()).put("filterService", tls.filterService().toString()));
        return yaml(root);
    }

    /** The {@code policy:} and {@code http:} sections alone. */
    public static String writePolicies(Policies policies) {
        ObjectNode root = F.objectNode();
        policySections(root, policies);
        return yaml(root);
    }

    private static ObjectNode sidecar(Sidecar sidecar) {
        ObjectNode node = F.objectNode();
        if (sidecar.filterServices().size() == 1) {
            node.put("filterService", sidecar.filterServices().getFirst().toString());
        } else {
            ArrayNode filterServices = node.putArray("filterService");
            sidecar.filterServices().forEach(address -> filterServices.add(address.toString()));
        }
        if (!sidecar.kafka().isEmpty()) {
            ObjectNode kafka = node.putObject("kafka");
            for (KafkaListeners listeners : new TreeMap<>(sidecar.kafka()).values()) {
                ObjectNode k = kafka.putObject(listeners.cluster());
                k.put("bootstrap", listeners.bootstrap().toString());
                ObjectNode brokers = k.putObject("brokers");
                for (Map.Entry<Integer, Address> b : new TreeMap<>(listeners.brokers()).entrySet()) {
                    Address advertised = listeners.advertised().get(b.getKey());
                    if (advertised.equals(b.getValue())) {
                        brokers.put(b.getKey().toString(), b.getValue().toString());
                    } else {
                        brokers.putObject(b.getKey().toString()).put("listen", b.getValue().toString())
                                .put("advertise", advertised.toString());
                    }
                }
                listeners.tls().ifPresent(tls -> certificateFiles(k.putObject("tls"), tls));
            }
        }
        if (!sidecar.http().isEmpty()) {
            ObjectNode http = node.putObject("http");
            for (HttpListener listener : new TreeMap<>(sidecar.http()).values()) {
                http.putObject(listener.name()).put("listen", listener.listen().toString())
                        .put("upstream", listener.upstream().toString());
            }
        }
        sidecar.transparent().ifPresent(t -> {
            ObjectNode transparent = node.putObject("transparent");
            transparent.put("listen", t.listen().toString());
            ArrayNode kafka = transparent.putArray("kafka");
            t.kafkaClusters().forEach(kafka::add);
        });
        return node;
    }

    private static ObjectNode brokerTls(BrokerTls tls) {
        ObjectNode node = F.objectNode().put("trustedCa", tls.trustedCa().toString());
        tls.clientCertificate().ifPresent(files -> certificateFiles(node, files));
        if (!tls.sni().isEmpty()) {
            ObjectNode sni = node.putObject("sni");
            new TreeMap<>(tls.sni()).forEach((id, name) -> sni.put(id.toString(), name));
        }
        if (tls.minVersion() != TlsVersion.TLS_1_2) {
            node.put("minVersion", tls.minVersion().text());
        }
        return node;
    }

    private static void certificateFiles(ObjectNode node, CertificateFiles files) {
        node.put("certificate", files.certificate().toString()).put("privateKey", files.privateKey().toString());
    }

    private static ObjectNode addresses(Map<Integer, Address> addresses) {
        ObjectNode node = F.objectNode();
        new TreeMap<>(addresses).forEach((id, address) -> node.put(id.toString(), address.toString()));
        return node;
    }

    private static void policySections(ObjectNode root, Policies policies) {
        root.set("policy", policy(policies.encryption()));
        if (!policies.http().rules().isEmpty()) {
            ArrayNode rules = root.putObject("http").putArray("rules");
            policies.http().rules().forEach(rule -> rules.add(rule(rule)));
        }
    }

    private static ObjectNode policy(EncryptionPolicy policy) {
        ObjectNode node = F.objectNode();
        ArrayNode encrypt = node.putArray("encrypt");
        for (TopicRule rule : policy.rules()) {
            if (rule.fields().isEmpty() && !rule.deterministicKeys() && rule.readers() == null && rule.writers() == null
                    && rule.headers().isEmpty() && rule.subject() == null) {
                encrypt.add(rule.pattern());
                continue;
            }
            ObjectNode entry = encrypt.addObject().put("topic", rule.pattern());
            if (!rule.fields().isEmpty()) {
                ArrayNode fields = entry.putArray("fields");
                for (JsonPointer field : rule.fields()) {
                    Identities readers = rule.fieldReaders().get(field);
                    if (readers == null) {
                        fields.add(field.toString());
                    } else {
                        ArrayNode fieldReaders = fields.addObject().put("field", field.toString()).putArray("readers");
                        readers.patterns().forEach(fieldReaders::add);
                    }
                }
            }
            if (rule.deterministicKeys()) {
                entry.put("keys", "deterministic");
            }
            if (rule.readers() != null) {
                ArrayNode readers = entry.putArray("readers");
                rule.readers().patterns().forEach(readers::add);
                if (rule.others() != TopicRule.Others.CIPHERTEXT) {
                    entry.put("others", rule.others().name().toLowerCase(Locale.ROOT));
                }
            }
            if (rule.writers() != null) {
                ArrayNode writers = entry.putArray("writers");
                rule.writers().patterns().forEach(writers::add);
            }
            if (!rule.headers().isEmpty()) {
                ArrayNode headers = entry.putArray("headers");
                rule.headers().forEach(headers::add);
            }
            if (rule.subject() != null) {
                subject(entry, rule.subject(), rule.forgotten(), rule.subject().from().name().toLowerCase(Locale.ROOT));
            }
        }
        if (!policy.decryptOnly().isEmpty()) {
            ArrayNode decryptOnly = node.putArray("decryptOnly");
            policy.decryptOnly().forEach(decryptOnly::add);
        }
        node.put("unmatched", policy.unmatched().name().toLowerCase(Locale.ROOT));
        return node;
    }

    private static ObjectNode rule(HttpRule rule) {
        ObjectNode node = F.objectNode().put("name", rule.name());
        if (!rule.match().equals(RouteMatch.ANY)) {
            RouteMatch match = rule.match();
            ObjectNode m = node.putObject("match");
            if (!match.methods().isEmpty()) {
                ArrayNode methods = m.putArray("methods");
                match.methods().stream().sorted().forEach(methods::add);
            }
            if (match.pathPrefix() != null) {
                m.put("path", match.pathPrefix());
            }
            if (match.pathRegex() != null) {
                m.put("pathRegex", match.pathRegex().pattern());
            }
            if (!match.contentTypes().isEmpty()) {
                ArrayNode types = m.putArray("contentType");
                match.contentTypes().forEach(types::add);
            }
            if (match.body() != null) {
                m.put("body", match.body().pattern());
            }
        }
        if (rule.binding() != null) {
            node.put("binding", rule.binding());
        }
        if (!rule.request().equals(RuleSide.NONE)) {
            node.set("request", side(rule.request()));
        }
        if (!rule.response().equals(RuleSide.NONE)) {
            node.set("response", side(rule.response()));
        }
        if (rule.readers() != null) {
            ArrayNode readers = node.putArray("readers");
            rule.readers().patterns().forEach(readers::add);
        }
        if (rule.subject() != null) {
            // an HTTP rule's subject is in the request body or a request header
            subject(node, rule.subject(), rule.forgotten(),
                    rule.subject().from() == SubjectSource.From.VALUE ? "body" : "header");
        }
        return node;
    }

    /** {@code subject:} and {@code forgotten:} of a policy entry or an HTTP rule, as their readers read them back. */
    private static void subject(ObjectNode node, SubjectSource source, Forgotten forgotten, String from) {
        ObjectNode subject = node.putObject("subject").put("from", from);
        if (source.pointer() != null) {
            subject.put("pointer", source.pointer().toString());
        }
        if (source.header() != null) {
            subject.put("name", source.header());
        }
        if (source.scope() != null) {
            subject.put("scope", source.scope());
        }
        if (forgotten.placeholder() == null) {
            node.putNull("forgotten");
        } else {
            node.putObject("forgotten").put("placeholder", forgotten.placeholder());
        }
    }

    private static ObjectNode side(RuleSide side) {
        ObjectNode node = F.objectNode();
        if (!side.fields().isEmpty()) {
            ArrayNode fields = node.putArray("fields");
            side.fields().forEach(op -> fields.add(fieldOp(op)));
        }
        if (!side.body().isEmpty()) {
            ArrayNode body = node.putArray("body");
            for (BodyReplace replace : side.body()) {
                body.addObject().put("pattern", replace.pattern().pattern()).put("with", replace.with());
            }
        }
        if (!side.headers().equals(HeaderChanges.NONE)) {
            ObjectNode headers = node.putObject("headers");
            if (!side.headers().set().isEmpty()) {
                ObjectNode set = headers.putObject("set");
                side.headers().set().forEach(set::put);
            }
            if (!side.headers().remove().isEmpty()) {
                ArrayNode remove = headers.putArray("remove");
                side.headers().remove().forEach(remove::add);
            }
        }
        node.put("onInvalid", side.onInvalid().name().toLowerCase(Locale.ROOT));
        return node;
    }

    /** Defaults (not required, the standard redaction text) are left out, as a person would write the rule. */
    private static ObjectNode fieldOp(FieldOp op) {
        ObjectNode node = F.objectNode();
        String pointer = op.pointer().toString();
        boolean required = switch (op) {
            case FieldOp.Encrypt e -> {
                node.put("encrypt", pointer);
                yield e.required();
            }
            case FieldOp.Decrypt d -> {
                node.put("decrypt", pointer);
                yield d.required();
            }
            case FieldOp.Redact r -> {
                node.put("redact", pointer);
                if (!r.with().equals(FieldOp.Redact.DEFAULT_WITH)) {
                    node.put("with", r.with());
                }
                yield r.required();
            }
            case FieldOp.Replace r -> {
                node.put("replace", pointer).put("pattern", r.pattern().pattern()).put("with", r.with());
                yield r.required();
            }
            case FieldOp.Set s -> {
                node.put("set", pointer).set("value", s.value());
                yield false;
            }
        };
        if (required) {
            node.put("required", true);
        }
        return node;
    }

    private static String yaml(ObjectNode root) {
        try {
            return YAML.writeValueAsString(root);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("a JSON tree always serialises", e);
        }
    }
}
