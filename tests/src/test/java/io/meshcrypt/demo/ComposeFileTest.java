package io.meshcrypt.demo;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.meshcrypt.filter.config.FilterConfig;
import org.junit.jupiter.api.Test;

/**
 * envoy/docker-compose.yml, checked without Docker: it parses, names the images the issue asks for, every
 * file it mounts is in the repo (except the keyset the user creates), the filter config it mounts loads,
 * and host ports are published on 127.0.0.1 only and do not collide.
 */
class ComposeFileTest {

    private final Path envoyDir = Path.of(System.getProperty("meshcrypt.root", "..")).toAbsolutePath().normalize().resolve("envoy");

    private JsonNode compose() throws Exception {
        return new ObjectMapper(new YAMLFactory()).readTree(envoyDir.resolve("docker-compose.yml").toFile());
    }

    @Test
    void givenComposeFile_whenParsed_thenItRunsKafkaTheJibFilterServiceAndEnvoy140() throws Exception {
        JsonNode services = compose().path("services");

        assertAll(
                () -> assertTrue(services.path("kafka").path("image").asText().startsWith("apache/kafka:")),
                () -> assertTrue(services.path("envoy").path("image").asText().startsWith("envoyproxy/envoy:v1.40.")),
                () -> assertEquals("meshcrypt/filter-service:0.1.0-SNAPSHOT", services.path("filter-service").path("image").asText()),
                () -> assertEquals("service_healthy", services.path("envoy").path("depends_on").path("kafka").path("condition").asText()));
        String pom = Files.readString(envoyDir.resolveSibling("filter-service/pom.xml"));
        assertTrue(pom.contains("<artifactId>jib-maven-plugin</artifactId>")
                && pom.contains("<image>meshcrypt/filter-service:${project.version}</image>"),
                "the filter-service pom builds the image the compose file names");
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
        assertEquals(3, mounts);
    }

    @Test
    void givenComposeFilterConfig_whenLoaded_thenItIsValidAndPointsBrokersAtEnvoysPublishedListener() throws Exception {
        FilterConfig config = FilterConfig.load(envoyDir.resolve("compose/filter.yaml"));
        String envoy = Files.readString(envoyDir.resolve("compose/envoy.yaml"));

        assertAll(
                () -> assertEquals("localhost", config.brokers().get(1).getHostString()),
                () -> assertEquals(19193, config.brokers().get(1).getPort()),
                () -> assertTrue(envoy.contains("port_value: 19193")),
                () -> assertTrue(envoy.contains("address: filter-service, port_value: 50051")),
                () -> assertTrue(envoy.contains("failure_mode_allow: false")),
                () -> assertFalse(envoy.contains("@@")));
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
        assertEquals(Set.of("19092", "19192", "19193", "19901"), hostPorts);
    }
}
