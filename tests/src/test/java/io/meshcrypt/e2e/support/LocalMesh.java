package io.meshcrypt.e2e.support;

import io.meshcrypt.launcher.Main;
import io.meshcrypt.launcher.MeshFile;
import io.meshcrypt.launcher.PortPlan;
import io.meshcrypt.meshconfig.http.HeaderChanges;
import io.meshcrypt.meshconfig.http.HttpRule;
import io.meshcrypt.meshconfig.http.HttpRules;
import io.meshcrypt.meshconfig.http.RouteMatch;
import io.meshcrypt.meshconfig.http.RuleSide;
import io.meshcrypt.meshconfig.mesh.Mesh;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.Forgotten;
import io.meshcrypt.meshconfig.policy.Identities;
import io.meshcrypt.meshconfig.policy.SubjectSource;
import io.meshcrypt.meshconfig.policy.TopicRule;
import io.meshcrypt.meshconfig.transform.FieldOp;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The broker, filter-service and Envoy, started once per JVM through {@code ./meshcrypt up} and shared by
 * every test class (topics are unique per test, so tests do not see each other's records).
 *
 * <p>Two ways in: {@link #kafkaBootstrap()} is Envoy (what applications use, values encrypted and
 * decrypted on the way), {@link #brokerDirect()} is the broker itself (what an attacker with disk or
 * broker access sees).
 */
public final class LocalMesh {

    /** 29000 unless MESHCRYPT_E2E_PORT_BASE says otherwise (two checkouts testing on one machine). */
    public static final int PORT_BASE = Integer.parseInt(System.getenv().getOrDefault("MESHCRYPT_E2E_PORT_BASE", "29000"));
    /** The launcher's ports for {@link #PORT_BASE}. */
    public static final PortPlan PORTS = PortPlan.of(PORT_BASE);

    /**
     * The ports of a mesh {@code offset} below the e2e harness's port base ({@link #PORT_BASE}:
     * MESHCRYPT_E2E_PORT_BASE, default 29000), so that two test runs on one machine keep all their meshes apart by
     * setting that one variable. Keep every mesh below 32768: the kernel hands out ports from there to outgoing
     * connections.
     *
     * @throws IllegalStateException naming the variable when it leaves no room for this mesh's ports
     */
    public static PortPlan portsBelow(int offset) {
        try {
            return PortPlan.of(PORT_BASE - offset);
        } catch (IllegalArgumentException e) {
            throw new IllegalStateException("MESHCRYPT_E2E_PORT_BASE=" + PORT_BASE + " leaves no room for a mesh "
                    + offset + " below it: its port base " + e.getMessage(), e);
        }
    }

    /** Whether {@code ./meshcrypt up} runs the mesh with mutual TLS (MESHCRYPT_TLS, as the launcher reads it). */
    public static final boolean TLS = Main.tls(System.getenv());

    /**
     * MESHCRYPT_BRIDGE=1: the shared mesh streams Kafka through the bridge dynamic module ({@code up --bridge}) instead
     * of Envoy's network ext_proc, so the whole suite can run through it (with or without MESHCRYPT_TLS=off).
     */
    public static final boolean BRIDGE = "1".equals(System.getenv("MESHCRYPT_BRIDGE"));

    /** The local CA's folder of a mesh whose state dir is {@code home}. */
    private static Path pki(Path home) {
        return home.resolve("pki");
    }

    public static final Duration CLIENT_TIMEOUT = Duration.ofSeconds(30);
    private static final Duration UP_TIMEOUT = Duration.ofMinutes(4);
    private static final Duration COMPONENT_TIMEOUT = Duration.ofMinutes(2);
    private static final AtomicInteger CLIENT_IDS = new AtomicInteger();

    private static LocalMesh shared;
    private static RuntimeException startFailure;

    private final Path root;
    private final Path home;
    private final Path launcherLog;
    private final Map<String, String> endpoints;
    private final Admin admin;

    private LocalMesh(Path root, Path home, Path launcherLog, Map<String, String> endpoints) {
        this.root = root;
        this.home = home;
        this.launcherLog = launcherLog;
        this.endpoints = endpoints;
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, brokerDirect());
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) CLIENT_TIMEOUT.toMillis());
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        this.admin = Admin.create(props);
    }

    /** The mesh of this JVM, started on first use; a failed start fails every later caller the same way. */
    public static synchronized LocalMesh shared() {
        if (startFailure != null) {
            throw startFailure;
        }
        if (shared == null) {
            try {
                shared = start();
            } catch (RuntimeException e) {
                startFailure = e;
                throw e;
            }
        }
        return shared;
    }

    /** Topics whose JSON values are encrypted field by field in the shared mesh; every other topic whole. */
    public static final String FIELD_TOPIC_PREFIX = "fields-";
    public static final List<String> ENCRYPTED_FIELDS = List.of("/card/number", "/ssn");
    /** Topics whose record keys are encrypted too, deterministically (keys: deterministic). */
    public static final String DETERMINISTIC_KEYS_TOPIC_PREFIX = "detkeys-";

    /**
     * The mesh {@code ./meshcrypt up} runs, with the launcher's policy (every topic) plus one field-level rule and one
     * deterministic-key rule: written without the launcher's "generated" marker, so `up` keeps it. The xDS server owns
     * it and delivers the policy to the filter-service, so /status and the filter-service agree on what is in force.
     * A filter.yaml left by an older harness is removed: the launcher writes its own, which takes the policy from xDS.
     */
    private static void writeMeshFile(Path home, boolean tls) {
        try {
            Files.createDirectories(home);
            Files.deleteIfExists(home.resolve("filter.yaml"));
        } catch (IOException e) {
            throw new IllegalStateException("Cannot prepare " + home, e);
        }
        writeMeshFile(home, tls, policy(List.of()));
    }

    /** Topics whose listed record headers are encrypted too ({@code headers:}); values whole. */
    public static final String HEADERS_TOPIC_PREFIX = "headers-";
    public static final List<String> ENCRYPTED_HEADERS = List.of("user-id", "x-pii-*");

    /** Topics whose values are encrypted under per-subject keys, the subject being the record key ({@code subject:}). */
    public static final String SUBJECTS_TOPIC_PREFIX = "subjects-";

    /**
     * Subject keys of one scope on both paths: topics whose {@code /card/number} is encrypted under the key of the
     * subject at {@code /customer/id} (forgotten: null), and the HTTP rule {@link #SUBJECT_CARDS_PATH} doing the same
     * to request bodies (decrypting responses; forgotten: the placeholder), both in scope {@link #SUBJECT_SCOPE}.
     */
    public static final String SUBJECT_FIELDS_TOPIC_PREFIX = "subject-fields-";
    public static final String SUBJECT_CARDS_PATH = "/subject-cards";
    public static final String SUBJECT_SCOPE = "customers";
    public static final String SUBJECT_FORGOTTEN_PLACEHOLDER = "[forgotten]";

    /** The shared sidecar's workload identity (its mesh certificate's SPIFFE id). */
    public static final String SHARED_SIDECAR_IDENTITY = "spiffe://meshcrypt.local/sidecar/" + MeshFile.SHARED_NODE;
    /** Topics only the shared sidecar may produce to and read plaintext of; others get ciphertext. */
    public static final String IDENTITY_TOPIC_PREFIX = "identity-";
    /** As {@link #IDENTITY_TOPIC_PREFIX}, but others get TOPIC_AUTHORIZATION_FAILED. */
    public static final String IDENTITY_DENY_TOPIC_PREFIX = "identity-deny-";
    /** Readers: the shared sidecar and whoever a test adds by {@link #readersOfReloadTopics}. */
    public static final String IDENTITY_RELOAD_TOPIC_PREFIX = "identity-reload-";

    /** The shared mesh's policy, with {@code moreReloadReaders} among the readers of the reload topics. */
    private static EncryptionPolicy policy(List<String> moreReloadReaders) {
        List<JsonPointer> fields = ENCRYPTED_FIELDS.stream().map(JsonPointer::parse).toList();
        Identities shared = Identities.of(List.of(SHARED_SIDECAR_IDENTITY));
        List<String> reloadReaders = new ArrayList<>(List.of(SHARED_SIDECAR_IDENTITY));
        reloadReaders.addAll(moreReloadReaders);
        return EncryptionPolicy.ofRules(List.of(
                new TopicRule(FIELD_TOPIC_PREFIX + "*", fields),
                new TopicRule(DETERMINISTIC_KEYS_TOPIC_PREFIX + "*", List.of(), true),
                new TopicRule(IDENTITY_DENY_TOPIC_PREFIX + "*", List.of(), false, shared, shared, TopicRule.Others.DENY),
                new TopicRule(IDENTITY_RELOAD_TOPIC_PREFIX + "*", List.of(), false, Identities.of(reloadReaders), null,
                        TopicRule.Others.CIPHERTEXT),
                new TopicRule(IDENTITY_TOPIC_PREFIX + "*", List.of(), false, shared, shared, TopicRule.Others.CIPHERTEXT),
                new TopicRule(HEADERS_TOPIC_PREFIX + "*", List.of(), false, null, null, TopicRule.Others.CIPHERTEXT,
                        Map.of(), ENCRYPTED_HEADERS),
                new TopicRule(SUBJECTS_TOPIC_PREFIX + "*", List.of(), false, null, null, TopicRule.Others.CIPHERTEXT,
                        Map.of(), List.of(), SubjectSource.key(), Forgotten.NULL),
                new TopicRule(SUBJECT_FIELDS_TOPIC_PREFIX + "*", List.of(JsonPointer.parse("/card/number")), false, null,
                        null, TopicRule.Others.CIPHERTEXT, Map.of(), List.of(), customerInValue(), Forgotten.NULL),
                TopicRule.wholeValue("*")), EncryptionPolicy.Unmatched.PASSTHROUGH);
    }

    private static SubjectSource customerInValue() {
        return SubjectSource.value(JsonPointer.parse("/customer/id")).withScope(SUBJECT_SCOPE);
    }

    /** The shared mesh's HTTP rules: {@link #SUBJECT_CARDS_PATH} (for sidecars a test starts itself). */
    private static HttpRules httpRules() {
        JsonPointer card = JsonPointer.parse("/card/number");
        RouteMatch match = new RouteMatch(java.util.Set.of(), SUBJECT_CARDS_PATH, null, List.of(), null);
        return new HttpRules(List.of(new HttpRule("subject-cards", match, "subject-cards",
                new RuleSide(List.of(new FieldOp.Encrypt(card, false)), List.of(), HeaderChanges.NONE, RuleSide.OnInvalid.REJECT),
                new RuleSide(List.of(new FieldOp.Decrypt(card, false)), List.of(), HeaderChanges.NONE, RuleSide.OnInvalid.REJECT),
                null, customerInValue(), new Forgotten(SUBJECT_FORGOTTEN_PLACEHOLDER))));
    }

    /**
     * Rewrites the shared mesh file with {@code identities} among the readers of the {@link
     * #IDENTITY_RELOAD_TOPIC_PREFIX} topics (none: back to the start); the xDS server delivers it to the running
     * filter-service, no restart.
     */
    public void readersOfReloadTopics(List<String> identities) {
        writeMeshFile(home, TLS, policy(identities));
    }

    private static void writeMeshFile(Path home, boolean tls, EncryptionPolicy policy) {
        Mesh up = MeshFile.up(PORTS);
        Mesh mesh = new Mesh(up.kafkaClusters(), up.sidecars(), policy, httpRules());
        try {
            // with TLS, the launcher's tls: section, so that the sidecars show their certificates to the filter-service;
            // renamed into place, so that the xDS server, which watches it, never reads half a file
            Path written = home.resolve("mesh.yaml.tmp");
            Files.writeString(written, "# written by the e2e harness (LocalMesh.java)\n"
                    + MeshFile.yaml(mesh, tls ? Optional.of(pki(home)) : Optional.empty()));
            Files.move(written, home.resolve("mesh.yaml"), StandardCopyOption.REPLACE_EXISTING,
                    StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new IllegalStateException("Cannot write " + home.resolve("mesh.yaml"), e);
        }
    }

    private static LocalMesh start() {
        Path root = locateRoot();
        Path home = root.resolve("tests/target/mesh");
        Path launcherLog = root.resolve("tests/target/e2e-launcher.log");
        try {
            Files.createDirectories(launcherLog.getParent());
        } catch (IOException e) {
            throw new IllegalStateException("Cannot create " + launcherLog.getParent(), e);
        }
        // A previous run killed before its shutdown hook may have left processes holding the ports.
        runLauncher(root, home, launcherLog, COMPONENT_TIMEOUT, "down");
        // registered before anything can fail, so a half-started or rejected mesh is still torn down
        AtomicReference<LocalMesh> started = new AtomicReference<>();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            if (started.get() != null) {
                started.get().admin.close(Duration.ofSeconds(5));
            }
            if (!Boolean.getBoolean("meshcrypt.e2e.keep")) {
                runLauncher(root, home, launcherLog, COMPONENT_TIMEOUT, "down");
            }
        }, "meshcrypt-down"));
        writeMeshFile(home, TLS);
        int rc = BRIDGE ? runLauncher(root, home, launcherLog, UP_TIMEOUT, "up", "--bridge")
                : runLauncher(root, home, launcherLog, UP_TIMEOUT, "up");
        if (rc != 0) {
            throw new IllegalStateException("./meshcrypt up exited with " + rc + "; see " + launcherLog
                    + " and " + home.resolve("logs") + "\n" + tail(launcherLog));
        }
        Map<String, String> endpoints = readEndpoints(home.resolve("endpoints.env"));
        for (String required : List.of("KAFKA_BOOTSTRAP", "BROKER_DIRECT")) {
            if (!endpoints.containsKey(required)) {
                throw new IllegalStateException(home.resolve("endpoints.env") + " lacks " + required + ": " + endpoints);
            }
        }
        if (endpoints.get("KAFKA_BOOTSTRAP").equals(endpoints.get("BROKER_DIRECT"))) {
            // every "through Envoy" assertion would silently test the bare broker
            throw new IllegalStateException("KAFKA_BOOTSTRAP and BROKER_DIRECT are the same address: " + endpoints);
        }
        LocalMesh mesh = new LocalMesh(root, home, launcherLog, endpoints);
        started.set(mesh);
        return mesh;
    }

    /** The checkout's root: the directory with {@code ./meshcrypt} (-Dmeshcrypt.root, or at or above the working dir). */
    public static Path projectRoot() {
        return locateRoot();
    }

    private static Path locateRoot() {
        String configured = System.getProperty("meshcrypt.root");
        Path start = Path.of(configured != null ? configured : System.getProperty("user.dir")).toAbsolutePath();
        for (Path p = start; p != null; p = p.getParent()) {
            if (Files.isExecutable(p.resolve("meshcrypt")) && Files.isDirectory(p.resolve("tests"))) {
                return p;
            }
        }
        throw new IllegalStateException("No ./meshcrypt launcher found at or above " + start
                + " (set -Dmeshcrypt.root)");
    }

    private static int runLauncher(Path root, Path home, Path log, Duration timeout, String... args) {
        return runLauncher(root, home, PORT_BASE, Map.of(), log, timeout, args);
    }

    /**
     * {@code ./meshcrypt args} for the mesh in {@code home} at {@code portBase}, with {@code env} added to this JVM's
     * environment, output appended to {@code log}; its exit code. For tests that run a mesh of their own.
     */
    public static int runLauncher(Path root, Path home, int portBase, Map<String, String> env, Path log, Duration timeout,
                                  String... args) {
        List<String> command = new ArrayList<>();
        command.add(root.resolve("meshcrypt").toString());
        command.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(command)
                .directory(root.toFile())
                .redirectErrorStream(true)
                // a file, not a pipe: daemons started by the launcher inherit it and must never block on it
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        pb.environment().put("MESHCRYPT_HOME", home.toString());
        pb.environment().put("MESHCRYPT_PORT_BASE", Integer.toString(portBase));
        pb.environment().putAll(env);
        try {
            Files.writeString(log, "\n=== ./meshcrypt " + String.join(" ", args) + "\n",
                    java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
            Process p = pb.start();
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
                throw new IllegalStateException("./meshcrypt " + String.join(" ", args) + " did not finish within "
                        + timeout + "; see " + log);
            }
            return p.exitValue();
        } catch (IOException e) {
            throw new IllegalStateException("Cannot run ./meshcrypt " + String.join(" ", args), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("Interrupted running ./meshcrypt " + String.join(" ", args), e);
        }
    }

    static Map<String, String> readEndpoints(Path file) {
        Map<String, String> out = new LinkedHashMap<>();
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException("Cannot read " + file, e);
        }
        for (String raw : lines) {
            String line = raw.strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            if (line.startsWith("export ")) {
                line = line.substring("export ".length()).strip();
            }
            int eq = line.indexOf('=');
            if (eq <= 0) {
                continue;
            }
            String value = line.substring(eq + 1).strip();
            if (value.length() >= 2 && (value.startsWith("\"") && value.endsWith("\"")
                    || value.startsWith("'") && value.endsWith("'"))) {
                value = value.substring(1, value.length() - 1);
            }
            out.put(line.substring(0, eq).strip(), value);
        }
        return out;
    }

    private static String tail(Path log) {
        try {
            List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
        } catch (IOException e) {
            return "(cannot read " + log + ": " + e + ")";
        }
    }

    // ---- endpoints and components

    /** Envoy's Kafka listener: the only address applications should use. */
    public String kafkaBootstrap() {
        return endpoints.get("KAFKA_BOOTSTRAP");
    }

    /** The broker itself, bypassing Envoy: shows what is stored. */
    public String brokerDirect() {
        return endpoints.get("BROKER_DIRECT");
    }

    public Map<String, String> endpoints() {
        return Map.copyOf(endpoints);
    }

    public Path root() {
        return root;
    }

    /** The local CA's folder: ca.pem and each component's {@code <name>/cert.pem} and {@code key.pem}. */
    public Path pki() {
        return pki(home);
    }

    /** The filter-service's gRPC port on 127.0.0.1. */
    public int filterGrpcPort() {
        return PORTS.filterGrpc();
    }

    public Path logs() {
        return home.resolve("logs");
    }

    /** The pid recorded by the launcher for {@code component} (broker, filter-service, envoy). */
    public long pid(String component) {
        Path file = home.resolve("pids").resolve(component + ".pid");
        try {
            return Long.parseLong(Files.readString(file, StandardCharsets.UTF_8).strip());
        } catch (IOException | NumberFormatException e) {
            throw new IllegalStateException("No usable pid in " + file, e);
        }
    }

    /** The state dir ({@code MESHCRYPT_HOME}): filter.yaml, keyset.json, mesh.yaml, ... */
    public Path home() {
        return home;
    }

    /** {@code ./meshcrypt stop <component>}; fails the test if the launcher reports an error. */
    public void stop(String component) {
        int rc = runLauncher(root, home, launcherLog, COMPONENT_TIMEOUT, "stop", component);
        if (rc != 0) {
            throw new IllegalStateException("./meshcrypt stop " + component + " exited with " + rc + "; see "
                    + launcherLog + "\n" + tail(launcherLog));
        }
    }

    /** {@code ./meshcrypt start <component>}; fails the test if the launcher reports an error. */
    public void start(String component) {
        int rc = runLauncher(root, home, launcherLog, COMPONENT_TIMEOUT, "start", component);
        if (rc != 0) {
            throw new IllegalStateException("./meshcrypt start " + component + " exited with " + rc + "; see "
                    + launcherLog + " and " + logs() + "\n" + tail(launcherLog));
        }
    }

    /** {@code ./meshcrypt forget --topic-pattern P --subject S...}; fails the test if the launcher reports an error. */
    public void forget(String topicPattern, List<String> subjects) {
        List<String> args = new ArrayList<>(List.of("forget", "--topic-pattern", topicPattern));
        subjects.forEach(s -> args.addAll(List.of("--subject", s)));
        int rc = runLauncher(root, home, launcherLog, COMPONENT_TIMEOUT, args.toArray(String[]::new));
        if (rc != 0) {
            throw new IllegalStateException("./meshcrypt forget exited with " + rc + "; see " + launcherLog + "\n"
                    + tail(launcherLog));
        }
    }

    // ---- topics

    /** Creates a topic with a unique name (broker direct) and waits until the broker has it. */
    public String createTopic(String prefix, int partitions) {
        byte[] suffix = new byte[4];
        ThreadLocalRandom.current().nextBytes(suffix);
        String name = prefix + "-" + HexFormat.of().formatHex(suffix);
        try {
            admin.createTopics(List.of(new NewTopic(name, partitions, (short) 1)))
                    .all().get(CLIENT_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException | TimeoutException e) {
            throw new IllegalStateException("Cannot create topic " + name, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("Interrupted creating topic " + name, e);
        }
        return name;
    }

    /** The shared admin client, connected to the broker directly. */
    public Admin admin() {
        return admin;
    }

    /** A new admin client that goes through Envoy; the caller closes it. */
    public Admin adminThroughEnvoy() {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafkaBootstrap());
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "e2e-admin-envoy-" + CLIENT_IDS.incrementAndGet());
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) CLIENT_TIMEOUT.toMillis());
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        return Admin.create(props);
    }

    // ---- clients

    public KafkaProducer<byte[], byte[]> producerThroughEnvoy(Map<String, Object> overrides) {
        return new KafkaProducer<>(producerProps(kafkaBootstrap(), "envoy", overrides));
    }

    public KafkaProducer<byte[], byte[]> producerDirect(Map<String, Object> overrides) {
        return new KafkaProducer<>(producerProps(brokerDirect(), "direct", overrides));
    }

    public KafkaConsumer<byte[], byte[]> consumerThroughEnvoy(Map<String, Object> overrides) {
        return new KafkaConsumer<>(consumerProps(kafkaBootstrap(), "envoy", overrides));
    }

    public KafkaConsumer<byte[], byte[]> consumerDirect(Map<String, Object> overrides) {
        return new KafkaConsumer<>(consumerProps(brokerDirect(), "direct", overrides));
    }

    /** Every record stored in {@code topic}, raw as the broker keeps it (aborted transactions included). */
    public List<ConsumerRecord<byte[], byte[]>> readDirect(String topic) {
        try (KafkaConsumer<byte[], byte[]> consumer = consumerDirect(Map.of())) {
            return drain(consumer, topic);
        }
    }

    /** Every record of {@code topic} as an application sees it through Envoy. */
    public List<ConsumerRecord<byte[], byte[]>> readThroughEnvoy(String topic, Map<String, Object> overrides) {
        try (KafkaConsumer<byte[], byte[]> consumer = consumerThroughEnvoy(overrides)) {
            return drain(consumer, topic);
        }
    }

    /**
     * Reads all partitions of {@code topic} from the beginning up to the end offsets seen at the start
     * (the last stable offset under read_committed). Stopping on positions rather than on a record count
     * means a surplus record is returned, and so detected, instead of silently ignored.
     */
    public static List<ConsumerRecord<byte[], byte[]>> drain(Consumer<byte[], byte[]> consumer, String topic) {
        List<TopicPartition> partitions = new ArrayList<>();
        Await.until(CLIENT_TIMEOUT, () -> {
            List<PartitionInfo> infos = consumer.partitionsFor(topic, CLIENT_TIMEOUT);
            infos.forEach(info -> partitions.add(new TopicPartition(info.topic(), info.partition())));
            return !partitions.isEmpty();
        }, () -> "metadata of topic " + topic);
        consumer.assign(partitions);
        consumer.seekToBeginning(partitions);
        Map<TopicPartition, Long> end = consumer.endOffsets(partitions, CLIENT_TIMEOUT);
        List<ConsumerRecord<byte[], byte[]>> records = new ArrayList<>();
        Map<TopicPartition, Long> positions = new HashMap<>();
        long deadline = System.nanoTime() + CLIENT_TIMEOUT.toNanos();
        while (true) {
            for (TopicPartition tp : partitions) {
                positions.put(tp, consumer.position(tp, CLIENT_TIMEOUT));
            }
            if (partitions.stream().allMatch(tp -> positions.get(tp) >= end.get(tp))) {
                break;
            }
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("Reading " + topic + " stalled at " + positions + ", end offsets " + end
                        + " after " + records.size() + " records");
            }
            consumer.poll(Duration.ofMillis(200)).forEach(records::add);
        }
        records.sort(Comparator.<ConsumerRecord<byte[], byte[]>>comparingInt(ConsumerRecord::partition)
                .thenComparingLong(ConsumerRecord::offset));
        return records;
    }

    /** A byte[] producer of the e2e clients (acks=all, quick retries and reconnections) to {@code bootstrap}. */
    public static Properties producerProps(String bootstrap, String via, Map<String, Object> overrides) {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "e2e-producer-" + via + "-" + CLIENT_IDS.incrementAndGet());
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30_000);
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 15_000);
        props.put(ProducerConfig.RETRY_BACKOFF_MS_CONFIG, 50);
        props.put(ProducerConfig.RECONNECT_BACKOFF_MS_CONFIG, 50);
        props.put(ProducerConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, 500);
        props.putAll(overrides);
        return props;
    }

    /** A byte[] consumer of the e2e clients of {@code bootstrap}. */
    public static Properties consumerProps(String bootstrap, String via, Map<String, Object> overrides) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, "e2e-consumer-" + via + "-" + CLIENT_IDS.incrementAndGet());
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        // an empty partition makes the broker hold a Fetch this long; keep drains quick
        props.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 100);
        props.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        props.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) CLIENT_TIMEOUT.toMillis());
        props.put(ConsumerConfig.RETRY_BACKOFF_MS_CONFIG, 50);
        props.put(ConsumerConfig.RECONNECT_BACKOFF_MS_CONFIG, 50);
        props.put(ConsumerConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, 500);
        props.putAll(overrides);
        return props;
    }
}
