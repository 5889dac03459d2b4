package io.meshcrypt.demo;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.meshcrypt.filter.config.FilterConfig;
import io.meshcrypt.filter.config.KeysConfig;
import io.meshcrypt.testsupport.RepoRoot;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * envoy/docker-compose.yml, checked without Docker: it parses, names the images the issue asks for, every
 * file it mounts is in the repo (except the keyset the user creates), the filter config it mounts loads,
 * and host ports are published on 127.0.0.1 only and do not collide.
 */
class ComposeFileTest {

    private final Path envoyDir = RepoRoot.find().resolve("envoy");

    private JsonNode compose() throws Exception {
        return new ObjectMapper(new YAMLFactory()).readTree(envoyDir.resolve("docker-compose.yml").toFile());
    }

    @Test
    void givenComposeFile_whenParsed_thenItRunsKafkaTheJibFilterServiceAndXdsServerAndEnvoy140() throws Exception {
        JsonNode services = compose().path("services");

        assertAll(
                () -> assertTrue(services.path("kafka").path("image").asText().startsWith("apache/kafka:")),
                () -> assertTrue(services.path("envoy").path("image").asText().startsWith("envoyproxy/envoy:v1.40.")),
                () -> assertEquals("meshcrypt/filter-service:0.1.0-SNAPSHOT", services.path("filter-service").path("image").asText()),
                () -> assertEquals("meshcrypt/xds-server:0.1.0-SNAPSHOT", services.path("xds-server").path("image").asText()),
                () -> assertEquals("service_healthy", services.path("envoy").path("depends_on").path("kafka").path("condition").asText()),
                // a pod's sidecar: Envoy reaches the filter-service on their shared loopback, nothing else can
                () -> assertEquals("service:filter-service", services.path("envoy").path("network_mode").asText()));
        for (String module : List.of("filter-service", "envoy/xds-server")) {
            String pom = Files.readString(envoyDir.resolveSibling(module + "/pom.xml"));
            String image = "meshcrypt/" + module.substring(module.lastIndexOf('/') + 1);
            assertTrue(pom.contains("<artifactId>jib-maven-plugin</artifactId>") && pom.contains("<image>" + image + ":${project.version}</image>"),
                    "the " + module + " pom builds the image the compose file names");
        }
    }

    @Test
    void givenComposeFile_whenMountsAreResolved_thenEveryFileExistsButTheUsersKeyset() throws Exception {
        List<String> missing = new ArrayList<>();
        int mounts = 0;
        for (JsonNode service : compose().path("services")) {
            for (JsonNode volume : service.path("volumes")) {
                String source = volume.asText().split(":")[0];
                mounts++;
                if (!source.endsWith("keyset.json") && !Files.isRegularFile(envoyDir.resolve(source))) {
                    missing.add(source);
                }
            }
        }
        assertEquals(List.of(), missing);
        assertEquals(4, mounts);
    }

    @Test
    void givenComposeFilterConfig_whenLoaded_thenItIsValidTakesItsPolicyFromTheXdsServerAndPointsBrokersAtEnvoysPublishedListener() throws Exception {
        FilterConfig config = FilterConfig.load(envoyDir.resolve("compose/filter.yaml"));
        String mesh = Files.readString(envoyDir.resolve("compose/mesh.yaml"));

        assertAll(
                () -> assertEquals("xds-server:18000", config.policyServer().getHostString() + ":" + config.policyServer().getPort()),
                () -> assertEquals("localhost", config.brokers().get(1).getHostString()),
                () -> assertEquals(19193, config.brokers().get(1).getPort()),
                () -> assertTrue(mesh.contains("1: {listen: 0.0.0.0:19193, advertise: localhost:19193}"), mesh),
                () -> assertTrue(mesh.contains("filterService: 127.0.0.1:50051"), mesh),
                () -> assertTrue(config.listen().getAddress().isLoopbackAddress(), "the filter-service listens on loopback only: " + config.listen()),
                () -> assertEquals(KeysConfig.LOCAL, config.keys().provider(), "envelope version 2 by default"),
                () -> assertEquals(config.keyset(), config.keys().localKeyset(), "the one keyset is the KEK and reads version 1"),
                () -> assertTrue(mesh.contains("  compose-sidecar:"), mesh));
    }

    @Test
    void givenComposeEnvoyBootstrap_whenComparedWithTheTemplate_thenItIsTheTemplateRenderedForTheComposeNetwork() throws Exception {
        String template = Files.readString(envoyDir.resolve("xds-bootstrap.yaml.template"));
        String rendered = template.substring(template.indexOf("\nnode:") + 1)
                .replace("@@NODE_ID@@", "compose-sidecar").replace("@@XDS_HOST@@", "xds-server").replace("@@XDS_PORT@@", "18000")
                .replace("@@XDS_API_TYPE@@", "GRPC").replace("@@ENVOY_ADMIN_PORT@@", "19901");
        String envoy = Files.readString(envoyDir.resolve("compose/envoy.yaml"));

        assertFalse(rendered.contains("@@"), rendered);
        assertEquals(rendered, envoy.substring(envoy.indexOf("\nnode:") + 1));
    }

    @Test
    void givenComposeFile_whenPortsArePublished_thenOnlyOnLoopbackAndEachOnce() throws Exception {
        Set<String> hostPorts = new HashSet<>();
        for (JsonNode service : compose().path("services")) {
            for (JsonNode port : service.path("ports")) {
                String mapping = port.asText();
                assertTrue(mapping.startsWith("127.0.0.1:"), mapping);
                assertTrue(hostPorts.add(mapping.split(":")[1]), "host port published twice: " + mapping);
            }
        }
        assertEquals(Set.of("19019", "19092", "19192", "19193"), hostPorts, "Envoy's admin (19901) is not published");
    }

    @Test
    void givenComposeEnvoyAndBroker_whenTheirBindsAreRead_thenAdminAndControllerStayOnLoopback() throws Exception {
        JsonNode bootstrap = new ObjectMapper(new YAMLFactory()).readTree(envoyDir.resolve("compose/envoy.yaml").toFile());
        JsonNode kafka = compose().path("services").path("kafka").path("environment");

        assertAll(
                () -> assertEquals("127.0.0.1", bootstrap.at("/admin/address/socket_address/address").asText()),
                () -> assertTrue(kafka.path("KAFKA_LISTENERS").asText().contains("CONTROLLER://localhost:9093"),
                        kafka.path("KAFKA_LISTENERS").asText()),
                () -> assertEquals("1@localhost:9093", kafka.path("KAFKA_CONTROLLER_QUORUM_VOTERS").asText()));
    }
}
