package io.meshcrypt.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

/**
 * Every way the services are launched runs the JVM with {@code -XX:+ExitOnOutOfMemoryError}: after an
 * OutOfMemoryError a JVM is in an unknown state (a worker thread may be stalled for every connection it serves), so it
 * must exit and be restarted rather than limp on. Checked statically: the Jib images and the Kubernetes Deployments
 * (the launcher's command lines are checked by its own ServiceCommandsTest).
 */
class ExitOnOutOfMemoryErrorTest {

    private static final String FLAG = "-XX:+ExitOnOutOfMemoryError";
    private static final Path ROOT = Path.of(System.getProperty("meshcrypt.root", "..")).toAbsolutePath().normalize();

    @Test
    void givenFilterServiceJibImage_whenBuilt_thenItsJvmFlagsHaveTheFlag() throws Exception {
        DocumentBuilderFactory factory = DocumentBuilderFactory.newInstance();
        factory.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        Document pom = factory.newDocumentBuilder().parse(ROOT.resolve("filter-service/pom.xml").toFile());
        Element jib = null;
        NodeList plugins = pom.getElementsByTagName("plugin");
        for (int i = 0; i < plugins.getLength(); i++) {
            Element plugin = (Element) plugins.item(i);
            if (text(plugin, "artifactId").equals("jib-maven-plugin")) {
                jib = plugin;
            }
        }
        assertTrue(jib != null, "filter-service/pom.xml configures the jib-maven-plugin");
        List<String> flags = new ArrayList<>();
        NodeList jvmFlags = jib.getElementsByTagName("jvmFlag");
        for (int i = 0; i < jvmFlags.getLength(); i++) {
            flags.add(jvmFlags.item(i).getTextContent().strip());
        }
        assertTrue(flags.contains(FLAG), "Jib container jvmFlags: " + flags);
        NodeList containers = jib.getElementsByTagName("container");
        assertEquals(1, containers.getLength());
        assertEquals(containers.item(0), jvmFlags.item(flags.indexOf(FLAG)).getParentNode().getParentNode(),
                "the flag is in <container><jvmFlags>");
    }

    @Test
    void givenKubernetesDeployments_whenTheirContainersRunJava_thenEachHasTheFlag() throws Exception {
        YAMLMapper yaml = new YAMLMapper();
        List<String> checked = new ArrayList<>();
        List<Path> manifests;
        try (Stream<Path> files = Files.walk(ROOT.resolve("istio"))) {
            manifests = files.filter(f -> f.toString().endsWith(".yaml") || f.toString().endsWith(".yml")).sorted().toList();
        }
        for (Path file : manifests) {
            try (MappingIterator<JsonNode> docs = yaml.readerFor(JsonNode.class).readValues(file.toFile())) {
                while (docs.hasNext()) {
                    JsonNode doc = docs.next();
                    if (doc == null || !doc.path("kind").asText().equals("Deployment")) {
                        continue;
                    }
                    for (JsonNode container : doc.at("/spec/template/spec/containers")) {
                        if (!runsJava(container)) {
                            continue;
                        }
                        String where = ROOT.relativize(file) + " container " + container.path("name").asText();
                        checked.add(where);
                        assertTrue(hasFlag(container), where + " runs java without " + FLAG);
                    }
                }
            }
        }
        assertFalse(checked.isEmpty(), "found no Deployment running java under istio/");
        assertTrue(checked.stream().anyMatch(c -> c.contains("filter-service")), "checked: " + checked);
    }

    private static boolean runsJava(JsonNode container) {
        JsonNode command = container.path("command");
        return (command.isArray() && !command.isEmpty() && command.get(0).asText().endsWith("java"))
                || container.path("image").asText().contains("meshcrypt/");
    }

    private static boolean hasFlag(JsonNode container) {
        for (String field : List.of("command", "args")) {
            for (JsonNode arg : container.path(field)) {
                if (arg.asText().equals(FLAG)) {
                    return true;
                }
            }
        }
        for (JsonNode env : container.path("env")) {
            if (List.of("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS").contains(env.path("name").asText())
                    && List.of(env.path("value").asText().split("\\s+")).contains(FLAG)) {
                return true;
            }
        }
        return false;
    }

    private static String text(Element parent, String child) {
        NodeList nodes = parent.getElementsByTagName(child);
        return nodes.getLength() == 0 ? "" : nodes.item(0).getTextContent().strip();
    }
}
