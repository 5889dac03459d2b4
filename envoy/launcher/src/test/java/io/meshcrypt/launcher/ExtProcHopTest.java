package io.meshcrypt.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.meshcrypt.meshconfig.mesh.Mesh;
import io.meshcrypt.meshconfig.mesh.Mesh.UnixSocket;
import io.meshcrypt.meshconfig.mesh.MeshReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ExtProcHopTest {

    private static final PortPlan PORTS = PortPlan.of(19000);

    @TempDir
    Path dir;

    @Test
    void givenNoOrTcpOrUnix_whenParsed_thenTheHopIsTcpTcpUnix() {
        assertEquals(ExtProcHop.TCP, ExtProcHop.parse(Map.of()));
        assertEquals(ExtProcHop.TCP, ExtProcHop.parse(Map.of("MESHCRYPT_EXT_PROC", "tcp")));
        assertEquals(ExtProcHop.UNIX, ExtProcHop.parse(Map.of("MESHCRYPT_EXT_PROC", "unix")));
    }

    @Test
    void givenAnotherValue_whenParsed_thenTheErrorSaysWhatIsAllowed() {
        LauncherException e = assertThrows(LauncherException.class, () -> ExtProcHop.parse(Map.of("MESHCRYPT_EXT_PROC", "UDS")));

        assertEquals("MESHCRYPT_EXT_PROC=UDS: must be tcp or unix", e.getMessage());
    }

    @Test
    void givenTheDemoMesh_whenPutOnUnixSockets_thenEverySidecarHasItsOwnSocketAndTheRestIsUnchanged() throws Exception {
        StateDir state = new StateDir(dir);
        Mesh demo = MeshFile.demo(PORTS);

        Mesh onSockets = ExtProcHop.onUnixSockets(demo, state);

        for (Mesh.Sidecar s : onSockets.sidecars().values()) {
            assertEquals(List.of(new UnixSocket(dir.resolve("run").resolve(s.nodeId() + ".sock"))), s.filterServices(), s.nodeId());
            assertEquals(demo.sidecars().get(s.nodeId()).withFilterServices(s.filterServices()), s, "only filterService changes");
        }
        assertEquals(demo.sidecars().keySet(), onSockets.sidecars().keySet());
        assertEquals(demo.policy(), onSockets.policy());
    }

    @Test
    void givenTheUpMeshOnUnixSocketsWithTls_whenWrittenAndReadBack_thenItIsValidAndKeepsTheSockets() throws Exception {
        StateDir state = new StateDir(dir);
        Mesh mesh = ExtProcHop.onUnixSockets(MeshFile.up(PORTS), state);

        String yaml = MeshFile.write(mesh, java.util.Optional.of(dir.resolve("pki")));
        Mesh read = MeshReader.parse(dir.resolve("mesh.yaml"), yaml.getBytes(StandardCharsets.UTF_8));

        assertEquals(List.of(new UnixSocket(dir.resolve("run/kafka-apps.sock"))), read.sidecars().get(MeshFile.SHARED_NODE).filterServices());
        assertTrue(yaml.contains("filterService: unix:" + dir.resolve("run/kafka-apps.sock")), yaml);
    }

    @Test
    void givenAShortHome_whenPathsChecked_thenTheyPass() {
        ExtProcHop.requireShortPaths(new StateDir(Path.of("/home/me/.meshcrypt")), Components.sidecarNodes());
    }

    @Test
    void givenAHomeTooLongForSunPath_whenPathsChecked_thenTheErrorNamesThePathAndTheLongestHomeThatFits() {
        Path home = Path.of("/" + "h".repeat(90));

        LauncherException e = assertThrows(LauncherException.class,
                () -> ExtProcHop.requireShortPaths(new StateDir(home), List.of("kafka-apps", "spring-consumer")));

        // "/run/spring-consumer.sock", the longer, is 25 bytes: 107 - 25 = 82 left for the home
        assertEquals("MESHCRYPT_EXT_PROC=unix: the socket path " + home + "/run/spring-consumer.sock is 116 bytes, Linux allows 107;"
                + " set MESHCRYPT_HOME to a shorter folder (at most 82 bytes)", e.getMessage());
    }

    @Test
    void givenUnixSockets_whenFilterYamlIsWritten_thenItEndsWithOneOwnerOnlySocketPerSidecarAndItsIdentity() throws Exception {
        StateDir state = new StateDir(dir);

        ConfigFiles.writeFilter(state, PORTS, 1, false, true, List.of("kafka-apps", "http-echo"));

        String yaml = Files.readString(state.file("filter.yaml"));
        assertTrue(yaml.endsWith("""
                unixSockets:
                  - path: run/kafka-apps.sock
                    identity: spiffe://meshcrypt.local/sidecar/kafka-apps
                    mode: "0600"
                  - path: run/http-echo.sock
                    identity: spiffe://meshcrypt.local/sidecar/http-echo
                    mode: "0600"
                """), yaml);
        JsonNode parsed = new ObjectMapper(new YAMLFactory()).readTree(yaml);
        assertEquals(2, parsed.get("unixSockets").size());
        assertEquals("127.0.0.1:19051", parsed.get("listen").asText(), "the TCP listener stays");
        assertTrue(parsed.has("tls"), "and its mutual TLS");
    }

    @Test
    void givenTcp_whenFilterYamlIsWritten_thenItHasNoUnixSockets() throws Exception {
        StateDir state = new StateDir(dir);

        ConfigFiles.writeFilter(state, PORTS, 1, false, true, List.of());

        assertTrue(!Files.readString(state.file("filter.yaml")).contains("unixSockets"));
    }
}
