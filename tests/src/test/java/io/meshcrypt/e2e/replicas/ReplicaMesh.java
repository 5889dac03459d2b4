package io.meshcrypt.e2e.replicas;

import io.meshcrypt.e2e.support.Await;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.launcher.MeshFile;
import io.meshcrypt.launcher.PortPlan;
import io.meshcrypt.meshconfig.mesh.Mesh;
import io.meshcrypt.meshconfig.mesh.Mesh.Address;
import io.meshcrypt.meshconfig.mesh.Mesh.Sidecar;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.TopicRule;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.HexFormat;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;

/**
 * A mesh whose one Envoy (the launcher's shared sidecar, configured by the xDS server) streams to two filter-service
 * replicas: {@code ./meshcrypt up} runs broker, xDS server and Envoy from a mesh file that lists both replicas'
 * addresses; the launcher's own filter-service is stopped and this class runs the replicas itself, so that a test can
 * kill -9 and restart them. Own state dir (tests/target/mesh-replicas) and ports ({@link LocalMesh#portsBelow}
 * 10000): the shared mesh's sidecar has one filter-service, and killing it would break the other test classes.
 *
 * <p>What the replicas share is exactly what production replicas share: the KEK (the local keyset file the
 * launcher created: {@code keys: provider: local}, so each replica makes and wraps its own data keys, and any of them
 * unwraps any other's) and the policy source (the xDS server). Each has its own gRPC port, metrics port and audit file;
 * the config is the launcher's filter.yaml with those three lines changed.
 */
final class ReplicaMesh implements AutoCloseable {
    static final PortPlan PORTS = LocalMesh.portsBelow(10_000);
    /** Above the launcher's plan (SPAN 907), below the next mesh's base (1000 apart). */
    private static final int REPLICA_PORTS = PORTS.base() + 940;
    static final int REPLICAS = 2;
    private static final Duration LAUNCHER_TIMEOUT = Duration.ofMinutes(4);
    static final Duration TIMEOUT = Duration.ofSeconds(90);

    private final Path root = LocalMesh.projectRoot();
    private final Path home = root.resolve("tests/target/mesh-replicas");
    private final Path launcherLog = root.resolve("tests/target/mesh-replicas-launcher.log");
    private final Process[] replicas = new Process[REPLICAS];
    /** Policy entries put before the launcher's (the first entry a topic matches applies). */
    private final List<TopicRule> firstRules;
    private Admin admin;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    private ReplicaMesh(List<TopicRule> firstRules) {
        this.firstRules = List.copyOf(firstRules);
    }

    /** Starts broker, xDS server, Envoy and both replicas; waits until Envoy health-checks both as healthy. */
    static ReplicaMesh start() throws Exception {
        return start(List.of());
    }

    /** As {@link #start()}, with {@code firstRules} ahead of the launcher's policy. */
    static ReplicaMesh start(List<TopicRule> firstRules) throws Exception {
        ReplicaMesh mesh = new ReplicaMesh(firstRules);
        try {
            mesh.up();
        } catch (Exception | AssertionError e) {
            mesh.close();
            throw e;
        }
        return mesh;
    }

    private void up() throws Exception {
        Files.createDirectories(home);
        launcher("down");
        Files.deleteIfExists(home.resolve("filter.yaml"));
        Mesh launchers = MeshFile.up(PORTS);
        Sidecar shared = launchers.sidecars().get(MeshFile.SHARED_NODE);
        List<Mesh.FilterServiceAddress> addresses = new ArrayList<>();
        for (int i = 0; i < REPLICAS; i++) {
            addresses.add(new Address("127.0.0.1", grpcPort(i)));
        }
        Map<String, Sidecar> sidecars = new LinkedHashMap<>(launchers.sidecars());
        sidecars.put(MeshFile.SHARED_NODE, new Sidecar(shared.nodeId(), addresses, shared.kafka(), shared.http(), shared.transparent()));
        EncryptionPolicy policy = launchers.policy();
        if (!firstRules.isEmpty()) {
            List<TopicRule> rules = new ArrayList<>(firstRules);
            rules.addAll(policy.rules());
            policy = EncryptionPolicy.ofRules(rules, policy.decryptOnly(), policy.unmatched());
        }
        Mesh mesh = new Mesh(launchers.kafkaClusters(), sidecars, policy, launchers.http());
        // without the launcher's "generated" marker, so that `up` keeps it
        Files.writeString(home.resolve("mesh.yaml"), "# written by the e2e replicas test (ReplicaMesh.java)\n"
                + MeshFile.yaml(mesh, LocalMesh.TLS ? Optional.of(home.resolve("pki")) : Optional.empty()));
        if (launcher("up") != 0) {
            throw new IllegalStateException("./meshcrypt up failed; see " + launcherLog + " and " + home.resolve("logs"));
        }
        // the launcher's filter-service listens on replica 0's port: the test runs both replicas itself
        if (launcher("stop", "filter-service") != 0) {
            throw new IllegalStateException("./meshcrypt stop filter-service failed; see " + launcherLog);
        }
        String config = Files.readString(home.resolve("filter.yaml"));
        for (int i = 0; i < REPLICAS; i++) {
            Files.writeString(config(i), replicaConfig(config, i));
        }
        startReplicas(0, 1);
    }

    /** The launcher's filter.yaml with replica {@code i}'s gRPC and metrics ports and its own audit file. */
    private static String replicaConfig(String launchers, int i) {
        String config = replace(launchers, "(?m)^listen: 127\\.0\\.0\\.1:" + PORTS.filterGrpc() + "$", "listen: 127.0.0.1:" + grpcPort(i));
        config = replace(config, "(?m)^  listen: 127\\.0\\.0\\.1:" + PORTS.filterMetrics() + "$", "  listen: 127.0.0.1:" + metricsPort(i));
        return replace(config, "(?m)^  file: logs/audit\\.jsonl$", "  file: logs/audit-replica-" + i + ".jsonl");
    }

    private static String replace(String text, String regex, String with) {
        Matcher m = Pattern.compile(regex).matcher(text);
        if (!m.find()) {
            throw new IllegalStateException("the launcher's filter.yaml has no line matching " + regex + ":\n" + text);
        }
        return m.replaceAll(with);
    }

    static int grpcPort(int replica) {
        return replica == 0 ? PORTS.filterGrpc() : REPLICA_PORTS + 2 * replica;
    }

    static int metricsPort(int replica) {
        return REPLICA_PORTS + 2 * replica + 1;
    }

    private Path config(int replica) {
        return home.resolve("filter-replica-" + replica + ".yaml");
    }

    /**
     * Starts the given replicas (new processes: nothing learnt by earlier ones), together, and waits until each
     * serves and Envoy's health check has put it back into rotation.
     */
    void startReplicas(int... which) throws Exception {
        for (int i : which) {
            Path log = log(i);
            Files.createDirectories(log.getParent());
            List<String> command = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "-XX:+ExitOnOutOfMemoryError", "-Xmx384m",
                    "-jar", root.resolve("filter-service/target/meshcrypt-filter-service.jar").toString(),
                    "serve", "--config", config(i).toString());
            replicas[i] = new ProcessBuilder(command).directory(home.toFile()).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
        }
        for (int i : which) {
            Await.until(TIMEOUT, () -> {
                pause();
                if (!replicas[i].isAlive()) {
                    throw new IllegalStateException("replica " + i + " exited with " + replicas[i].exitValue() + "; see " + log(i));
                }
                return ready(i);
            }, () -> "replica " + i + " ready (/readyz); see " + log(i));
        }
        for (int i : which) {
            awaitHealthy(i);
        }
    }

    private Path log(int replica) {
        return home.resolve("logs").resolve("filter-replica-" + replica + ".log");
    }

    boolean running(int replica) {
        return replicas[replica] != null && replicas[replica].isAlive();
    }

    private static void pause() {
        try {
            Thread.sleep(200);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** kill -9: no goodbye to Envoy or the clients. */
    void kill(int i) throws InterruptedException {
        replicas[i].destroyForcibly();
        replicas[i].waitFor(30, TimeUnit.SECONDS);
    }

    private boolean ready(int i) {
        try {
            return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + metricsPort(i) + "/readyz"))
                    .timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.discarding()).statusCode() == 200;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** One counter or gauge of replica {@code i}'s /metrics (no labels), 0 when absent. */
    double metric(int i, String name) throws IOException, InterruptedException {
        String body = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + metricsPort(i) + "/metrics"))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString()).body();
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name) + " ([0-9.eE+-]+)$").matcher(body);
        return m.find() ? Double.parseDouble(m.group(1)) : 0;
    }

    /** Envoy's health flags for replica {@code i} in its filter_service cluster ("healthy", "/failed_active_hc", ...). */
    String envoyHealth(int i) throws IOException, InterruptedException {
        String body = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + PORTS.envoyAdmin() + "/clusters"))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString()).body();
        Matcher m = Pattern.compile("(?m)^filter_service::127\\.0\\.0\\.1:" + grpcPort(i) + "::health_flags::(.*)$").matcher(body);
        return m.find() ? m.group(1).strip() : "(not an endpoint)";
    }

    /** Waits until Envoy's health check passes replica {@code i} (new streams may go there). */
    void awaitHealthy(int i) {
        Await.until(TIMEOUT, () -> {
            pause();
            try {
                return envoyHealth(i).equals("healthy");
            } catch (IOException e) {
                return false;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }, () -> "Envoy health-checks replica " + i + " as healthy");
    }

    /** Envoy's bootstrap listener: what the applications use. */
    String bootstrap() {
        return "127.0.0.1:" + PORTS.envoyBootstrap();
    }

    int bootstrapPort() {
        return PORTS.envoyBootstrap();
    }

    /** The broker itself: what is stored. */
    String brokerDirect() {
        return "127.0.0.1:" + PORTS.broker();
    }

    /** A Kafka admin client of the broker itself, closed with the mesh. */
    synchronized Admin admin() {
        if (admin == null) {
            Properties p = new Properties();
            p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, brokerDirect());
            admin = Admin.create(p);
        }
        return admin;
    }

    /** A new one-partition topic {@code prefix-<random hex>}. */
    String createTopic(String prefix) throws Exception {
        byte[] suffix = new byte[4];
        ThreadLocalRandom.current().nextBytes(suffix);
        String name = prefix + "-" + HexFormat.of().formatHex(suffix);
        admin().createTopics(List.of(new NewTopic(name, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
        return name;
    }

    /** What producers and consumers share: quick reconnection (a replica may have just died), bytes in and out. */
    static Properties client(String bootstrap) {
        Properties p = new Properties();
        p.put(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(CommonClientConfigs.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        p.put(CommonClientConfigs.RECONNECT_BACKOFF_MS_CONFIG, 100);
        p.put(CommonClientConfigs.RECONNECT_BACKOFF_MAX_MS_CONFIG, 1_000);
        return p;
    }

    /** The mesh's state dir ($MESHCRYPT_HOME): pki/, logs/. */
    Path home() {
        return home;
    }

    /** Replica {@code i}'s audit trail. */
    Path auditFile(int i) {
        return home.resolve("logs").resolve("audit-replica-" + i + ".jsonl");
    }

    /**
     * {@code ./meshcrypt forget --topic-pattern P --subject S...}: through the admin API of the filter-service on the
     * launcher's gRPC port (replica 0), as the launcher's admin identity.
     *
     * @return what it printed; fails when it exits with an error
     */
    String forget(String topicPattern, List<String> subjects) throws IOException, InterruptedException {
        List<String> args = new ArrayList<>(List.of("forget", "--topic-pattern", topicPattern));
        subjects.forEach(s -> args.addAll(List.of("--subject", s)));
        Path out = Files.createTempFile(launcherLog.getParent(), "forget", ".log");
        try {
            int rc = launcher(out, args.toArray(String[]::new));
            String printed = Files.readString(out);
            if (rc != 0) {
                throw new IllegalStateException("./meshcrypt forget exited with " + rc + ":\n" + printed);
            }
            return printed;
        } finally {
            Files.deleteIfExists(out);
        }
    }

    private int launcher(String... args) throws IOException, InterruptedException {
        Files.createDirectories(launcherLog.getParent());
        return launcher(launcherLog, args);
    }

    private int launcher(Path output, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(root.resolve("meshcrypt").toString()));
        command.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(command).directory(root.toFile()).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(output.toFile()));
        pb.environment().put("MESHCRYPT_HOME", home.toString());
        pb.environment().put("MESHCRYPT_PORT_BASE", Integer.toString(PORTS.base()));
        Process p = pb.start();
        if (!p.waitFor(LAUNCHER_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
            throw new IllegalStateException("./meshcrypt " + String.join(" ", args) + " timed out; see " + output);
        }
        return p.exitValue();
    }

    @Override
    public void close() throws Exception {
        if (admin != null) {
            admin.close(Duration.ofSeconds(5));
        }
        for (Process p : replicas) {
            if (p != null) {
                p.destroy();
                if (!p.waitFor(15, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                }
            }
        }
        if (!Boolean.getBoolean("meshcrypt.e2e.keep")) {
            launcher("down");
        }
    }
}
