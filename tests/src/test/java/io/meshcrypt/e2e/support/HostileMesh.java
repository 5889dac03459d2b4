package io.meshcrypt.e2e.support;

import io.meshcrypt.testsupport.EnvoyProcess;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.Socket;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A filter-service and an Envoy of their own, started from the tree (the same jar and Envoy 1.40 binary the shared
 * {@link LocalMesh} uses), with two pairs of Envoy listeners through that one filter-service:
 * <ul>
 * <li>"real": bootstrap + node 1 listener in front of the shared mesh's real broker, for healthy traffic;</li>
 * <li>"fake": bootstrap + node 1 listener in front of a {@link FakeBroker}, for the hostile broker and to see
 * exactly which bytes a hostile client got past the filter.</li>
 * </ul>
 * Each listener pair sends its own broker listener map (x-meshcrypt-broker-listeners), so Metadata from either broker
 * is rewritten to that pair's node listener.
 *
 * <p>The filter-service runs with {@code -Xmx384m -XX:+ExitOnOutOfMemoryError} (what issue 11 asks of every launch
 * path): a bounded heap, and an OutOfMemoryError shows as a dead process instead of a stalled worker. Its filter.yaml
 * asks for {@code limits: {heldFrameTimeout: 3s}}; a filter-service that rejects that key (before the transport fix)
 * is started without it, and {@link #limitsAccepted()} says so.
 *
 * <p>Policy: topics {@code enc-*} and {@code secret-*} are encrypted (envelope v2; the local KEK provider unless the
 * caller gives another {@code keys:} section), every other topic passes through.
 *
 * <p>Envoy reaches the filter-service over the {@link Hop} the caller picks: its TCP {@code listen} address, or a Unix
 * domain socket ({@code unixSockets:} in filter.yaml, a {@code pipe} address in Envoy's cluster, as the xDS server
 * gives sidecars with {@code filterService: unix:<path>}).
 */
public final class HostileMesh implements AutoCloseable {

    public static final Duration HELD_FRAME_TIMEOUT = Duration.ofSeconds(3);
    /**
     * The filter config's limits section (issue 11's transport fix; its default held-frame deadline is 30 s, too long
     * for a test). One place to change if the key or its value syntax is spelt differently.
     */
    public static final String LIMITS = "limits:\n  heldFrameTimeout: " + HELD_FRAME_TIMEOUT.toSeconds() + "s\n";
    public static final String HEAP = "-Xmx384m";
    private static final Duration START_TIMEOUT = Duration.ofSeconds(90);

    /** How Envoy reaches the filter-service. */
    public enum Hop {
        /** The filter-service's {@code listen} address on 127.0.0.1, plaintext HTTP/2. */
        TCP,
        /** A socket of {@code unixSockets:} (no identity, mode 0600), which Envoy's cluster names as a {@code pipe}. */
        UNIX_SOCKET
    }

    private final LocalMesh mesh;
    private final FakeBroker fake;
    private final Path home;
    private final Path fsLog;
    private final Path envoyLog;
    private final int grpcPort;
    private final int realBootstrap;
    private final int realNode;
    private final int fakeBootstrap;
    private final int fakeNode;
    private final int envoyAdmin;
    private final String keys;
    private final Map<String, String> env;
    private final Hop hop;
    private final Path socket;
    private Process filterService;
    private EnvoyProcess envoy;
    private boolean limitsAccepted;

    /** Envelope v2 with the local KEK provider. */
    public static final String LOCAL_KEYS = "keys:\n  provider: local\n  kekCheckSeconds: 300\n";

    public HostileMesh(LocalMesh mesh) throws IOException {
        this(mesh, "mesh-hostile", LOCAL_KEYS, Map.of());
    }

    /**
     * @param name the state directory under tests/target
     * @param keys the filter config's {@code keys:} section
     * @param env extra environment of the filter-service (e.g. AWS credentials for a KMS stand-in)
     */
    public HostileMesh(LocalMesh mesh, String name, String keys, Map<String, String> env) throws IOException {
        this(mesh, name, keys, env, Hop.TCP);
    }

    /** As above, with Envoy reaching the filter-service over {@code hop}. */
    public HostileMesh(LocalMesh mesh, String name, String keys, Map<String, String> env, Hop hop) throws IOException {
        this.mesh = mesh;
        this.hop = hop;
        this.keys = keys;
        this.env = Map.copyOf(env);
        this.fake = new FakeBroker();
        this.home = mesh.root().resolve("tests/target").resolve(name);
        deleteTree(home);
        Files.createDirectories(home.resolve("logs"));
        this.fsLog = home.resolve("logs/filter-service.log");
        this.envoyLog = home.resolve("logs/envoy.log");
        // beside the logs, not deeper: the socket is bound in a folder next to it, and that path must fit sun_path
        this.socket = home.resolve("fs.sock");
        int[] ports = StaticSidecar.freePorts(6);
        grpcPort = ports[0];
        realBootstrap = ports[1];
        realNode = ports[2];
        fakeBootstrap = ports[3];
        fakeNode = ports[4];
        envoyAdmin = ports[5];
        Runtime.getRuntime().addShutdownHook(new Thread(this::stopProcesses, "hostile-mesh-down"));
        createKeyset();
        startFilterService();
        startEnvoy();
    }

    public FakeBroker fakeBroker() {
        return fake;
    }

    /** Envoy in front of the real broker. */
    public String realBootstrap() {
        return "127.0.0.1:" + realBootstrap;
    }

    /** Envoy in front of the fake broker. */
    public String fakeBootstrap() {
        return "127.0.0.1:" + fakeBootstrap;
    }

    public int fakeBootstrapPort() {
        return fakeBootstrap;
    }

    public int realBootstrapPort() {
        return realBootstrap;
    }

    public LocalMesh mesh() {
        return mesh;
    }

    /** The filter-service's Unix domain socket Envoy connects to ({@link Hop#UNIX_SOCKET} only). */
    public Path socket() {
        return socket;
    }

    /** {@code path} of Envoy's admin API, e.g. {@code /clusters}. */
    public String envoyAdmin(String path) {
        return envoy.admin(path);
    }

    public boolean limitsAccepted() {
        return limitsAccepted;
    }

    public Path filterServiceLog() {
        return fsLog;
    }

    /** The filter-service JVM's pid (-1 when it is not running). */
    public long filterServicePid() {
        return filterService != null && filterService.isAlive() ? filterService.pid() : -1;
    }

    public boolean filterServiceAlive() {
        return filterService != null && filterService.isAlive();
    }

    /** Resident set size of the filter-service in bytes, from /proc. */
    public long filterServiceRssBytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc", Long.toString(filterService.pid()), "status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("filter-service " + filterService.pid() + " is gone", e);
        }
        throw new IllegalStateException("no VmRSS for " + filterService.pid());
    }

    /** The current end of the filter-service log: pass it to {@link #logSince} to see what one attack logged. */
    public long logMark() {
        try {
            return Files.exists(fsLog) ? Files.size(fsLog) : 0;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public String logSince(long mark) {
        try {
            byte[] all = Files.readAllBytes(fsLog);
            return new String(all, (int) Math.min(mark, all.length), (int) Math.max(0, all.length - mark), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Waits up to {@code timeout} for a log line after {@code mark} matching {@code regex}; returns it or null. */
    public String awaitLogLine(long mark, Pattern regex, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            for (String line : logSince(mark).split("\n")) {
                if (regex.matcher(line).find()) {
                    return line;
                }
            }
            if (System.nanoTime() - deadline > 0) {
                return null;
            }
            sleep(100);
        }
    }

    /** Restarts the filter-service if an earlier attack killed it, so one defect does not fail every later test. */
    public void ensureFilterServiceRunning() throws IOException {
        if (!filterServiceAlive()) {
            Files.writeString(fsLog, "\n===== hostile mesh: the filter-service had died, restarting it =====\n",
                    java.nio.file.StandardOpenOption.APPEND);
            startFilterService();
        }
    }

    @Override
    public void close() throws IOException {
        stopProcesses();
        fake.close();
    }

    // ---- processes

    private void createKeyset() throws IOException {
        Process p = new ProcessBuilder(java(), "-jar", jar().toString(), "keyset", "create", "--out",
                home.resolve("keyset.json").toString())
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(home.resolve("logs/cli.log").toFile()))
                .start();
        waitFor(p, Duration.ofSeconds(60), "keyset create");
        Files.setPosixFilePermissions(home.resolve("keyset.json"), PosixFilePermissions.fromString("rw-------"));
    }

    private String filterConfig(boolean limits) {
        return "# written by the hostile e2e harness (HostileMesh.java)\n"
                + "listen: 127.0.0.1:" + grpcPort + "\n"
                + "keyset: keyset.json\n"
                + "brokers:\n  1: 127.0.0.1:" + realNode + "\n"
                + "policy:\n  encrypt: [\"enc-*\", \"secret-*\"]\n  unmatched: passthrough\n"
                + keys
                + (hop == Hop.UNIX_SOCKET ? "unixSockets:\n  - path: " + socket + "\n" : "")
                + (limits ? LIMITS : "");
    }

    private synchronized void startFilterService() throws IOException {
        for (boolean limits : new boolean[] {true, false}) {
            Files.writeString(home.resolve("filter.yaml"), filterConfig(limits));
            long mark = logMark();
            ProcessBuilder pb = new ProcessBuilder(java(), HEAP, "-XX:+ExitOnOutOfMemoryError", "-jar", jar().toString(),
                    "serve", "--config", home.resolve("filter.yaml").toString())
                    .directory(home.toFile()).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(fsLog.toFile()));
            pb.environment().putAll(env);
            filterService = pb.start();
            long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
            while (filterService.isAlive() && !(canConnect(grpcPort) && (hop == Hop.TCP || canConnect(socket)))) {
                if (System.nanoTime() - deadline > 0) {
                    throw new IllegalStateException("filter-service did not listen within " + START_TIMEOUT + "; see " + fsLog);
                }
                sleep(100);
            }
            if (filterService.isAlive()) {
                limitsAccepted = limits;
                return;
            }
            if (!limits || !logSince(mark).contains("limits")) {
                throw new IllegalStateException("filter-service exited at start; see " + fsLog + "\n" + logSince(mark));
            }
            // a filter-service without the limits: section: run without it; the trickle test reports this
        }
    }

    private void startEnvoy() throws IOException {
        Path config = home.resolve("envoy.yaml");
        Files.writeString(config, envoyConfig(mesh.brokerDirect()));
        envoy = EnvoyProcess.start(config, envoyAdmin, envoyLog, START_TIMEOUT, "--concurrency", "1", "--log-level", "warn");
    }

    private String envoyConfig(String realBroker) {
        String[] real = realBroker.split(":");
        StringBuilder y = new StringBuilder();
        y.append("admin:\n  address:\n    socket_address: { address: 127.0.0.1, port_value: ").append(envoyAdmin).append(" }\n");
        y.append("static_resources:\n  listeners:\n");
        StaticSidecar.kafkaListener(y, "real_bootstrap", realBootstrap, "real_broker", "1=127.0.0.1:" + realNode);
        StaticSidecar.kafkaListener(y, "real_node_1", realNode, "real_broker", "1=127.0.0.1:" + realNode);
        StaticSidecar.kafkaListener(y, "fake_bootstrap", fakeBootstrap, "fake_broker", "1=127.0.0.1:" + fakeNode);
        StaticSidecar.kafkaListener(y, "fake_node_1", fakeNode, "fake_broker", "1=127.0.0.1:" + fakeNode);
        y.append("  clusters:\n");
        if (hop == Hop.UNIX_SOCKET) {
            StaticSidecar.filterServiceClusterOnUnixSocket(y, socket);
        } else {
            StaticSidecar.filterServiceCluster(y, grpcPort, "");
        }
        StaticSidecar.cluster(y, "real_broker", real[0], Integer.parseInt(real[1]));
        StaticSidecar.cluster(y, "fake_broker", "127.0.0.1", fake.port());
        return y.toString();
    }

    private synchronized void stopProcesses() {
        if (envoy != null) {
            envoy.close();
        }
        if (filterService != null && filterService.isAlive()) {
            filterService.destroy();
            try {
                if (!filterService.waitFor(10, TimeUnit.SECONDS)) {
                    filterService.destroyForcibly();
                }
            } catch (InterruptedException e) {
                filterService.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
    }

    private Path jar() {
        return mesh.root().resolve("filter-service/target/meshcrypt-filter-service.jar");
    }

    private static String java() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    private static void waitFor(Process p, Duration timeout, String what) {
        try {
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS) || p.exitValue() != 0) {
                p.destroyForcibly();
                throw new IllegalStateException(what + " failed");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** Whether something accepts connections on 127.0.0.1:{@code port}. */
    public static boolean canConnect(int port) {
        try (Socket s = new Socket(InetAddress.getLoopbackAddress(), port)) {
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** Whether something accepts connections on the Unix domain socket at {@code path} (not a stale file). */
    private static boolean canConnect(Path path) {
        try (SocketChannel s = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            s.connect(UnixDomainSocketAddress.of(path));
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path p : all.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }
}
