package io.meshcrypt.xds;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.testsupport.EnvoyProcess;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Real processes for the xDS tests: one Kafka broker per JVM (started by {@code ./meshcrypt start broker} on port
 * base {@link #LAUNCHER_PORT_BASE}, shared by both modes), and per mode an xDS server, two filter-services and two
 * Envoy 1.40 sidecars ({@code app-a}, {@code app-b}) bootstrapped from envoy/xds-bootstrap.yaml.template. Every
 * process is a child of this JVM and is stopped by {@link #close()} or, at the latest, a shutdown hook.
 *
 * <p>The Envoy binary: {@code -Dmeshcrypt.envoy}, as {@code ./meshcrypt test} passes it ({@link EnvoyProcess}).
 */
final class XdsMeshHarness implements AutoCloseable {

    /**
     * {@code $MESHCRYPT_XDS_PORT_BASE}, default 31000, so that two runs on one machine can use separate ports. The
     * launcher claims base..base+907 (the broker is base+92); the modes use base+200..+250 (state of the world) and
     * base+400..+450 (delta). All of it stays below 32768, where Linux starts handing out ephemeral ports.
     */
    static final int LAUNCHER_PORT_BASE = portBase(System.getenv("MESHCRYPT_XDS_PORT_BASE"));
    static final int SOTW_PORT_BASE = LAUNCHER_PORT_BASE + 200;
    static final int DELTA_PORT_BASE = LAUNCHER_PORT_BASE + 400;
    static final String BROKER = "127.0.0.1:" + (LAUNCHER_PORT_BASE + 92);
    static final Duration TIMEOUT = Duration.ofSeconds(60);
    static final byte[] ENVELOPE_HEAD = {0x00, 0x4D, 0x43, 0x45, 0x01};
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

    static int portBase(String env) {
        if (env == null || env.isBlank()) {
            return 31000;
        }
        int base;
        try {
            base = Integer.parseInt(env.strip());
        } catch (NumberFormatException e) {
            base = -1;
        }
        if (base < 1024 || base + 907 >= 32768) {
            throw new IllegalStateException("MESHCRYPT_XDS_PORT_BASE=" + env + ": must be a number from 1024 to " + (32767 - 907)
                    + " (the tests use base..base+907, below the ephemeral ports from 32768)");
        }
        return base;
    }

    private static Path root;
    private static Path launcherHome;
    private static Admin admin;

    final String apiType;
    final int base;
    final Path dir;
    final Path mesh;
    private final List<Process> processes = new ArrayList<>();
    private Process xds;
    private Process filterAProcess;
    final Process envoyA;
    final Process envoyB;

    /** Ports of this mode, all on 127.0.0.1. */
    final int xdsPort;
    final int statusPort;
    final int filterA;
    final int filterB;
    final int bootstrapA;
    final int brokerA;
    final int auditBootstrapA;
    final int auditBrokerA;
    final int httpA;
    final int transparentA;
    final int bootstrapB;
    final int brokerB;
    final int adminA;
    final int adminB;

    /**
     * @param apiType GRPC (state of the world) or DELTA_GRPC
     * @param base first port of this mode's block (50 ports)
     */
    XdsMeshHarness(String apiType, int base) throws Exception {
        this.apiType = apiType;
        this.base = base;
        xdsPort = base;
        statusPort = base + 1;
        filterA = base + 10;
        filterB = base + 11;
        bootstrapA = base + 20;
        brokerA = base + 21;
        auditBootstrapA = base + 22;
        auditBrokerA = base + 23;
        httpA = base + 24;
        transparentA = base + 25;
        bootstrapB = base + 30;
        brokerB = base + 31;
        adminA = base + 40;
        adminB = base + 41;
        startSharedBroker();
        Runtime.getRuntime().addShutdownHook(new Thread(this::close, "xds-harness-" + apiType));
        dir = root.resolve("envoy/xds-server/target/xds-" + apiType.toLowerCase());
        deleteRecursively(dir);
        Files.createDirectories(dir);
        Keysets.create(dir.resolve("keyset.json"));
        mesh = dir.resolve("mesh.yaml");
        writeMesh(baseMesh(List.of("enc-*")));
        writeFilterConfig("filter-a.yaml", filterA, brokerA);
        writeFilterConfig("filter-b.yaml", filterB, brokerB);
        startXds();
        startFilterA();
        spawn("filter-b", List.of("io.meshcrypt.filter.Main", "serve", "--config", dir.resolve("filter-b.yaml").toString()), true);
        envoyA = startEnvoy("app-a", adminA);
        envoyB = startEnvoy("app-b", adminB);
        awaitPort(filterA);
        awaitPort(filterB);
        String version = status().get("version").asText();
        awaitApplied(version);
    }

    // ---- mesh file

    /** Sidecar A fronts Kafka cluster main (and, with {@code withAudit}, audit too); B fronts main. */
    String mesh(List<String> encrypt, boolean withAudit, String auditBootstrap) {
        String audit = withAudit ? """
                      audit:
                        bootstrap: %s
                        brokers:
                          1: 127.0.0.1:%d
                """.formatted(auditBootstrap, auditBrokerA) : "";
        return """
                filterService: 127.0.0.1:%d
                kafkaClusters:
                  main:
                    brokers:
                      1: %s
                  audit:
                    brokers:
                      1: %s
                sidecars:
                  app-a:
                    kafka:
                      main:
                        bootstrap: 127.0.0.1:%d
                        brokers:
                          1: 127.0.0.1:%d
                %s  app-b:
                    filterService: 127.0.0.1:%d
                    kafka:
                      main:
                        bootstrap: 127.0.0.1:%d
                        brokers:
                          1: 127.0.0.1:%d
                policy:
                  encrypt: [%s]
                  unmatched: passthrough
                """.formatted(filterA, BROKER, BROKER, bootstrapA, brokerA, audit, filterB, bootstrapB, brokerB,
                String.join(", ", encrypt.stream().map(p -> "\"" + p + "\"").toList())) + HTTP_RULES;
    }

    String baseMesh(List<String> encrypt) {
        return mesh(encrypt, false, null);
    }

    /** {@code yaml} with an inbound HTTP listener {@code orders} on sidecar A, in front of the app at {@code appPort}. */
    String withHttpListener(String yaml, int appPort) {
        String block = """
                  app-a:
                    http:
                      orders:
                        listen: 127.0.0.1:%d
                        upstream: 127.0.0.1:%d
                """.formatted(httpA, appPort);
        if (!yaml.contains("  app-a:\n")) {
            throw new IllegalArgumentException("no sidecar app-a in the mesh");
        }
        return yaml.replace("  app-a:\n", block);
    }

    /**
     * {@code yaml} with a transparent (original_dst) listener on sidecar A intercepting Kafka cluster {@code main}.
     * Without an iptables REDIRECT nothing reaches it but connections made straight to it, which have no chain.
     */
    String withTransparent(String yaml) {
        String block = """
                  app-a:
                    transparent:
                      listen: 127.0.0.1:%d
                      kafka: [remote]
                """.formatted(transparentA);
        if (!yaml.contains("  app-a:\n") || !yaml.contains("kafkaClusters:\n")) {
            throw new IllegalArgumentException("no sidecar app-a or no kafkaClusters in the mesh");
        }
        // interception never redirects loopback, so the intercepted cluster is elsewhere (TEST-NET-1, never dialled)
        return yaml.replace("  app-a:\n", block).replace("kafkaClusters:\n", "kafkaClusters:\n  remote:\n    brokers:\n      1: "
                + TRANSPARENT_BROKER + "\n");
    }

    static final String TRANSPARENT_BROKER = "192.0.2.10:9092";

    /** Replaced atomically, as an editor or a ConfigMap update would. */
    void writeMesh(String yaml) throws IOException {
        Path tmp = dir.resolve("mesh.yaml.tmp");
        Files.writeString(tmp, yaml);
        Files.move(tmp, mesh, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /**
     * The mesh file's HTTP rules, which both filter-services read with policyFrom: POST /orders gets its card number
     * encrypted and its CVV redacted.
     */
    static final String HTTP_RULES = """
            http:
              rules:
                - name: orders
                  match: {methods: [POST], path: /orders, contentType: application/json}
                  binding: orders
                  request:
                    fields:
                      - encrypt: /card/number
                      - redact: /card/cvv
                  response:
                    fields:
                      - decrypt: /card/number
            """;

    /** Everything a filter-service applies to traffic comes from the mesh file. */
    private void writeFilterConfig(String name, int listen, int brokerListener) throws IOException {
        Files.writeString(dir.resolve(name), """
                listen: 127.0.0.1:%d
                keyset: keyset.json
                brokers:
                  1: 127.0.0.1:%d
                policyFrom: mesh.yaml
                """.formatted(listen, brokerListener));
    }

    void startFilterA() throws IOException {
        filterAProcess = spawn("filter-a", List.of("io.meshcrypt.filter.Main", "serve", "--config", dir.resolve("filter-a.yaml").toString()), true);
    }

    long filterAPid() {
        return filterAProcess.pid();
    }

        void stopFilterA() throws InterruptedException {
        filterAProcess.destroy();
        if (!filterAProcess.waitFor(10, TimeUnit.SECONDS)) {
            filterAProcess.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
    }

    // ---- processes

    void startXds() throws Exception {
        xds = spawn("xds-server", List.of("io.meshcrypt.xds.Main", "serve", "--mesh", mesh.toString(),
                "--xds", "127.0.0.1:" + xdsPort, "--status", "127.0.0.1:" + statusPort), true);
        awaitPort(statusPort);
    }

    /** SIGKILL: no goodbye to the Envoys. */
    void killXds() throws InterruptedException {
        xds.destroyForcibly();
        if (!xds.waitFor(10, TimeUnit.SECONDS)) {
            throw new IllegalStateException("xDS server survived SIGKILL");
        }
    }

    private Process startEnvoy(String nodeId, int adminPort) throws Exception {
        String template = Files.readString(root.resolve("envoy/xds-bootstrap.yaml.template"));
        String bootstrap = template.replace("@@NODE_ID@@", nodeId)
                .replace("@@ENVOY_ADMIN_PORT@@", Integer.toString(adminPort))
                .replace("@@XDS_HOST@@", "127.0.0.1")
                .replace("@@XDS_PORT@@", Integer.toString(xdsPort))
                .replace("@@XDS_API_TYPE@@", apiType);
        if (bootstrap.lines().filter(l -> !l.strip().startsWith("#")).anyMatch(l -> l.contains("@@"))) {
            throw new IllegalStateException("unreplaced placeholder in envoy/xds-bootstrap.yaml.template");
        }
        Path file = dir.resolve("envoy-" + nodeId + ".yaml");
        Files.writeString(file, bootstrap);
        Process p = EnvoyProcess.start(file, adminPort, dir.resolve("envoy-" + nodeId + ".log"), TIMEOUT, "--log-level", "info",
                "--base-id-path", dir.resolve("envoy-" + nodeId + ".base-id").toString()).process();
        // stopped with the other processes of the mesh, in close()
        synchronized (processes) {
            processes.add(p);
        }
        return p;
    }

    private Process spawn(String name, List<String> command, boolean java) throws IOException {
        List<String> full = new ArrayList<>();
        if (java) {
            full.add(ProcessHandle.current().info().command().orElseThrow());
            // the test classpath carries this module's quiet test logging config; the services log as in production
            full.add("-Dorg.slf4j.simpleLogger.defaultLogLevel=info");
            full.add("-cp");
            full.add(System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")));
        }
        full.addAll(command);
        Path log = dir.resolve(name + ".log");
        Process p = new ProcessBuilder(full).directory(dir.toFile()).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
        synchronized (processes) {
            processes.add(p);
        }
        return p;
    }

    String log(String name) {
        try {
            return Files.readString(dir.resolve(name + ".log"), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "";
        }
    }

    @Override
    public void close() {
        List<Process> all;
        synchronized (processes) {
            all = new ArrayList<>(processes);
            processes.clear();
        }
        all.forEach(Process::destroy);
        for (Process p : all) {
            try {
                if (!p.waitFor(10, TimeUnit.SECONDS)) {
                    p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                p.destroyForcibly();
            }
        }
    }

    // ---- shared broker

    private static synchronized void startSharedBroker() throws Exception {
        if (admin != null) {
            return;
        }
        root = Path.of(System.getProperty("meshcrypt.root", "../..")).toAbsolutePath().normalize();
        launcherHome = root.resolve("envoy/xds-server/target/mesh");
        Files.createDirectories(launcherHome);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> launcher("down"), "xds-broker-down"));
        launcher("down");
        // before the broker starts: without a named Envoy the harness fails at once, saying how to name one
        EnvoyProcess.binary();
        launcher("start", "broker");
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, BROKER);
        admin = Admin.create(props);
    }

    private static void launcher(String... args) {
        List<String> command = new ArrayList<>(List.of(root.resolve("meshcrypt").toString()));
        command.addAll(Arrays.asList(args));
        Path log = launcherHome.resolve("launcher.log");
        ProcessBuilder pb = new ProcessBuilder(command).directory(root.toFile()).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        pb.environment().put("MESHCRYPT_HOME", launcherHome.toString());
        pb.environment().put("MESHCRYPT_PORT_BASE", Integer.toString(LAUNCHER_PORT_BASE));
        try {
            Process p = pb.start();
            if (!p.waitFor(5, TimeUnit.MINUTES) || p.exitValue() != 0) {
                p.destroyForcibly();
                throw new IllegalStateException("./meshcrypt " + String.join(" ", args) + " failed; see " + log);
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot run ./meshcrypt", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted running ./meshcrypt", e);
        }
    }

    // ---- observation

    JsonNode status() throws IOException {
        return JSON.readTree(get("http://127.0.0.1:" + statusPort + "/status"));
    }

    JsonNode envoyStatus(String nodeId) throws IOException {
        for (JsonNode n : status().get("envoys")) {
            if (n.get("node").asText().equals(nodeId)) {
                return n;
            }
        }
        return null;
    }

    /** LDS and CDS version Envoy itself reports (its admin stats, the same as /config_dump's version_info). */
    static String envoyVersion(int adminPort, String type) {
        String stats = get("http://127.0.0.1:" + adminPort + "/stats?filter=" + type + ".version_text");
        for (String line : stats.lines().toList()) {
            int colon = line.indexOf(": ");
            if (colon > 0) {
                return line.substring(colon + 2).replace("\"", "").strip();
            }
        }
        return "";
    }

    static String configDump(int adminPort) {
        return get("http://127.0.0.1:" + adminPort + "/config_dump");
    }

    static String listeners(int adminPort) {
        return get("http://127.0.0.1:" + adminPort + "/listeners");
    }

    /**
     * Both Envoys run {@code version} and the xDS server saw their ACKs. CDS carries every version (the mesh version
     * beacon cluster); with delta xDS, LDS only moves when a sidecar's listeners change.
     */
    void awaitApplied(String version) {
        await(() -> {
            for (int admin : List.of(adminA, adminB)) {
                if (!version.equals(envoyVersion(admin, "cds"))) {
                    return false;
                }
            }
            JsonNode a = envoyStatus("app-a");
            JsonNode b = envoyStatus("app-b");
            return acked(a, version) && acked(b, version);
        }, () -> "both Envoys on version " + version + "; status " + quietly(this::statusText));
    }

    private static boolean acked(JsonNode node, String version) {
        return node != null && node.get("connected").asBoolean() && version.equals(node.at("/acked/Cluster").asText());
    }

    /** Waits until the xDS server serves a version other than {@code previous}, and returns it. */
    String awaitNewVersion(String previous) {
        String[] seen = new String[1];
        await(() -> {
            seen[0] = status().get("version").asText();
            return !seen[0].equals(previous);
        }, () -> "a mesh version after " + previous);
        return seen[0];
    }

    private String statusText() throws IOException {
        return status().toString();
    }

    /** Waits until the filter-service logged that {@code policy} is in force. */
    void awaitFilterPolicy(String filterLog, String policy) {
        await(() -> log(filterLog).contains("encryption policy reloaded: " + policy), () -> filterLog + " reloading " + policy);
    }

    static String get(String url) {
        try {
            HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(5)).build(),
                    HttpResponse.BodyHandlers.ofString());
            return r.statusCode() == 200 ? r.body() : "";
        } catch (IOException e) {
            return "";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    static void awaitPort(int port) {
        await(() -> {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", port), 500);
                return true;
            } catch (IOException e) {
                return false;
            }
        }, () -> "127.0.0.1:" + port + " accepting connections");
    }

    @FunctionalInterface
    interface Check {
        boolean test() throws Exception;
    }

    @FunctionalInterface
    interface Text {
        String get() throws Exception;
    }

    static String quietly(Text text) {
        try {
            return text.get();
        } catch (Exception e) {
            return "(" + e + ")";
        }
    }

    static void await(Check condition, Supplier<String> what) {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (true) {
            try {
                if (condition.test()) {
                    return;
                }
            } catch (Exception e) {
                // not there yet
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out after " + TIMEOUT + " waiting for " + what.get());
            }
            try {
                Thread.sleep(25);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted waiting for " + what.get(), e);
            }
        }
    }

    static void await(BooleanSupplier condition, String what) {
        await(condition::getAsBoolean, () -> what);
    }

    // ---- Kafka

    static String createTopic(String prefix) throws Exception {
        String name = prefix + "-" + Long.toHexString(System.nanoTime());
        admin.createTopics(List.of(new NewTopic(name, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
        return name;
    }

    static KafkaProducer<byte[], byte[]> producer(int bootstrapPort) {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + bootstrapPort);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.LINGER_MS_CONFIG, 0);
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30_000);
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 15_000);
        props.put(ProducerConfig.RETRY_BACKOFF_MS_CONFIG, 50);
        return new KafkaProducer<>(props);
    }

    /** All records of partition 0, read from {@code bootstrap} (the broker itself shows what is at rest). */
    static List<ConsumerRecord<byte[], byte[]>> readAll(String bootstrap, String topic) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        props.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 100);
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            TopicPartition tp = new TopicPartition(topic, 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            long end = consumer.endOffsets(List.of(tp), Duration.ofSeconds(30)).get(tp);
            List<ConsumerRecord<byte[], byte[]>> records = new ArrayList<>();
            long deadline = System.nanoTime() + TIMEOUT.toNanos();
            while (consumer.position(tp, Duration.ofSeconds(30)) < end) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("reading " + topic + " from " + bootstrap + " stalled");
                }
                consumer.poll(Duration.ofMillis(200)).forEach(records::add);
            }
            return records;
        }
    }

    static boolean isEnvelope(byte[] value) {
        return value != null && value.length > ENVELOPE_HEAD.length
                && Arrays.equals(value, 0, ENVELOPE_HEAD.length, ENVELOPE_HEAD, 0, ENVELOPE_HEAD.length);
    }

    private static void deleteRecursively(Path path) throws IOException {
        if (!Files.exists(path)) {
            return;
        }
        try (var walk = Files.walk(path)) {
            for (Path p : walk.sorted((a, b) -> b.getNameCount() - a.getNameCount()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
