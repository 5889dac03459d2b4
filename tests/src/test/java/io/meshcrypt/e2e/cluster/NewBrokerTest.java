package io.meshcrypt.e2e.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.launcher.MeshFile;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A broker joins the cluster that the mesh file does not name (node 4, a broker-only node started by hand next to the
 * launcher's three): every Metadata answer names it, so the filter-service closes each client connection rather than
 * hand out its real address, until the mesh file lists it; then clients see it at its own sidecar listener.
 */
class NewBrokerTest {

    private static final int NEW = 4;
    private static ClusterMesh mesh;
    private static Process broker;

    @BeforeAll
    static void cluster() {
        ClusterMesh.kcatBinary();
        mesh = ClusterMesh.shared();
    }

    @AfterAll
    static void removeTheNewBroker() throws Exception {
        if (broker != null) {
            // a broker leading nothing shuts down in a few seconds; fenced, Metadata names it no more
            broker.destroy();
            if (!broker.waitFor(60, TimeUnit.SECONDS)) {
                broker.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
        }
        writeMeshFile(ClusterMesh.BROKERS);
    }

    @Test
    void givenABrokerTheMeshFileDoesNotName_whenAClientAsksForMetadata_thenTheConnectionClosesUntilTheMeshFileListsIt()
            throws Exception {
        // Given node 4 in the cluster (the brokers themselves list it)
        startBrokerFour();

        // When a client asks the mesh for metadata, it gets none: no broker address of node 4 ever reaches it
        ClusterMesh.Kcat unnamed = listing();
        assertNotEquals(0, unnamed.exit(), "kcat -L through the mesh while node 4 has no listener:\n" + unnamed.out() + unnamed.err());
        assertFalse(unnamed.out().contains(":" + ClusterMesh.PORTS.broker(NEW)), unnamed.out());
        String refusal = "broker node " + NEW + " (127.0.0.1:" + ClusterMesh.PORTS.broker(NEW) + ") has no Envoy listener";
        assertTrue(Files.readString(mesh.home().resolve("logs/filter-service.log")).contains(refusal),
                "the filter-service's log says why it closed the connections: " + refusal);

        // Then once the mesh file lists node 4, the xDS server gives the sidecar its listener and clients see it there
        writeMeshFile(NEW);
        long written = System.nanoTime();
        long deadline = written + Duration.ofMinutes(1).toNanos();
        ClusterMesh.Kcat named = listing();
        while (named.exit() != 0 && System.nanoTime() - deadline < 0) {
            ClusterMesh.sleep(500);
            named = listing();
        }
        assertEquals(0, named.exit(), named.out() + named.err());
        assertTrue(named.out().contains(" 4 brokers:"), named.out());
        assertTrue(named.out().contains("broker 4 at 127.0.0.1:" + ClusterMesh.PORTS.envoyBroker(NEW)), named.out());
        assertFalse(named.out().contains(":" + ClusterMesh.PORTS.broker(NEW)), named.out());
        System.out.printf("cluster new broker: metadata through the mesh names node 4 at its listener %.1f s after the mesh file did%n",
                (System.nanoTime() - written) / 1e9);
    }

    /** kcat -L through the mesh, 5 s to get metadata. */
    private static ClusterMesh.Kcat listing() throws IOException, InterruptedException {
        return listing(mesh.kafkaBootstrap());
    }

    private static ClusterMesh.Kcat listing(String bootstrap) throws IOException, InterruptedException {
        return ClusterMesh.kcat("", "-b", bootstrap, "-L", "-m", "5");
    }

    /** The launcher's mesh file for {@code brokers} brokers (MeshFile.up), with its TLS section as the launcher writes it. */
    private static void writeMeshFile(int brokers) throws IOException {
        Path home = mesh.home();
        Path tmp = home.resolve("mesh.yaml.tmp");
        Files.writeString(tmp, MeshFile.write(MeshFile.up(ClusterMesh.PORTS, brokers),
                LocalMesh.TLS ? Optional.of(home.resolve("pki")) : Optional.empty()));
        // renamed into place: the xDS server watching it never reads half a file
        Files.move(tmp, home.resolve("mesh.yaml"), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /**
     * Node 4 as a broker only (the quorum stays the launcher's three voters): broker 2's generated config with node 4's
     * id, role, listener and log dir, formatted with the cluster's id, its pid where ./meshcrypt down finds it.
     */
    private static void startBrokerFour() throws Exception {
        Path home = mesh.home();
        Path dir = home.resolve("broker-" + NEW);
        Files.createDirectories(dir);
        Properties config = new Properties();
        try (var in = Files.newInputStream(home.resolve("broker-2/server.properties"))) {
            config.load(in);
        }
        String listener = "PLAINTEXT://127.0.0.1:" + ClusterMesh.PORTS.broker(NEW);
        config.setProperty("node.id", Integer.toString(NEW));
        config.setProperty("process.roles", "broker");
        config.setProperty("listeners", listener);
        config.setProperty("advertised.listeners", listener);
        config.setProperty("log.dirs", dir.resolve("data").toString());
        Path server = dir.resolve("server.properties");
        try (var out = Files.newOutputStream(server)) {
            config.store(out, "NewBrokerTest: node 4, a broker the mesh file does not name");
        }
        Properties meta = new Properties();
        try (var in = Files.newInputStream(home.resolve("broker/data/meta.properties"))) {
            meta.load(in);
        }
        List<String> jvm = List.of(ProcessHandle.current().info().command().orElse("java"), "-Xmx512m",
                "-Dlog4j2.configurationFile=" + home.resolve("broker-2/log4j2.properties"), "-cp",
                Files.readString(home.resolve("kafka.classpath")).strip());
        Path log = home.resolve("logs/broker-" + NEW + ".log");
        List<String> format = new ArrayList<>(jvm);
        format.addAll(List.of("kafka.tools.StorageTool", "format", "-t", meta.getProperty("cluster.id"), "-c", server.toString(),
                "--ignore-formatted"));
        Process formatting = new ProcessBuilder(format).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
                .start();
        assertTrue(formatting.waitFor(2, TimeUnit.MINUTES) && formatting.exitValue() == 0, "formatting node 4 failed; see " + log);
        List<String> run = new ArrayList<>(jvm);
        run.addAll(List.of("kafka.Kafka", server.toString()));
        broker = new ProcessBuilder(run).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
        Files.writeString(home.resolve("pids/broker-" + NEW + ".pid"), broker.pid() + "\n");
        long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
        while (!registered()) {
            assertTrue(broker.isAlive(), "node 4 exited; see " + log);
            assertTrue(System.nanoTime() - deadline < 0, "node 4 did not join the cluster within 2 min; see " + log);
            ClusterMesh.sleep(500);
        }
    }

    /** Every broker of the cluster, asked directly, names node 4: from now on, so does each Metadata answer. */
    private static boolean registered() throws IOException, InterruptedException {
        for (int id = 1; id <= ClusterMesh.BROKERS; id++) {
            ClusterMesh.Kcat direct = listing("127.0.0.1:" + ClusterMesh.PORTS.broker(id));
            if (direct.exit() != 0 || !direct.out().contains("broker " + NEW + " at 127.0.0.1:" + ClusterMesh.PORTS.broker(NEW))) {
                return false;
            }
        }
        return true;
    }
}
