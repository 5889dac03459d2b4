package io.meshcrypt.xds.snapshot;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.github.xds.type.v3.TypedStruct;
import com.google.protobuf.Struct;
import io.envoyproxy.envoy.config.listener.v3.Filter;
import io.envoyproxy.envoy.config.listener.v3.FilterChain;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.meshcrypt.meshconfig.mesh.Mesh;
import io.meshcrypt.meshconfig.mesh.MeshReader;
import io.meshcrypt.xds.OneSidecarMesh;
import io.meshcrypt.xds.snapshot.EnvoyResources.Resources;
import io.meshcrypt.xds.snapshot.ExtProcSettings.KafkaFilter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The Kafka filter chains with {@link KafkaFilter#BRIDGE}: the dynamic module in place of network ext_proc. */
class KafkaBridgeResourcesTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** One sidecar with its own filter-service address, explicit listeners and a transparent listener. */
    private static final String MESH = OneSidecarMesh.YAML.replace("  app-a:\n", """
              app-a:
                filterService: 169.254.22.1:22097
                transparent:
                  listen: 127.0.0.1:15001
                  kafka: [main]
            """);

    private static Resources resources(String yaml, KafkaFilter filter) throws Exception {
        Mesh mesh = MeshReader.parse(Path.of("mesh.yaml"), yaml.getBytes(StandardCharsets.UTF_8));
        return EnvoyResources.standard(filter).forSidecar(mesh, mesh.sidecars().get("app-a"), "1-abc");
    }

    private static List<FilterChain> kafkaChains(Resources resources) {
        List<FilterChain> chains = new ArrayList<>();
        for (Listener l : resources.listeners()) {
            if (l.getName().startsWith("kafka_")) {
                chains.addAll(l.getFilterChainsList());
            }
        }
        return chains;
    }

    /** The module's filter_config: JSON in a StringValue. */
    private static JsonNode moduleConfig(FilterChain chain) throws Exception {
        Struct filter = chain.getFilters(0).getTypedConfig().unpack(TypedStruct.class).getValue();
        Struct any = filter.getFieldsOrThrow("filter_config").getStructValue();
        assertEquals("type.googleapis.com/google.protobuf.StringValue", any.getFieldsOrThrow("@type").getStringValue());
        return JSON.readTree(any.getFieldsOrThrow("value").getStringValue());
    }

    @Test
    void givenTheBridge_whenResourcesAreGenerated_thenEveryKafkaChainRunsTheModuleBeforeTcpProxyAndNoExtProc() throws Exception {
        List<FilterChain> chains = kafkaChains(resources(MESH, KafkaFilter.BRIDGE));

        assertEquals(3, chains.size(), "bootstrap, broker 1, transparent broker 1");
        for (FilterChain chain : chains) {
            assertEquals(List.of("envoy.filters.network.dynamic_modules", "envoy.filters.network.tcp_proxy"),
                    chain.getFiltersList().stream().map(Filter::getName).toList());
            TypedStruct typed = chain.getFilters(0).getTypedConfig().unpack(TypedStruct.class);
            assertEquals("type.googleapis.com/envoy.extensions.filters.network.dynamic_modules.v3.DynamicModuleNetworkFilter",
                    typed.getTypeUrl());
            assertEquals("meshcrypt_ext_proc_bridge", typed.getValue().getFieldsOrThrow("dynamic_module_config").getStructValue()
                    .getFieldsOrThrow("name").getStringValue());
            assertEquals("ext_proc_bridge", typed.getValue().getFieldsOrThrow("filter_name").getStringValue());
        }
    }

    @Test
    void givenTheBridge_whenResourcesAreGenerated_thenTheModuleDialsTheSidecarsFilterServiceWithTheTimeoutAndHeadersOfExtProc()
            throws Exception {
        FilterChain broker = kafkaChains(resources(MESH, KafkaFilter.BRIDGE)).get(1);

        JsonNode config = moduleConfig(broker);
        assertEquals("http://169.254.22.1:22097", config.get("filter_service").asText());
        assertEquals(5000, config.get("message_timeout_ms").asLong());
        assertTrue(config.get("message_timeout_ms").isIntegralNumber(), "the module takes whole milliseconds");
        Map<String, String> headers = new LinkedHashMap<>();
        config.get("initial_metadata").forEach(h -> headers.put(h.get("key").asText(), h.get("value").asText()));
        assertEquals(Map.of(
                "x-meshcrypt-broker-listeners", "1=127.0.0.1:19193",
                "x-meshcrypt-sidecar-node", "app-a",
                "x-meshcrypt-client-address", "%DOWNSTREAM_REMOTE_ADDRESS%"), headers);
        assertEquals(List.of("filter_service", "message_timeout_ms", "initial_metadata"),
                List.copyOf(iterable(config.fieldNames())), "only keys the module knows (it refuses others)");
    }

    @Test
    void givenTheBridge_whenResourcesAreGenerated_thenTheTransparentChainAsksForBrokerAddressesUnchanged() throws Exception {
        FilterChain transparent = kafkaChains(resources(MESH, KafkaFilter.BRIDGE)).get(2);

        assertEquals("main.broker-1", transparent.getName());
        assertEquals("none", moduleConfig(transparent).get("initial_metadata").get(0).get("value").asText());
    }

    @Test
    void givenTheBridgeAndAMeshWithTls_whenResourcesAreGenerated_thenTheModuleDialsHttpsWithTheFilesAndSpiffeIdOfTheBuiltInFilter()
            throws Exception {
        String tls = MESH + """
                tls:
                  trustedCa: /pki/ca.pem
                  certificates: /pki
                  filterService: spiffe://meshcrypt.local/filter-service
                """;
        Resources resources = resources(tls, KafkaFilter.BRIDGE);

        for (FilterChain chain : kafkaChains(resources)) {
            JsonNode config = moduleConfig(chain);
            assertEquals("https://169.254.22.1:22097", config.get("filter_service").asText());
            assertEquals(Map.of(
                    "certificate_chain", "/pki/sidecar-app-a/cert.pem",
                    "private_key", "/pki/sidecar-app-a/key.pem",
                    "trusted_ca", "/pki/ca.pem",
                    "filter_service_san", "spiffe://meshcrypt.local/filter-service"),
                    JSON.convertValue(config.get("tls"), Map.class));
        }
        // the same files and SAN Envoy's own filter-service cluster is given
        String builtIn = EnvoyResources.filterServiceTls(MeshReader.parse(Path.of("mesh.yaml"),
                tls.getBytes(StandardCharsets.UTF_8)).tls().orElseThrow()).toString();
        assertTrue(builtIn.contains("/pki/ca.pem") && builtIn.contains("spiffe://meshcrypt.local/filter-service"), builtIn);
        String secret = resources.secrets().toString();
        assertTrue(secret.contains("/pki/sidecar-app-a/cert.pem") && secret.contains("/pki/sidecar-app-a/key.pem"), secret);
    }

    @Test
    void givenTheBridgeAndAMeshWithoutTls_whenResourcesAreGenerated_thenTheModuleGetsNoTlsKeys() throws Exception {
        for (FilterChain chain : kafkaChains(resources(MESH, KafkaFilter.BRIDGE))) {
            assertFalse(moduleConfig(chain).has("tls"));
        }
    }

    @Test
    void givenTheBridgeAndASidecarWithFilterServiceReplicas_whenResourcesAreGenerated_thenTheyAreRefused() {
        String replicas = MESH.replace("filterService: 169.254.22.1:22097",
                "filterService: [169.254.22.1:22097, 169.254.22.2:22097]");

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> resources(replicas, KafkaFilter.BRIDGE));
        assertTrue(e.getMessage().contains("not a list of replicas"), e.getMessage());
    }

    @Test
    void givenExtProc_whenResourcesAreGenerated_thenNoChainLoadsTheModule() throws Exception {
        for (FilterChain chain : kafkaChains(resources(MESH, KafkaFilter.EXT_PROC))) {
            assertEquals("envoy.filters.network.ext_proc", chain.getFilters(0).getName());
            assertFalse(chain.toString().contains("meshcrypt_ext_proc_bridge"));
        }
    }

    @Test
    void givenTheSwitch_whenParsed_thenUnsetAndExtProcMeanTheBuiltInFilterAndAnythingElseIsRefused() {
        assertEquals(KafkaFilter.EXT_PROC, KafkaFilter.parse(null));
        assertEquals(KafkaFilter.EXT_PROC, KafkaFilter.parse("ext_proc"));
        assertEquals(KafkaFilter.BRIDGE, KafkaFilter.parse("bridge"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KafkaFilter.parse("Bridge"));
        assertEquals("MESHCRYPT_KAFKA_FILTER=Bridge: must be ext_proc or bridge", e.getMessage());
    }

    private static <T> List<T> iterable(java.util.Iterator<T> it) {
        List<T> out = new ArrayList<>();
        it.forEachRemaining(out::add);
        return out;
    }
}
