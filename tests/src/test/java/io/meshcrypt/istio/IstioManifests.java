package io.meshcrypt.istio;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads the shipped EnvoyFilter manifests and turns their patches into Envoy configuration the way
 * istiod applies them: ADD values become whole listeners/clusters, INSERT_BEFORE values are put before
 * the named filter of an Istio-shaped listener. Nothing here copies a filter config by hand.
 */
final class IstioManifests {

    static final ObjectMapper JSON = new ObjectMapper();
    private static final YAMLMapper YAML = new YAMLMapper();

    /** Istio's name for the filter-service's cluster in the base manifests (namespace meshcrypt, port 9090). */
    static final String FILTER_CLUSTER = "outbound|9090||meshcrypt-filter-service.meshcrypt.svc.cluster.local";

    private IstioManifests() {
    }

    static Path istioDir(Path root) {
        return root.resolve("istio");
    }

    static JsonNode read(Path file) {
        try {
            return YAML.readTree(file.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot read " + file, e);
        }
    }

    /** The patches of {@code envoyFilter} applied to {@code applyTo} in {@code context}. */
    static List<JsonNode> patches(JsonNode envoyFilter, String applyTo, String context) {
        List<JsonNode> out = new ArrayList<>();
        for (JsonNode patch : envoyFilter.path("spec").path("configPatches")) {
            if (patch.path("applyTo").asText().equals(applyTo)
                    && patch.path("match").path("context").asText().equals(context)) {
                out.add(patch);
            }
        }
        return out;
    }

    static JsonNode onlyPatch(JsonNode envoyFilter, String applyTo, String context) {
        List<JsonNode> found = patches(envoyFilter, applyTo, context);
        if (found.size() != 1) {
            throw new AssertionError("expected one " + applyTo + " patch for " + context + ", found " + found.size());
        }
        return found.get(0);
    }

    /** Inserts {@code patch}'s value before the filter its match names, as INSERT_BEFORE does. */
    static void insertBefore(ArrayNode filters, JsonNode patch, String matchedFilter) {
        if (!patch.path("patch").path("operation").asText().equals("INSERT_BEFORE")) {
            throw new AssertionError("not an INSERT_BEFORE patch: " + patch);
        }
        for (int i = 0; i < filters.size(); i++) {
            if (filters.get(i).path("name").asText().equals(matchedFilter)) {
                filters.insert(i, patch.path("patch").path("value").deepCopy());
                return;
            }
        }
        throw new AssertionError(matchedFilter + " is not in " + filters);
    }

    /** A STATIC HTTP/2 cluster, as Istio builds for a grpc-* port, under the given name. */
    static ObjectNode grpcCluster(String name, String address, int port) {
        ObjectNode cluster = staticCluster(name, address, port);
        cluster.putObject("typed_extension_protocol_options")
                .putObject("envoy.extensions.upstreams.http.v3.HttpProtocolOptions")
                .put("@type", "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions")
                .putObject("explicit_http_config").putObject("http2_protocol_options");
        return cluster;
    }

    static ObjectNode staticCluster(String name, String address, int port) {
        ObjectNode cluster = JSON.createObjectNode();
        cluster.put("name", name).put("type", "STATIC").put("connect_timeout", "5s");
        ObjectNode assignment = cluster.putObject("load_assignment").put("cluster_name", name);
        if (address != null) {
            assignment.putArray("endpoints").addObject().putArray("lb_endpoints").addObject()
                    .putObject("endpoint").putObject("address").putObject("socket_address")
                    .put("address", address).put("port_value", port);
        }
        return cluster;
    }

    static ObjectNode socketAddress(String address, int port) {
        ObjectNode node = JSON.createObjectNode();
        node.putObject("socket_address").put("address", address).put("port_value", port);
        return node;
    }
}
