package io.meshcrypt.demo;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.meshcrypt.launcher.PortPlan;
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
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.stream.Stream;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * One {@code ./meshcrypt demo --detach} in its own state dir and port base, and what a test reads from it:
 * the endpoints it wrote, the apps' logs (one line per record or body), the broker's raw values, and
 * whether anything is left after {@code ./meshcrypt down}.
 */
final class DemoRun {

    static final byte[] ENVELOPE_MAGIC = {0x00, 'M', 'C', 'E'};
    private static final Duration LAUNCHER_TIMEOUT = Duration.ofMinutes(10);

    final Path root;
    final Path home;
    /** The launcher's ports for this run's port base. */
    final PortPlan ports;
    private final Path launcherLog;

    DemoRun(String name, PortPlan ports) {
        this.root = Path.of(System.getProperty("meshcrypt.root", "..")).toAbsolutePath().normalize();
        this.home = root.resolve("tests/target/" + name);
        this.ports = ports;
        this.launcherLog = root.resolve("tests/target/" + name + "-launcher.log");
    }


    /** Runs ./meshcrypt with this run's state dir and port base; returns its exit code. */
    int launcher(String... args) {
        List<String> command = new ArrayList<>(List.of("./meshcrypt"));
        command.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(command)
                .directory(root.toFile())
                .redirectErrorStream(true)
                // a file, not a pipe: the apps the demo starts inherit it and must never block on it
                .redirectOutput(ProcessBuilder.Redirect.appendTo(launcherLog.toFile()));
        pb.environment().put("MESHCRYPT_HOME", home.toString());
        pb.environment().put("MESHCRYPT_PORT_BASE", Integer.toString(ports.base()));
        pb.environment().put("MESHCRYPT_TIMEOUT", "180");
        pb.environment().put("DEMO_INTERVAL_MS", "300");
        try {
            Files.createDirectories(launcherLog.getParent());
            Files.writeString(launcherLog, "\n=== ./meshcrypt " + String.join(" ", args) + "\n",
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND);
            Process p = pb.start();
            if (!p.waitFor(LAUNCHER_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
                throw new IllegalStateException("./meshcrypt " + String.join(" ", args) + " did not finish; see " + launcherLog);
            }
            return p.exitValue();
        } catch (IOException e) {
            throw new IllegalStateException("cannot run ./meshcrypt", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted running ./meshcrypt", e);
        }
    }

    String launcherLog() {
        try {
            return Files.readString(launcherLog);
        } catch (IOException e) {
            return "(no launcher log: " + e + ")";
        }
    }

    Map<String, String> endpoints() throws IOException {
        Map<String, String> env = new LinkedHashMap<>();
        for (String line : Files.readAllLines(home.resolve("endpoints.env"))) {
            int eq = line.indexOf('=');
            if (eq > 0) {
                // a value may be followed by a shell comment
                env.put(line.substring(0, eq), line.substring(eq + 1).replaceFirst("\\s+#.*$", ""));
            }
        }
        return env;
    }

    /** The lines of an app's log starting with {@code prefix} (e.g. "sent "), prefix removed. */
    List<String> lines(String component, String prefix) throws IOException {
        Path log = home.resolve("logs/" + component + ".log");
        if (!Files.exists(log)) {
            return List.of();
        }
        try (Stream<String> all = Files.lines(log, StandardCharsets.UTF_8)) {
            return all.filter(l -> l.startsWith(prefix)).map(l -> l.substring(prefix.length())).toList();
        }
    }

    /** Polls an app's log until {@code done} holds for its lines with {@code prefix}; returns them. */
    List<String> awaitLines(String component, String prefix, Predicate<List<String>> done, Duration timeout)
            throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        List<String> lines = lines(component, prefix);
        while (!done.test(lines)) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError(component + " did not log the expected '" + prefix + "' lines within "
                        + timeout + "; got " + lines);
            }
            Thread.sleep(200);
            lines = lines(component, prefix);
        }
        return lines;
    }

    /** Every record of the topic as the broker stores it, read directly (bypassing Envoy). */
    List<ConsumerRecord<byte[], byte[]>> brokerRecords(String brokerDirect, String topic) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, brokerDirect);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            TopicPartition tp = new TopicPartition(topic, 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            long end = consumer.endOffsets(List.of(tp), Duration.ofSeconds(30)).get(tp);
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (consumer.position(tp) < end && System.nanoTime() < deadline) {
                consumer.poll(Duration.ofMillis(500)).forEach(out::add);
            }
        }
        return out;
    }

    static boolean startsWithMagic(byte[] value) {
        if (value == null || value.length < ENVELOPE_MAGIC.length) {
            return false;
        }
        for (int i = 0; i < ENVELOPE_MAGIC.length; i++) {
            if (value[i] != ENVELOPE_MAGIC[i]) {
                return false;
            }
        }
        return true;
    }

    /** Processes started for this state dir: their command line or environment names it. */
    List<String> processesOfThisRun() throws IOException {
        List<String> found = new ArrayList<>();
        String marker = home + "/";
        try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
            for (Path proc : procs.filter(p -> p.getFileName().toString().matches("\\d+")).toList()) {
                String cmdline = read(proc.resolve("cmdline"));
                String environ = read(proc.resolve("environ"));
                if (cmdline.contains(marker) || environ.contains("MESHCRYPT_OWNER=" + marker)) {
                    found.add(proc.getFileName() + ": " + cmdline.replace('\0', ' ').strip());
                }
            }
        }
        return found;
    }

    private static String read(Path file) {
        try {
            return new String(Files.readAllBytes(file), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return ""; // the process ended meanwhile, or is not ours to read
        }
    }

    /** The ports of this port base that still accept connections on 127.0.0.1. */
    List<Integer> openPorts() {
        List<Integer> open = new ArrayList<>();
        // the transparent demo's link-local listeners are gone with its namespaces
        for (int port : ports.loopbackPorts()) {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", port), 500);
                open.add(port);
            } catch (IOException refused) {
                // closed: what we want
            }
        }
        return open;
    }

    /** Output of a command, for {@code ip netns list} and {@code iptables -S}. */
    /** A GET on 127.0.0.1 (or the namespace's own loopback via {@code ip netns exec}, when {@code netns} is set). */
    static String get(String netns, String url) throws IOException, InterruptedException {
        if (netns != null) {
            return run("ip", "netns", "exec", netns, "curl", "-fsS", "--max-time", "5", url);
        }
        try (HttpClient http = HttpClient.newHttpClient()) {
            return http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(5)).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
        }
    }

    /**
     * Asserts that the xDS server at {@code statusUrl} configured every one of {@code nodes}: each is in the mesh
     * file, connected, has acknowledged the current version's listeners and clusters, and rejected nothing.
     */
    static void assertConfiguredByXds(String statusUrl, List<String> nodes) throws IOException, InterruptedException {
        JsonNode status = new ObjectMapper().readTree(get(null, statusUrl));
        String version = status.get("version").asText();
        List<org.junit.jupiter.api.function.Executable> checks = new ArrayList<>();
        for (String node : nodes) {
            JsonNode envoy = null;
            for (JsonNode e : status.get("envoys")) {
                if (e.get("node").asText().equals(node)) {
                    envoy = e;
                }
            }
            JsonNode found = envoy;
            checks.add(() -> org.junit.jupiter.api.Assertions.assertNotNull(found, "node " + node + " in " + status));
            if (found != null) {
                checks.add(() -> org.junit.jupiter.api.Assertions.assertTrue(found.get("connected").asBoolean()
                        && found.get("inMesh").asBoolean(), node + " connected and in the mesh: " + found));
                checks.add(() -> org.junit.jupiter.api.Assertions.assertEquals(version, found.at("/acked/Listener").asText(),
                        node + " acked the listeners of " + version + ": " + found));
                checks.add(() -> org.junit.jupiter.api.Assertions.assertEquals(version, found.at("/acked/Cluster").asText(),
                        node + " acked the clusters of " + version + ": " + found));
                checks.add(() -> org.junit.jupiter.api.Assertions.assertEquals(0, found.get("nacks").asInt(), node + ": " + found));
            }
        }
        org.junit.jupiter.api.Assertions.assertAll("xDS status " + statusUrl, checks);
    }

    /** The names of the listeners Envoy got over xDS (its bootstrap has none). */
    static List<String> dynamicListeners(String netns, String adminAddress) throws IOException, InterruptedException {
        JsonNode dump = new ObjectMapper().readTree(get(netns, "http://" + adminAddress + "/config_dump?resource=dynamic_listeners"));
        List<String> names = new ArrayList<>();
        dump.path("configs").forEach(l -> names.add(l.path("name").asText()));
        return names;
    }

    static String run(String... command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
            p.destroyForcibly();
        }
        return out;
    }

    static boolean onPath(String tool) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (Files.isExecutable(Path.of(dir, tool))) {
                return true;
            }
        }
        return Files.isExecutable(Path.of("/usr/sbin", tool)) || Files.isExecutable(Path.of("/sbin", tool));
    }
}
