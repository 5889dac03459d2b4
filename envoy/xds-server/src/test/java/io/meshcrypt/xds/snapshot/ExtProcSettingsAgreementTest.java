package io.meshcrypt.xds.snapshot;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import com.google.protobuf.Message;
import com.google.protobuf.Struct;
import com.google.protobuf.TextFormat;
import com.google.protobuf.util.JsonFormat;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * The ext_proc filters written out by hand (Envoy templates under envoy/, Istio EnvoyFilters under istio/) say what
 * {@link ExtProcSettings}, the source of the xDS resources, says: a change to one that is not made to the others
 * fails here. Only the processor's address (its cluster, and the :authority Envoy sends it) and the per-listener stat
 * prefix may differ.
 */
class ExtProcSettingsAgreementTest {

    private static final YAMLMapper YAML = new YAMLMapper();
    private static final ObjectMapper JSON = new ObjectMapper();
    /** {@code @@NAME@@} tokens of the templates; YAML cannot start a plain value with '@'. */
    private static final String TOKEN = "@@[A-Z0-9_]+@@";

    private static Path root;
    /** Every ext_proc typed_config found, by file (relative to the repo root). */
    private static Map<String, List<JsonNode>> http;
    private static Map<String, List<JsonNode>> network;

    @BeforeAll
    static void readConfigFiles() throws IOException {
        root = repoRoot();
        http = new TreeMap<>();
        network = new TreeMap<>();
        for (Path file : configFiles()) {
            String rel = root.relativize(file).toString();
            String text = Files.readString(file).replaceAll(TOKEN, "0");
            for (JsonNode doc : YAML.readValues(YAML.createParser(text), JsonNode.class).readAll()) {
                collect(doc, rel);
            }
        }
    }

    /** The repo root: the nearest directory up from here that holds {@code mvnw}. */
    private static Path repoRoot() {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            if (Files.exists(dir.resolve("mvnw"))) {
                return dir;
            }
        }
        throw new IllegalStateException("no directory holding mvnw above " + Path.of("").toAbsolutePath());
    }

    /** envoy/**.template (not the build output) and istio/**.yaml. */
    private static List<Path> configFiles() throws IOException {
        List<Path> files = new ArrayList<>();
        try (Stream<Path> envoy = Files.walk(root.resolve("envoy"))) {
            envoy.filter(p -> p.toString().endsWith(".template") && !p.toString().contains("/target/")).forEach(files::add);
        }
        try (Stream<Path> istio = Files.walk(root.resolve("istio"))) {
            istio.filter(p -> p.toString().endsWith(".yaml")).forEach(files::add);
        }
        return files.stream().sorted().toList();
    }

    private static void collect(JsonNode node, String file) {
        if (node.isObject() && node.has("@type")) {
            String type = "type.googleapis.com/" + node.get("@type").asText().replaceFirst("^type\\.googleapis\\.com/", "");
            if (type.equals(ExtProcSettings.HTTP_EXT_PROC_TYPE)) {
                http.computeIfAbsent(file, f -> new ArrayList<>()).add(node);
            } else if (type.equals(ExtProcSettings.NETWORK_EXT_PROC_TYPE)) {
                network.computeIfAbsent(file, f -> new ArrayList<>()).add(node);
            }
        }
        node.forEach(child -> collect(child, file));
    }

    /** The typed_config without its {@code @type}, parsed strictly: a field the proto does not know fails. */
    private static <B extends Message.Builder> B parse(JsonNode typedConfig, B builder) throws IOException {
        ObjectNode config = typedConfig.deepCopy();
        config.remove("@type");
        JsonFormat.parser().merge(JSON.writeValueAsString(config), builder);
        return builder;
    }

    @Test
    void givenTheHandWrittenConfigs_whenSearchedForExtProc_thenTheKnownFiltersAreAllFound() {
        // guards against a test that passes because it found nothing (a moved file, a changed @type spelling)
        assertEquals(1, http.getOrDefault("envoy/http-sidecar.yaml.template", List.of()).size(), http.keySet().toString());
        assertEquals(2, http.getOrDefault("istio/base/workloads/envoyfilter-http.yaml", List.of()).size(), http.keySet().toString());
        assertEquals(1, network.getOrDefault("istio/base/workloads/envoyfilter-kafka.yaml", List.of()).size(), network.keySet().toString());
    }

    @Test
    void givenEveryHttpExtProc_whenComparedWithExtProcSettings_thenOnlyTheProcessorClusterDiffers() {
        assertAll(each(http, (file, config) -> {
            assertFailsClosedInSoManyWords(file, config);
            ExternalProcessor.Builder written = parse(config, ExternalProcessor.newBuilder());
            String cluster = written.getGrpcService().getEnvoyGrpc().getClusterName();
            assertFalse(cluster.isEmpty(), file + ": HTTP ext_proc without an envoy_grpc cluster");
            assertAuthorityWhereTheClusterNameCannotBeOne(file, cluster, written.getGrpcService().getEnvoyGrpc().getAuthority());
            written.getGrpcServiceBuilder().getEnvoyGrpcBuilder().clearAuthority();
            ExternalProcessor expected = ExtProcSettings.httpFilter(cluster);

            assertEquals(TextFormat.printer().printToString(expected), TextFormat.printer().printToString(written.build()),
                    file + ": HTTP ext_proc differs from ExtProcSettings.httpFilter");
        }));
    }

    @Test
    void givenEveryNetworkExtProc_whenComparedWithExtProcSettings_thenOnlyStatPrefixAndProcessorDiffer() {
        assertAll(each(network, (file, config) -> {
            assertFailsClosedInSoManyWords(file, config);
            Struct.Builder written = parse(config, Struct.newBuilder());
            assertTrue(written.containsFields("stat_prefix"), file + ": Envoy 1.35+ requires stat_prefix");
            assertTrue(written.getFieldsOrThrow("grpc_service").getStructValue().containsFields("envoy_grpc"),
                    file + ": network ext_proc without an envoy_grpc service");
            Struct envoyGrpc = written.getFieldsOrThrow("grpc_service").getStructValue().getFieldsOrThrow("envoy_grpc")
                    .getStructValue();
            assertAuthorityWhereTheClusterNameCannotBeOne(file, envoyGrpc.getFieldsOrThrow("cluster_name").getStringValue(),
                    envoyGrpc.containsFields("authority") ? envoyGrpc.getFieldsOrThrow("authority").getStringValue() : "");
            written.removeFields("stat_prefix").removeFields("grpc_service");

            assertEquals(ExtProcSettings.kafkaSettings().getFieldsMap(), written.getFieldsMap(),
                    file + ": network ext_proc differs from ExtProcSettings.kafkaSettings");
        }));
    }

    /**
     * Envoy sends the cluster name as {@code :authority} unless {@code authority} is set; an Istio cluster name
     * ({@code outbound|9090||host}) is no valid authority, and the filter-service's sidecar resets every such stream.
     */
    private static void assertAuthorityWhereTheClusterNameCannotBeOne(String file, String cluster, String authority) {
        if (cluster.contains("|")) {
            assertFalse(authority.isEmpty(), file + ": envoy_grpc to " + cluster + " needs an authority");
        }
    }

    /** false is also the default; a hand-written filter says it anyway, so nobody reads it as an oversight. */
    private static void assertFailsClosedInSoManyWords(String file, JsonNode config) {
        assertTrue(config.path("failure_mode_allow").isBoolean() && !config.get("failure_mode_allow").asBoolean(),
                file + ": ext_proc must say failure_mode_allow: false");
    }

    private interface ConfigCheck {
        void check(String file, JsonNode config) throws Exception;
    }

    /** One check per filter found, all run, so one run names every file that drifted. */
    private static List<Executable> each(Map<String, List<JsonNode>> found, ConfigCheck check) {
        List<Executable> checks = new ArrayList<>();
        found.forEach((file, configs) -> configs.forEach(config -> checks.add(() -> check.check(file, config))));
        return checks;
    }

    @Test
    void givenTheHttpSidecarTemplate_whenRead_thenItsListenerAndAppClusterBufferBodiesUpToTheSettingsLimit() throws IOException {
        JsonNode template = YAML.readTree(Files.readString(root.resolve("envoy/http-sidecar.yaml.template")).replaceAll(TOKEN, "0"));
        JsonNode resources = template.get("static_resources");

        assertEquals(ExtProcSettings.HTTP_BUFFER_LIMIT, resources.at("/listeners/0/per_connection_buffer_limit_bytes").asInt());
        for (JsonNode cluster : resources.get("clusters")) {
            if (cluster.get("name").asText().equals("app")) {
                assertEquals(ExtProcSettings.HTTP_BUFFER_LIMIT, cluster.get("per_connection_buffer_limit_bytes").asInt());
            }
        }
    }
}
