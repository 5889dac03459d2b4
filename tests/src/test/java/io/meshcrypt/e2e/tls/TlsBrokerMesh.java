package io.meshcrypt.e2e.tls;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.launcher.Installer;
import io.meshcrypt.launcher.MeshFile;
import io.meshcrypt.launcher.PortPlan;
import io.meshcrypt.launcher.StateDir;
import io.meshcrypt.meshconfig.mesh.Mesh;
import io.meshcrypt.meshconfig.mesh.Mesh.Address;
import io.meshcrypt.meshconfig.mesh.Mesh.KafkaCluster;
import io.meshcrypt.meshconfig.mesh.Mesh.KafkaListeners;
import io.meshcrypt.meshconfig.mesh.Mesh.Sidecar;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.http.HttpRules;
import io.meshcrypt.pki.LocalCa;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The mesh in front of a {@link SecureBroker}: the launcher's xDS server, filter-service and shared Envoy sidecar
 * (node {@code kafka-apps}), started with {@code ./meshcrypt start} in a state dir of its own
 * (tests/target/mesh-tls-brokers, port base 8000 below MESHCRYPT_E2E_PORT_BASE) and configured by a hand-written mesh
 * file whose Kafka clusters declare {@code tls:} (docs/tls-brokers.md). The sidecar's listener pairs, one per cluster:
 * <ul>
 * <li>{@link Route#SCRAM}: the broker's SASL_SSL listener; clients speak SASL_PLAINTEXT to the sidecar;</li>
 * <li>{@link Route#SCRAM_TLS}: the same listener, but the sidecar's listeners terminate TLS (clients: SASL_SSL);</li>
 * <li>{@link Route#SSL}: the broker's SSL listener; clients speak PLAINTEXT;</li>
 * <li>{@link Route#FOREIGN}: through a {@link RecordingRelay} to the listener whose certificate is from a foreign CA;</li>
 * <li>{@link Route#WRONG_NAME}: through another relay to the SSL listener, but expecting another name ({@code sni}).</li>
 * </ul>
 * The broker is not the launcher's: it starts none.
 */
final class TlsBrokerMesh implements AutoCloseable {

    /** Port base 34000 unless MESHCRYPT_E2E_PORT_BASE moves it: 8000 below that base. */
    static final PortPlan PORTS = LocalMesh.portsBelow(8000);
    static final String WRONG_NAME = "not-the-broker.example";
    private static final Duration LAUNCHER_TIMEOUT = Duration.ofMinutes(3);

    /** A Kafka cluster of the mesh file and its listener pair in the sidecar. */
    enum Route {
        SCRAM("scram"), SCRAM_TLS("scramtls"), SSL("ssl"), FOREIGN("foreign"), WRONG_NAME("wrongname");

        final String cluster;

        Route(String cluster) {
            this.cluster = cluster;
        }

        /** The sidecar's bootstrap listener of this route. */
        int bootstrap() {
            return PORTS.base() + 300 + 2 * ordinal();
        }

        int broker1() {
            return bootstrap() + 1;
        }
    }

    private final Path root;
    private final Path home;
    private final String password;
    private final SecureBroker broker;
    private final RecordingRelay foreignRelay;
    private final RecordingRelay wrongNameRelay;
    private final LocalCa.Issued listenerCertificate;

    TlsBrokerMesh() throws IOException {
        root = LocalMesh.projectRoot();
        home = root.resolve("tests/target/mesh-tls-brokers");
        // a run killed before its teardown may have left the launcher's processes behind
        launcher("down");
        clean(home);
        byte[] secret = new byte[12];
        ThreadLocalRandom.current().nextBytes(secret);
        password = HexFormat.of().formatHex(secret);
        String classpath = new Installer(root, new StateDir(home)).brokerClasspath();
        broker = new SecureBroker(home.resolve("broker"), classpath, password, PORTS.broker(), PORTS.base() + 94,
                PORTS.base() + 95, PORTS.controller());
        foreignRelay = new RecordingRelay(PORTS.base() + 96, broker.foreignPort());
        wrongNameRelay = new RecordingRelay(PORTS.base() + 97, broker.sslPort());
        listenerCertificate = LocalCa.openOrCreate(home.resolve("broker/ca")).issue("sidecar-listener",
                LocalCa.spiffeId("sidecar/" + MeshFile.SHARED_NODE), List.of("127.0.0.1", SecureBroker.HOST), Duration.ofDays(1));
        try {
            writeMeshFile();
            // the xDS server (reading the mesh file), the filter-service it delivers the policy to, then the sidecar
            launcher("start", "filter-service");
            launcher("start", "envoy");
        } catch (IOException | RuntimeException e) {
            close();
            throw e;
        }
    }

    SecureBroker broker() {
        return broker;
    }

    /** The SCRAM password of {@link SecureBroker#USER}. */
    String password() {
        return password;
    }

    RecordingRelay foreignRelay() {
        return foreignRelay;
    }

    RecordingRelay wrongNameRelay() {
        return wrongNameRelay;
    }

    /** The CA of the sidecar's TLS-terminating listeners (the broker's CA, which issued their certificate). */
    Path listenerCa() {
        return broker.caCertificate();
    }

    Path home() {
        return home;
    }

    /** The sum of the sidecar's counters named {@code stat} (e.g. ssl.fail_verify_error) of clusters naming {@code route}. */
    long envoyCounter(Route route, String stat) throws IOException, InterruptedException {
        HttpResponse<String> stats;
        try (HttpClient http = HttpClient.newHttpClient()) {
            stats = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + PORTS.envoyAdmin() + "/stats?filter="
                    + stat)).build(), HttpResponse.BodyHandlers.ofString());
        }
        long sum = 0;
        for (String line : stats.body().split("\n")) {
            int colon = line.lastIndexOf(": ");
            if (colon > 0 && line.startsWith("cluster.") && line.contains(route.cluster) && line.substring(0, colon).endsWith(stat)) {
                sum += Long.parseLong(line.substring(colon + 2).strip());
            }
        }
        return sum;
    }

    /**
     * The mesh file: the launcher's shapes (mesh-config's writer, with the mesh's mutual-TLS section when the launcher
     * runs TLS), then the {@code tls:} blocks this test is about, added to the tree as a user would write them.
     */
    private void writeMeshFile() throws IOException {
        Map<String, KafkaCluster> clusters = new LinkedHashMap<>();
        Map<String, KafkaListeners> listeners = new LinkedHashMap<>();
        for (Route route : Route.values()) {
            int port = switch (route) {
                case SCRAM, SCRAM_TLS -> broker.saslSslPort();
                case SSL -> broker.sslPort();
                case FOREIGN -> PORTS.base() + 96;
                case WRONG_NAME -> PORTS.base() + 97;
            };
            clusters.put(route.cluster, new KafkaCluster(route.cluster, Map.of(1, new Address(SecureBroker.HOST, port))));
            Map<Integer, Address> broker1 = Map.of(1, local(route.broker1()));
            listeners.put(route.cluster, new KafkaListeners(route.cluster, local(route.bootstrap()), broker1, broker1));
        }
        Sidecar sidecar = new Sidecar(MeshFile.SHARED_NODE, local(PORTS.filterGrpc()), listeners, Map.of(), Optional.empty());
        Mesh mesh = new Mesh(clusters, Map.of(MeshFile.SHARED_NODE, sidecar),
                EncryptionPolicy.of(List.of("*"), EncryptionPolicy.Unmatched.PASSTHROUGH), HttpRules.NONE);
        ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
        ObjectNode tree = (ObjectNode) yaml.readTree(MeshFile.yaml(mesh, LocalMesh.TLS ? Optional.of(home.resolve("pki"))
                : Optional.empty()));
        for (Route route : Route.values()) {
            ObjectNode tls = ((ObjectNode) tree.path("kafkaClusters").path(route.cluster)).putObject("tls");
            tls.put("trustedCa", broker.caCertificate().toString());
            if (route == Route.WRONG_NAME) {
                tls.putObject("sni").put("1", WRONG_NAME);
            }
        }
        ObjectNode terminating = ((ObjectNode) tree.path("sidecars").path(MeshFile.SHARED_NODE).path("kafka")
                .path(Route.SCRAM_TLS.cluster)).putObject("tls");
        terminating.put("certificate", listenerCertificate.certificate().toString());
        terminating.put("privateKey", listenerCertificate.privateKey().toString());
        // no launcher mark: ./meshcrypt keeps a hand-written mesh file
        Files.writeString(home.resolve("mesh.yaml"), "# written by the TLS/SASL e2e test (TlsBrokerMesh.java)\n"
                + yaml.writeValueAsString(tree));
    }

    private static Address local(int port) {
        return new Address("127.0.0.1", port);
    }

    private void launcher(String... args) throws IOException {
        List<String> command = new ArrayList<>(List.of(root.resolve("meshcrypt").toString()));
        command.addAll(List.of(args));
        Path log = home.resolveSibling("mesh-tls-brokers-launcher.log");
        Files.createDirectories(home);
        Files.writeString(log, "\n=== ./meshcrypt " + String.join(" ", args) + "\n", StandardOpenOption.CREATE,
                StandardOpenOption.APPEND);
        ProcessBuilder pb = new ProcessBuilder(command).directory(root.toFile()).redirectErrorStream(true)
                // a file, not a pipe: the daemons it starts inherit it
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        pb.environment().put("MESHCRYPT_HOME", home.toString());
        pb.environment().put("MESHCRYPT_PORT_BASE", Integer.toString(PORTS.base()));
        Process p = pb.start();
        try {
            if (!p.waitFor(LAUNCHER_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
                p.destroyForcibly();
                throw new IllegalStateException("./meshcrypt " + String.join(" ", args) + " timed out; see " + log);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
        if (p.exitValue() != 0) {
            throw new IllegalStateException("./meshcrypt " + String.join(" ", args) + " exited with " + p.exitValue()
                    + "; see " + log + " and " + home.resolve("logs"));
        }
    }

    /** Empties the state dir but keeps what is slow to make again: Envoy's venv and the broker classpath. */
    private static void clean(Path home) throws IOException {
        Files.createDirectories(home);
        Set<Path> kept = Set.of(home.resolve("venv"), home.resolve("kafka.classpath"));
        try (Stream<Path> top = Files.list(home)) {
            for (Path p : top.filter(p -> !kept.contains(p)).toList()) {
                try (Stream<Path> all = Files.walk(p)) {
                    for (Path q : all.sorted(java.util.Comparator.reverseOrder()).toList()) {
                        Files.delete(q);
                    }
                }
            }
        }
    }

    @Override
    public void close() throws IOException {
        try {
            if (!Boolean.getBoolean("meshcrypt.e2e.keep")) {
                launcher("down");
            }
        } finally {
            foreignRelay.close();
            wrongNameRelay.close();
            broker.close();
        }
    }
}
