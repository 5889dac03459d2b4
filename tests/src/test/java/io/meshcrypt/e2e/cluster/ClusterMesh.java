package io.meshcrypt.e2e.cluster;

import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.launcher.PortPlan;
import io.meshcrypt.testsupport.Prerequisite;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.TopicPartitionInfo;

/**
 * A 3-broker KRaft cluster behind the mesh, started once per JVM with {@code ./meshcrypt up --brokers 3} in a state dir
 * of its own (tests/target/mesh-cluster, port base 9000 below MESHCRYPT_E2E_PORT_BASE) and torn down with
 * {@code ./meshcrypt down} at JVM exit. The shared sidecar has a listener per broker; {@link #brokerDirect()} lists the
 * brokers' own ports (what an attacker with broker access reads). Tests that stop or kill a broker start it again and
 * wait for full ISRs, so each test class finds three brokers.
 */
final class ClusterMesh {

    static final int BROKERS = 3;
    /** Port base 20000 unless MESHCRYPT_E2E_PORT_BASE moves it: 9000 below that base. */
    static final PortPlan PORTS = LocalMesh.portsBelow(9000);
    static final Duration CLIENT_TIMEOUT = Duration.ofSeconds(30);
    private static final Duration UP_TIMEOUT = Duration.ofMinutes(5);
    private static final Duration COMPONENT_TIMEOUT = Duration.ofMinutes(2);

    /** Runs {@link #start} once, on first use; every caller then gets its mesh or the same failure. */
    private static final FutureTask<ClusterMesh> SHARED = new FutureTask<>(ClusterMesh::start);

    private final Path root;
    private final Path home;
    private final Path log;
    private final Admin admin;

    private ClusterMesh(Path root, Path home, Path log) {
        this.root = root;
        this.home = home;
        this.log = log;
        this.admin = admin(brokerDirect());
    }

    /** The cluster of this JVM, started on first use; a failed start fails every later caller the same way. */
    static ClusterMesh shared() {
        SHARED.run();
        try {
            return SHARED.get();
        } catch (ExecutionException e) {
            throw e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted starting the cluster", e);
        }
    }

    private static ClusterMesh start() {
        Path root = LocalMesh.projectRoot();
        Path home = root.resolve("tests/target/mesh-cluster");
        Path log = root.resolve("tests/target/e2e-cluster-launcher.log");
        // a run killed before its shutdown hook may have left processes holding the ports; then a fresh cluster
        launcher(root, home, log, COMPONENT_TIMEOUT, "down");
        deleteBrokerData(home);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            if (!Boolean.getBoolean("meshcrypt.e2e.keep")) {
                launcher(root, home, log, COMPONENT_TIMEOUT, "down");
            }
        }, "meshcrypt-cluster-down"));
        launcher(root, home, log, UP_TIMEOUT, "up", "--brokers", Integer.toString(BROKERS));
        return new ClusterMesh(root, home, log);
    }

    /** The brokers' data and the count it was formatted for; the keyset, CA and Envoy install stay. */
    private static void deleteBrokerData(Path home) {
        try {
            Files.deleteIfExists(home.resolve("brokers"));
            // up to the launcher's most: a test may have added a node the launcher did not start (NewBrokerTest)
            for (int id = 1; id <= PortPlan.MAX_BROKERS; id++) {
                Path dir = home.resolve(component(id));
                if (Files.exists(dir)) {
                    try (Stream<Path> files = Files.walk(dir)) {
                        for (Path f : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
                            Files.delete(f);
                        }
                    }
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot delete the broker data in " + home, e);
        }
    }

    /** Runs {@code ./meshcrypt args} for this cluster's state dir; fails naming the log unless it exits 0. */
    private static void launcher(Path root, Path home, Path log, Duration timeout, String... args) {
        List<String> command = new ArrayList<>(List.of(root.resolve("meshcrypt").toString()));
        command.addAll(List.of(args));
        String line = "./meshcrypt " + String.join(" ", args);
        ProcessBuilder pb = new ProcessBuilder(command).directory(root.toFile()).redirectErrorStream(true)
                // a file, not a pipe: the daemons it starts inherit it and must never block on it
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        pb.environment().put("MESHCRYPT_HOME", home.toString());
        pb.environment().put("MESHCRYPT_PORT_BASE", Integer.toString(PORTS.base()));
        try {
            Files.createDirectories(log.getParent());
            Files.writeString(log, "\n=== " + line + "\n", StandardOpenOption.CREATE, StandardOpenOption.APPEND);
            Process p = pb.start();
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
                throw new IllegalStateException(line + " did not finish within " + timeout + "; see " + log);
            }
            if (p.exitValue() != 0) {
                List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
                throw new IllegalStateException(line + " exited with " + p.exitValue() + "; see " + log + " and " + home.resolve("logs")
                        + "\n" + String.join("\n", lines.subList(Math.max(0, lines.size() - 30), lines.size())));
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot run " + line, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted running " + line, e);
        }
    }

    static String component(int id) {
        return id == 1 ? "broker" : "broker-" + id;
    }

    // ---- addresses

    /** The shared sidecar's bootstrap listener: what applications use. */
    String kafkaBootstrap() {
        return "127.0.0.1:" + PORTS.envoyBootstrap();
    }

    /** The brokers' own listeners, as a bootstrap list. */
    String brokerDirect() {
        return IntStream.rangeClosed(1, BROKERS).mapToObj(id -> "127.0.0.1:" + PORTS.broker(id)).collect(Collectors.joining(","));
    }

    /** Broker id -> the sidecar's listener of that broker, host:port. */
    Map<Integer, String> sidecarListeners() {
        Map<Integer, String> out = new TreeMap<>();
        IntStream.rangeClosed(1, BROKERS).forEach(id -> out.put(id, "127.0.0.1:" + PORTS.envoyBroker(id)));
        return out;
    }

    /** The brokers' own host:port (never to be handed to a client of the mesh). */
    Set<String> brokerAddresses() {
        return IntStream.rangeClosed(1, BROKERS).mapToObj(id -> "127.0.0.1:" + PORTS.broker(id)).collect(Collectors.toSet());
    }

    /** The shared admin client, connected to the brokers directly. */
    Admin admin() {
        return admin;
    }

    /** A new admin client bootstrapping from {@code bootstrap}; the caller closes it. */
    static Admin admin(String bootstrap) {
        return Admin.create(Map.<String, Object>of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) CLIENT_TIMEOUT.toMillis(),
                AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000));
    }

    // ---- kcat

    /** kcat's exit status, standard output and standard error. */
    record Kcat(int exit, String out, String err) {
    }

    /** kcat on the PATH; a test that needs it fails loudly without it (Prerequisite). */
    static Path kcatBinary() {
        Path kcat = List.of(System.getenv().getOrDefault("PATH", "").split(java.io.File.pathSeparator)).stream()
                .map(dir -> Path.of(dir, "kcat")).filter(Files::isExecutable).findFirst().orElse(null);
        Prerequisite.require(kcat != null, "kcat is not installed");
        return kcat;
    }

    /** Runs kcat with {@code stdin}; 124 when it does not finish within a minute. */
    static Kcat kcat(String stdin, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of(kcatBinary().toString()));
        command.addAll(List.of(args));
        Path err = Files.createTempFile("kcat", ".err");
        try {
            Process p = new ProcessBuilder(command).redirectError(err.toFile()).start();
            try (var in = p.getOutputStream()) {
                in.write(stdin.getBytes(StandardCharsets.UTF_8));
            }
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            boolean done = p.waitFor(60, TimeUnit.SECONDS);
            if (!done) {
                p.destroyForcibly();
            }
            return new Kcat(done ? p.exitValue() : 124, out, Files.readString(err));
        } finally {
            Files.deleteIfExists(err);
        }
    }

    Path root() {
        return root;
    }

    /** The cluster's state dir ({@code MESHCRYPT_HOME}): mesh.yaml, the brokers' configs and data, logs, pids. */
    Path home() {
        return home;
    }

    // ---- topics

    /** A topic with a unique name, {@code partitions} partitions, replication factor 3 and min.insync.replicas 2. */
    String createTopic(String prefix, int partitions) {
        byte[] suffix = new byte[4];
        ThreadLocalRandom.current().nextBytes(suffix);
        String name = prefix + "-" + HexFormat.of().formatHex(suffix);
        try {
            admin.createTopics(List.of(new NewTopic(name, partitions, (short) BROKERS).configs(Map.of("min.insync.replicas", "2"))))
                    .all().get(CLIENT_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            throw new IllegalStateException("cannot create topic " + name, e);
        }
        awaitFullIsr(List.of(name));
        return name;
    }

    TopicDescription describe(String topic) {
        try {
            return admin.describeTopics(List.of(topic)).allTopicNames().get(CLIENT_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS).get(topic);
        } catch (Exception e) {
            throw new IllegalStateException("cannot describe " + topic, e);
        }
    }

    /** Waits until every partition of {@code topics} (and of the offsets topic, once it exists) has all brokers in sync. */
    void awaitFullIsr(List<String> topics) {
        long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
        String lagging = "";
        while (System.nanoTime() - deadline < 0) {
            lagging = laggingPartitions(topics);
            if (lagging.isEmpty()) {
                return;
            }
            sleep(250);
        }
        throw new AssertionError("ISR not full within 2 min: " + lagging);
    }

    private String laggingPartitions(List<String> topics) {
        List<String> names = new ArrayList<>(topics);
        try {
            if (admin.listTopics(new org.apache.kafka.clients.admin.ListTopicsOptions().listInternal(true)).names().get(10, TimeUnit.SECONDS)
                    .contains("__consumer_offsets")) {
                names.add("__consumer_offsets");
            }
            StringBuilder lagging = new StringBuilder();
            for (TopicDescription d : admin.describeTopics(names).allTopicNames().get(10, TimeUnit.SECONDS).values()) {
                for (TopicPartitionInfo p : d.partitions()) {
                    if (p.isr().size() < BROKERS || p.leader() == null) {
                        lagging.append(d.name()).append('-').append(p.partition()).append(" isr ").append(p.isr()).append("; ");
                    }
                }
            }
            return lagging.toString();
        } catch (Exception e) {
            // a broker restarting: ask again
            return e.toString();
        }
    }

    // ---- brokers

    /** kill -9 of broker {@code id}'s process (and anything it forked): no controlled shutdown, no flush. */
    void kill(int id) {
        long pid = pid(id);
        ProcessHandle broker = (pid > 0 ? ProcessHandle.of(pid) : java.util.Optional.<ProcessHandle>empty()).orElseThrow(() -> new IllegalStateException(component(id) + " is not running"));
        List<ProcessHandle> family = new ArrayList<>(broker.descendants().toList());
        family.add(0, broker);
        family.forEach(ProcessHandle::destroyForcibly);
        try {
            broker.onExit().get(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new IllegalStateException(component(id) + " survived SIGKILL", e);
        }
    }

    /** {@code ./meshcrypt stop broker-<id>}: SIGTERM, a controlled shutdown that moves its leaders away first. */
    void stop(int id) {
        launcher(root, home, log, COMPONENT_TIMEOUT, "stop", component(id));
    }

    /** {@code ./meshcrypt start broker-<id>}: back when it answers Metadata naming itself (not yet in sync). */
    void start(int id) {
        launcher(root, home, log, COMPONENT_TIMEOUT, "start", component(id));
    }

    boolean running(int id) {
        long pid = pid(id);
        return pid > 0 && ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
    }

    private long pid(int id) {
        Path file = home.resolve("pids").resolve(component(id) + ".pid");
        try {
            return Files.exists(file) ? Long.parseLong(Files.readString(file).strip()) : -1;
        } catch (IOException | NumberFormatException e) {
            throw new IllegalStateException("no usable pid in " + file, e);
        }
    }

    static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }
}
