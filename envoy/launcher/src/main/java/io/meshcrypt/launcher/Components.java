package io.meshcrypt.launcher;

import io.meshcrypt.pki.LocalCa;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Starts and stops the mesh's components: the broker, the filter-service, the xDS server and the Envoys it
 * configures. Each start is skipped when the component runs already (then only its readiness is awaited), refuses a
 * port in use, and waits until the component answers.
 */
final class Components {

    /** What {@code up} starts; {@code start}/{@code stop} take one of these. */
    static final List<String> MESH = List.of("broker", "filter-service", "envoy");
    /** The demo's parts, in start order. */
    static final List<String> DEMO = List.of("xds-server", "ext-proc-relay", "http-echo", "http-sidecar", "java-sidecar", "go-sidecar",
            "node-sidecar", "spring-consumer", "go-producer", "node-producer", "broker-tap", "http-client");
    static final String TRANSPARENT_LISTENER = "kafka_transparent";

    final Path root;
    final StateDir state;
    final PortPlan ports;
    final Supervisor supervisor;
    final Installer installer;
    /** Mutual TLS on every hop, with certificates from the local CA in {@code $MESHCRYPT_HOME/pki} (MESHCRYPT_TLS). */
    final boolean tls;
    /** The sidecars' hop to the filter-service (MESHCRYPT_EXT_PROC). */
    final ExtProcHop extProc;
    private Path envoyBin;
    private String kafkaClasspath;
    /** {@code up --brokers N}; 0: as recorded in the state dir ({@link StateDir#brokers()}). */
    private int brokers;

    Components(Path root, StateDir state, PortPlan ports, Supervisor supervisor, boolean tls) {
        this(root, state, ports, supervisor, tls, ExtProcHop.TCP);
    }

    Components(Path root, StateDir state, PortPlan ports, Supervisor supervisor, boolean tls, ExtProcHop extProc) {
        this.root = root;
        this.tls = tls;
        this.extProc = extProc;
        this.state = state;
        this.ports = ports;
        this.supervisor = supervisor;
        this.installer = new Installer(root, state);
    }

    /** Every component a mesh may run, in start order: a cluster's brokers 2 to 9 right after broker 1. */
    static List<String> all() {
        List<String> all = new ArrayList<>(MESH);
        for (int id = PortPlan.MAX_BROKERS; id >= 2; id--) {
            all.add(1, brokerComponent(id));
        }
        all.addAll(DEMO);
        return all;
    }

    boolean transparent() {
        return state.mode().equals("transparent");
    }

    /** Prepares what the given components need, so one broken part does not keep the others from starting. */
    void setup(List<String> components) {
        state.create();
        installer.systemTools();
        for (String c : components) {
            switch (c) {
                case "broker" -> kafkaClasspath = installer.brokerClasspath();
                case "filter-service" -> installer.filterService();
                case "envoy" -> envoyBin = installer.envoy();
                case "xds-server" -> installer.xdsServer();
                default -> throw new IllegalArgumentException(c);
            }
        }
    }

    Path envoyBin() {
        if (envoyBin == null) {
            envoyBin = installer.envoy();
        }
        return envoyBin;
    }

    /**
     * Kafka through the bridge module instead of Envoy's network ext_proc ({@code up --bridge}): the xDS server emits
     * the dynamic_modules filter, and every Envoy finds the module in the folder {@link Installer#bridgeModule()}
     * built. Kept in the state dir until {@code ./meshcrypt down}, like the mode, so components started later agree
     * with the running mesh.
     */
    boolean bridge() {
        return Files.exists(state.file("bridge"));
    }

    void setBridge(boolean bridge) {
        if (bridge() != bridge) {
            for (String c : List.of("xds-server", "envoy")) {
                if (supervisor.isRunning(c)) {
                    throw new LauncherException("the running mesh " + (bridge ? "does not use" : "uses")
                            + " the bridge module; stop it first with ./meshcrypt down");
                }
            }
        }
        try {
            if (bridge) {
                StateDir.writeAtomically(state.file("bridge"), installer.bridgeModule() + "\n");
            } else {
                Files.deleteIfExists(state.file("bridge"));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The environment of the xDS server and of every Envoy: none, or what the bridge needs. */
    private Map<String, String> kafkaFilterEnvironment(String component) {
        if (!bridge()) {
            return Map.of();
        }
        if (component.equals("xds-server")) {
            return Map.of("MESHCRYPT_KAFKA_FILTER", "bridge");
        }
        try {
            return Map.of("ENVOY_DYNAMIC_MODULES_SEARCH_PATH", Files.readString(state.file("bridge")).strip());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A running mesh keeps its mode until {@code ./meshcrypt down}. */
    void setMode(String mode) {
        if (!state.mode().equals(mode)) {
            for (String c : List.of("broker", "filter-service")) {
                if (supervisor.isRunning(c)) {
                    throw new LauncherException("the running mesh is in " + state.mode() + " mode; stop it first with ./meshcrypt down");
                }
            }
        }
        StateDir.writeAtomically(state.file("mode"), mode + "\n");
    }

    private void requireFree(String component, int... ports) {
        for (int port : ports) {
            if (Probes.portOpen(port)) {
                throw new LauncherException("cannot start " + component + ": 127.0.0.1:" + port
                        + " is already in use (another mesh? set MESHCRYPT_PORT_BASE)");
            }
        }
    }

    // ---- broker(s)

    /** How many brokers this mesh runs: {@code up --brokers N}, else as many as its broker data was formatted for. */
    int brokers() {
        return brokers > 0 ? brokers : state.brokers();
    }

    /**
     * {@code up --brokers N}: refused while brokers of another count run, or when broker data formatted for another
     * count exists (the nodes of a cluster share a cluster id and a voter set fixed at formatting).
     */
    void useBrokers(int count) {
        if (count < 1 || count > PortPlan.MAX_BROKERS) {
            throw new IllegalArgumentException("--brokers must be 1 to " + PortPlan.MAX_BROKERS + " (got " + count + ")");
        }
        int formatted = state.brokers();
        boolean data = Files.exists(brokerDir(1).resolve("data/meta.properties"));
        if (count != formatted && (data || supervisor.isRunning("broker"))) {
            throw new LauncherException("the broker data in " + state.dir() + " is a " + formatted + "-broker cluster's; run ./meshcrypt up"
                    + " --brokers " + formatted + ", or ./meshcrypt down and delete " + state.dir().resolve("broker") + "* (its records)"
                    + " to start over with " + count);
        }
        brokers = count;
    }

    /** The component name of broker {@code id}: {@code broker} for node 1 (as with one broker), else {@code broker-<id>}. */
    static String brokerComponent(int id) {
        return id == 1 ? "broker" : "broker-" + id;
    }

    /** The broker id a component name {@code broker} or {@code broker-<n>} stands for, if one of this mesh's. */
    Optional<Integer> brokerId(String component) {
        for (int id = 1; id <= brokers(); id++) {
            if (brokerComponent(id).equals(component)) {
                return Optional.of(id);
            }
        }
        return Optional.empty();
    }

    private Path brokerDir(int id) {
        return state.file(brokerComponent(id));
    }

    /** Every broker of the mesh: all launched first (a cluster's nodes need a quorum to be ready), then each awaited. */
    void startBrokers() {
        List<Integer> launched = new ArrayList<>();
        for (int id = 1; id <= brokers(); id++) {
            launched.add(id);
            launchBroker(id);
        }
        launched.forEach(this::awaitBroker);
    }

    /** One broker (e.g. a cluster node restarted after a failure), ready when it answers Metadata naming itself. */
    void startBroker(int id) {
        launchBroker(id);
        awaitBroker(id);
    }

    private void launchBroker(int id) {
        String c = brokerComponent(id);
        if (supervisor.isRunning(c)) {
            return;
        }
        requireFree(c, ports.broker(id), ports.controller(id));
        Path dir = brokerDir(id);
        ConfigFiles.writeBroker(dir, ports, id, brokers(), transparent());
        if (kafkaClasspath == null) {
            kafkaClasspath = installer.brokerClasspath();
        }
        List<String> jvm = List.of(Installer.java(), "-Xms256m", "-Xmx1g", "-Dlog4j2.configurationFile=" + dir.resolve("log4j2.properties"),
                "-cp", kafkaClasspath);
        if (!Files.exists(dir.resolve("data/meta.properties"))) {
            formatStorage(id, dir, jvm);
        }
        Say.say("starting " + c + " on 127.0.0.1:" + ports.broker(id));
        supervisor.launch(c, dir, Map.of(), concat(jvm, "kafka.Kafka", dir.resolve("server.properties").toString()));
    }

    private void awaitBroker(int id) {
        int port = ports.broker(id);
        supervisor.await(brokerComponent(id), "Kafka metadata on 127.0.0.1:" + port, () -> Probes.metadataNames(port, id, port));
    }

    /**
     * Formats a node's storage: a single broker as its own quorum (--standalone); a cluster's nodes with the cluster id
     * of the nodes formatted already, or a new one, and the static voter set of server.properties.
     */
    private void formatStorage(int id, Path dir, List<String> jvm) {
        Path log = state.log(brokerComponent(id));
        Optional<String> existing = brokers() == 1 ? Optional.empty() : clusterId();
        String clusterId = existing.isPresent() ? existing.get() : newClusterId(dir, jvm, log);
        Say.say("formatting " + brokerComponent(id) + " storage (cluster id " + clusterId + ")");
        List<String> format = new ArrayList<>(List.of("kafka.tools.StorageTool", "format", "-t", clusterId, "-c",
                dir.resolve("server.properties").toString()));
        if (brokers() == 1) {
            format.add("--standalone");
        }
        runLogged(concat(jvm, format.toArray(String[]::new)), dir, log, true);
        StateDir.writeAtomically(state.file("brokers"), brokers() + "\n");
    }

    /** The cluster id of the first node whose storage is formatted. */
    private Optional<String> clusterId() {
        for (int id = 1; id <= brokers(); id++) {
            Path meta = brokerDir(id).resolve("data/meta.properties");
            if (Files.exists(meta)) {
                java.util.Properties p = new java.util.Properties();
                try (var in = Files.newInputStream(meta)) {
                    p.load(in);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                return Optional.ofNullable(p.getProperty("cluster.id"));
            }
        }
        return Optional.empty();
    }

    private String newClusterId(Path dir, List<String> jvm, Path log) {
        // the tool logs to stdout too; the id is its last line
        String out = runLogged(concat(jvm, "kafka.tools.StorageTool", "random-uuid"), dir, log, false);
        String[] lines = out.strip().split("\n");
        String clusterId = lines[lines.length - 1].strip();
        if (!clusterId.matches("[A-Za-z0-9_-]{22}")) {
            throw new LauncherException("kafka.tools.StorageTool random-uuid gave '" + clusterId + "'");
        }
        return clusterId;
    }

    /** Runs a command to its end; standard error (and, with {@code allToLog}, standard output) goes to {@code log}. */
    private static String runLogged(List<String> command, Path dir, Path log, boolean allToLog) {
        try {
            ProcessBuilder pb = new ProcessBuilder(command).directory(dir.toFile())
                    .redirectError(ProcessBuilder.Redirect.appendTo(log.toFile()));
            if (allToLog) {
                pb.redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
            }
            Process p = pb.start();
            String out = allToLog ? "" : new String(p.getInputStream().readAllBytes());
            if (p.waitFor() != 0) {
                throw new LauncherException(String.join(" ", command.subList(command.size() - 2, command.size()))
                        + " failed; see " + log);
            }
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new LauncherException("interrupted");
        }
    }

    // ---- the services' command lines

    /** A JVM out of heap is in an unknown state (a stalled worker serves many connections): it exits to be restarted. */
    private static List<String> serviceJvm(List<String> options, Path jar, List<String> args) {
        List<String> command = new ArrayList<>(List.of(Installer.java(), "-XX:+ExitOnOutOfMemoryError"));
        command.addAll(options);
        command.addAll(List.of("-jar", jar.toString()));
        command.addAll(args);
        return command;
    }

    static List<String> filterServiceCommand(Path jar, Path config) {
        return serviceJvm(List.of(), jar, List.of("serve", "--config", config.toString()));
    }

    /** With {@code pki}, ADS takes only clients with a certificate from its CA and serves the xDS server's own. */
    static List<String> xdsServerCommand(Path jar, Path mesh, PortPlan ports, Optional<Path> pki) {
        List<String> args = new ArrayList<>(List.of("serve", "--mesh", mesh.toString(),
                "--xds", "127.0.0.1:" + ports.xds(), "--status", "127.0.0.1:" + ports.xdsStatus()));
        pki.ifPresent(dir -> args.addAll(List.of(
                "--tls-certificate", dir.resolve(MeshPki.XDS_SERVER).resolve("cert.pem").toString(),
                "--tls-private-key", dir.resolve(MeshPki.XDS_SERVER).resolve("key.pem").toString(),
                "--tls-trusted-ca", dir.resolve(LocalCa.CA_CERTIFICATE).toString())));
        return serviceJvm(List.of("-Xmx256m"), jar, args);
    }

    // ---- the mesh's certificates

    /** The local CA's directory when the mesh runs mutual TLS. */
    Optional<Path> pki() {
        return tls ? Optional.of(state.file(MeshPki.DIR)) : Optional.empty();
    }

    /**
     * Creates the local CA and issues the certificates that are missing or due (less than 8 h left) for the servers
     * and for every sidecar the launcher runs; a running component picks up the new files without a restart.
     */
    void ensureCertificates() {
        if (!tls) {
            return;
        }
        MeshPki pki = MeshPki.of(state);
        List<String> nodes = sidecarNodes();
        // the transparent demo's sidecars reach both servers through the relay, which passes TLS through unchanged
        List<String> relay = transparent() ? List.of(ports.brokerRealHost()) : List.of();
        List<String> issued = pki.ensure(relay, nodes, Instant.now());
        if (!issued.isEmpty()) {
            Say.say("issued certificates (local CA " + pki.caCertificate() + "): " + String.join(" ", issued));
        }
        for (String node : nodes) {
            LocalCa.Issued files = pki.files(MeshPki.sidecar(node));
            Path sds = MeshPki.sdsCertificate(files);
            StateDir.writeAtomically(sds, ConfigFiles.sdsCertificate(files.certificate(), files.privateKey()));
            if (transparent()) {
                // the namespace sidecars run as the proxy uid: their key must be theirs to read
                for (Path p : List.of(files.certificate().getParent(), files.certificate(), files.privateKey(), sds)) {
                    setOwner(p, Netns.PROXY_UID);
                }
            }
        }
    }

    /** The Envoy node ids of every sidecar the launcher may run: the shared one, the demo's HTTP one, each Kafka app's. */
    static List<String> sidecarNodes() {
        List<String> nodes = new ArrayList<>(List.of(MeshFile.SHARED_NODE, MeshFile.HTTP_NODE));
        for (KafkaApp app : KafkaApp.values()) {
            nodes.add(app.component());
        }
        return nodes;
    }

    /**
     * With MESHCRYPT_EXT_PROC=unix: the sockets' folder (owner-only: only the launcher's user reaches the sockets),
     * after checking every socket path fits. Empty with TCP: no socket.
     */
    private List<String> unixSocketNodes() {
        if (extProc != ExtProcHop.UNIX) {
            return List.of();
        }
        if (transparent()) {
            // its sidecars run as the proxy uid in their own network namespaces, through the relay's TCP ports
            throw new LauncherException(ExtProcHop.SWITCH + "=unix: the transparent demo's sidecars run as another user and"
                    + " reach the filter-service through the relay; run it with " + ExtProcHop.SWITCH + "=tcp");
        }
        List<String> nodes = sidecarNodes();
        ExtProcHop.requireShortPaths(state, nodes);
        try {
            Path run = state.file(ExtProcHop.RUN_DIR);
            Files.createDirectories(run);
            Files.setPosixFilePermissions(run, PosixFilePermissions.fromString("rwx------"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return nodes;
    }

    private static void setOwner(Path p, int uid) {
        try {
            Files.setAttribute(p, "unix:uid", uid);
        } catch (IOException e) {
            throw new LauncherException("cannot hand " + p + " to uid " + uid + " (the transparent demo runs as root): " + e.getMessage(), e);
        }
    }

    // ---- filter-service

    void startFilterService() {
        String ready = "gRPC listener on 127.0.0.1:" + ports.filterGrpc();
        if (!supervisor.isRunning("filter-service")) {
            requireFree("filter-service", ports.filterGrpc());
            Path keyset = state.file("keyset.json");
            if (!Files.exists(keyset)) {
                createKeyset(keyset);
            }
            ConfigFiles.writeFilter(state, ports, brokers(), transparent(), tls, unixSocketNodes());
            Say.say("starting filter-service on 127.0.0.1:" + ports.filterGrpc());
            // working dir = state dir, so the relative keyset path resolves next to filter.yaml
            supervisor.launch("filter-service", state.dir(), Map.of(), filterServiceCommand(installer.filterJar(), state.file("filter.yaml")));
        }
        supervisor.await("filter-service", ready, () -> Probes.portOpen(ports.filterGrpc()));
    }

    /** Never overwrites: losing a keyset makes its ciphertext unreadable. Delegates to the filter-service's keys CLI. */
    void createKeyset(Path out) {
        if (Files.exists(out)) {
            throw new LauncherException(out + " already exists; refusing to overwrite a keyset (records encrypted with it would become unreadable)");
        }
        try {
            Files.createDirectories(out.toAbsolutePath().getParent());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        // the filter-service creates it readable by its owner only
        Probes.runVisible(List.of(Installer.java(), "-jar", installer.filterJar().toString(), "keyset", "create", "--out", out.toString()),
                state.dir(), "creating the keyset " + out + " failed");
    }

    // ---- xDS server and the Envoys it configures

    /** Writes the mesh file unless it was edited by hand; a running xDS server keeps its file. */
    void writeMeshFile(io.meshcrypt.meshconfig.mesh.Mesh mesh) {
        Path f = state.file("mesh.yaml");
        if (!state.isGenerated(f)) {
            Say.say("keeping hand-edited " + f);
            ConfigFiles.warnWithoutTls(f, pki().isPresent());
            String mismatch = ConfigFiles.transportMismatch(f, !unixSocketNodes().isEmpty());
            if (mismatch != null) {
                Say.say(mismatch);
            }
            return;
        }
        if (!unixSocketNodes().isEmpty()) {
            mesh = ExtProcHop.onUnixSockets(mesh, state);
        }
        StateDir.writeAtomically(f, MeshFile.write(mesh, pki()));
    }

    void startXdsServer() {
        if (supervisor.isRunning("xds-server")) {
            return;
        }
        requireFree("xds-server", ports.xds(), ports.xdsStatus());
        supervisor.launch("xds-server", state.dir(), kafkaFilterEnvironment("xds-server"), xdsServerCommand(installer.xdsJar(), state.file("mesh.yaml"), ports, pki()));
        supervisor.await("xds-server", "its status endpoint on 127.0.0.1:" + ports.xdsStatus(), () -> Probes.get(ports.xdsStatus(), "/status") != null);
    }

    /** A bootstrap that names only the node id and the xDS server; Envoy validates it before it runs. */
    private Path xdsBootstrap(String component, String node, int admin, String xdsHost, int xdsPort) {
        Path out = state.file(component.equals("envoy") ? "envoy.yaml" : component + ".yaml");
        Map<String, Object> values = new LinkedHashMap<>();
        values.put("NODE_ID", node);
        values.put("ENVOY_ADMIN_PORT", admin);
        values.put("XDS_HOST", xdsHost);
        values.put("XDS_PORT", xdsPort);
        values.put("XDS_API_TYPE", "GRPC");
        String bootstrap = ConfigFiles.renderText(root.resolve("envoy/xds-bootstrap.yaml.template"), out, values);
        if (tls) {
            LocalCa.Issued files = MeshPki.of(state).files(MeshPki.sidecar(node));
            bootstrap += ConfigFiles.xdsTransportSocket(files.certificate().getParent(), MeshPki.sdsCertificate(files),
                    state.file(MeshPki.DIR).resolve(LocalCa.CA_CERTIFICATE));
        }
        StateDir.writeAtomically(out, bootstrap);
        validate(component, out);
        return out;
    }

    private void validate(String component, Path config) {
        try {
            Process p = new ProcessBuilder(envoyBin().toString(), "--mode", "validate", "-c", config.toString(), "--log-level", "error")
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(state.log(component).toFile())).start();
            if (p.waitFor() != 0) {
                throw new LauncherException("Envoy rejected " + config + "; see " + state.log(component));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new LauncherException("interrupted");
        }
    }

    private void launchEnvoy(String component, Path config, List<String> prefix) {
        // no hot restart: it would share memory with any other Envoy on the host (a second mesh). No --concurrency: one
        // worker spent the same CPU per record as the default one per core (docs/envoy-tuning.md); one would
        // cap a busy sidecar at one core
        List<String> command = new ArrayList<>(prefix);
        command.addAll(List.of(envoyBin().toString(), "-c", config.toString(), "--disable-hot-restart", "--log-level", "info"));
        supervisor.launch(component, state.dir(), kafkaFilterEnvironment(component), command);
    }

    /** The shared Kafka sidecar (node kafka-apps), for the user's own clients. */
    void startEnvoy() {
        if (!supervisor.isRunning("envoy")) {
            requireFree("envoy", ports.envoyAdmin(), ports.envoyBootstrap());
            requireFree("envoy", sharedSidecarListeners().values().stream().mapToInt(Integer::intValue).toArray());
            Path config = xdsBootstrap("envoy", MeshFile.SHARED_NODE, ports.envoyAdmin(), "127.0.0.1", ports.xds());
            Say.say("starting Envoy (bootstrap 127.0.0.1:" + ports.envoyBootstrap() + ", admin 127.0.0.1:" + ports.envoyAdmin() + ")");
            launchEnvoy("envoy", config, List.of());
        }
        supervisor.await("envoy", "LIVE from the admin /ready endpoint", () -> Probes.adminLive(ports.envoyAdmin()));
    }

    /**
     * Kafka metadata through the sidecar naming its own broker listener proves client, Envoy, filter-service and
     * broker work together, and that clients stay behind Envoy.
     */
    void awaitMesh(int bootstrap, int broker1, String envoy) {
        awaitMesh(bootstrap, Map.of(1, broker1), envoy);
    }

    /** {@link #awaitMesh(int, int, String)} naming each broker id of {@code listeners} at its listener there. */
    void awaitMesh(int bootstrap, Map<Integer, Integer> listeners, String envoy) {
        long deadline = System.nanoTime() + supervisor.timeout().toNanos();
        List<String> needed = new ArrayList<>(List.of("filter-service", envoy));
        listeners.keySet().forEach(id -> needed.add(brokerComponent(id)));
        while (!Probes.metadataNames(bootstrap, listeners)) {
            for (String c : needed) {
                if (!supervisor.isRunning(c)) {
                    throw new LauncherException(c + " stopped while the mesh was starting; its log: " + state.log(c));
                }
            }
            if (System.nanoTime() > deadline) {
                throw new LauncherException("the mesh did not answer Kafka metadata through Envoy (127.0.0.1:" + bootstrap
                        + ") naming the brokers at " + listeners + " (id=port on 127.0.0.1) within " + supervisor.timeout().toSeconds()
                        + "s; see " + state.log("filter-service") + " and the Envoy logs in " + state.logs()
                        + " (stats: curl <admin>/stats?filter=network_ext_proc)");
            }
            Supervisor.sleep(200);
        }
    }

    /** The shared sidecar's listener of each broker of the mesh, by broker id. */
    Map<Integer, Integer> sharedSidecarListeners() {
        Map<Integer, Integer> listeners = new java.util.TreeMap<>();
        for (int id = 1; id <= brokers(); id++) {
            listeners.put(id, ports.envoyBroker(id));
        }
        return listeners;
    }

    /** Explicit demo: app's own sidecar on the host, node id = the app, listeners from the xDS server. */
    void startAppSidecar(KafkaApp app) {
        String c = app.sidecar();
        PortPlan.AppSidecarPorts p = ports.appSidecar(app);
        if (supervisor.isRunning(c)) {
            return;
        }
        requireFree(c, p.admin(), p.bootstrap(), p.broker1());
        launchEnvoy(c, xdsBootstrap(c, app.component(), p.admin(), "127.0.0.1", ports.xds()), List.of());
        supervisor.await(c, "LIVE from its admin /ready", () -> Probes.adminLive(p.admin()));
        // Metadata through it names its own broker listener: the filter-service got this sidecar's listener map
        awaitMesh(p.bootstrap(), p.broker1(), c);
    }

    /** The demo's HTTP sidecar: its listener, route and HTTP ext_proc filter come from the xDS server. */
    void startHttpSidecar() {
        if (supervisor.isRunning("http-sidecar")) {
            return;
        }
        requireFree("http-sidecar", ports.httpSidecarAdmin(), ports.httpSidecar());
        launchEnvoy("http-sidecar", xdsBootstrap("http-sidecar", MeshFile.HTTP_NODE, ports.httpSidecarAdmin(), "127.0.0.1", ports.xds()),
                List.of());
        supervisor.await("http-sidecar", "LIVE from its admin /ready", () -> Probes.adminLive(ports.httpSidecarAdmin()));
        supervisor.await("http-sidecar", "its HTTP listener from the xDS server", () -> Probes.hasListener(null, ports.httpSidecarAdmin(), "http_orders"));
    }

    /** Transparent demo: lets the app namespaces reach the filter-service and the xDS server. */
    void startRelay() {
        if (supervisor.isRunning("ext-proc-relay")) {
            return;
        }
        requireFree("ext-proc-relay", ports.relayAdmin());
        Path out = state.file("ext-proc-relay.yaml");
        Map<String, Object> values = new LinkedHashMap<>();
        values.put("ENVOY_ADMIN_PORT", ports.relayAdmin());
        values.put("LISTEN_ADDRESS", ports.brokerRealHost());
        values.put("LISTEN_PORT", ports.relayExtProc());
        values.put("FILTER_GRPC_PORT", ports.filterGrpc());
        values.put("XDS_LISTEN_PORT", ports.relayXds());
        values.put("XDS_PORT", ports.xds());
        ConfigFiles.render(root.resolve("envoy/transparent/ext-proc-relay.yaml.template"), out, values);
        validate("ext-proc-relay", out);
        launchEnvoy("ext-proc-relay", out, List.of());
        supervisor.await("ext-proc-relay", "LIVE from its admin /ready", () -> Probes.adminLive(ports.relayAdmin()));
    }

    /** Transparent demo: the app's sidecar inside its namespace, as the proxy uid (exempt from interception). */
    void startNamespaceSidecar(KafkaApp app, String netns) {
        String c = app.sidecar();
        if (supervisor.isRunning(c)) {
            return;
        }
        Path out = xdsBootstrap(c, app.component(), ports.namespaceSidecarAdmin(), ports.brokerRealHost(), ports.relayXds());
        try {
            Files.setPosixFilePermissions(out, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        String uid = Integer.toString(Netns.PROXY_UID);
        launchEnvoy(c, out, List.of("ip", "netns", "exec", netns, "setpriv", "--reuid=" + uid, "--regid=" + uid, "--clear-groups"));
        supervisor.await(c, "LIVE from its admin /ready in " + netns, () -> Probes.adminLiveIn(netns, ports.namespaceSidecarAdmin()));
        supervisor.await(c, "its intercepting listener from the xDS server",
                () -> Probes.hasListener(netns, ports.namespaceSidecarAdmin(), TRANSPARENT_LISTENER));
    }

    // ---- whole mesh

    void writeEndpoints() {
        StringBuilder sb = new StringBuilder()
                .append("KAFKA_BOOTSTRAP=127.0.0.1:").append(ports.envoyBootstrap()).append('\n')
                .append("BROKER_DIRECT=").append(brokerDirect()).append('\n')
                .append("ENVOY_ADMIN=127.0.0.1:").append(ports.envoyAdmin()).append('\n')
                .append("FILTER_GRPC=127.0.0.1:").append(ports.filterGrpc()).append('\n')
                .append("FILTER_METRICS=http://127.0.0.1:").append(ports.filterMetrics()).append("/metrics\n");
        if (supervisor.isRunning("xds-server")) {
            sb.append("XDS_STATUS=http://127.0.0.1:").append(ports.xdsStatus()).append("/status\n");
        }
        StateDir.writeAtomically(state.file("endpoints.env"), sb.toString());
    }

    /** The brokers' own addresses, comma-separated (a bootstrap list). */
    String brokerDirect() {
        List<String> direct = new ArrayList<>();
        for (int id = 1; id <= brokers(); id++) {
            direct.add("127.0.0.1:" + ports.broker(id));
        }
        return String.join(",", direct);
    }

    /** Which components run, then {@link MeshStatus#report} over {@code window}, then the endpoints. */
    String status(java.time.Duration window) {
        StringBuilder sb = new StringBuilder();
        for (String c : all()) {
            var p = supervisor.running(c);
            if (p.isPresent()) {
                sb.append(String.format("%-17s running  pid %d%n", c, p.get().pid()));
            } else if (MESH.contains(c) || brokerId(c).isPresent()) {
                sb.append(String.format("%-17s stopped%n", c));
            }
        }
        sb.append(meshStatus().report(window, d -> Supervisor.sleep(d.toMillis())));
        Path endpoints = state.file("endpoints.env");
        try {
            if (Files.exists(endpoints)) {
                sb.append(Files.readString(endpoints));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return sb.toString();
    }

    /** The running components' endpoints, for status and the demo's summary line. */
    MeshStatus meshStatus() {
        Map<String, java.util.function.Supplier<MeshScrape.Answer>> envoys = new LinkedHashMap<>();
        Map<String, Integer> admins = new LinkedHashMap<>();
        admins.put("envoy", ports.envoyAdmin());
        admins.put("ext-proc-relay", ports.relayAdmin());
        admins.put("http-sidecar", ports.httpSidecarAdmin());
        for (KafkaApp app : KafkaApp.values()) {
            if (transparent()) {
                String netns = new Netns(root, state, ports).of(app);
                if (supervisor.isRunning(app.sidecar())) {
                    envoys.put(app.sidecar(), () -> {
                        String body = Probes.getIn(netns, ports.namespaceSidecarAdmin(), "/ready");
                        return body == null ? new MeshScrape.Answer(0, "no answer from its admin in " + netns) : new MeshScrape.Answer(200, body);
                    });
                }
            } else {
                admins.put(app.sidecar(), ports.appSidecar(app).admin());
            }
        }
        admins.forEach((c, port) -> {
            if (supervisor.isRunning(c)) {
                envoys.put(c, () -> MeshScrape.get(port, "/ready"));
            }
        });
        return new MeshStatus(new MeshStatus.Endpoints(supervisor.isRunning("filter-service") ? ports.filterMetrics() : null,
                supervisor.isRunning("xds-server") ? ports.xdsStatus() : null, envoys));
    }

    /** Stops every component and demo app, last started first, then removes the transparent demo's namespaces. */
    void stopAll() {
        List<String> all = all();
        List<String> brokers = java.util.stream.IntStream.rangeClosed(1, PortPlan.MAX_BROKERS).mapToObj(Components::brokerComponent).toList();
        for (int i = all.size() - 1; i >= 0; i--) {
            if (!brokers.contains(all.get(i))) {
                supervisor.stop(all.get(i));
            }
        }
        // a cluster's nodes together (Supervisor#stop(List)), after everything that talks to them
        supervisor.stop(brokers);
        if ((Files.exists(state.file("netns")) || transparent()) && Probes.onPath("ip")) {
            new Netns(root, state, ports).down(false);
        }
        try {
            Files.deleteIfExists(state.file("endpoints.env"));
            Files.deleteIfExists(state.file("mode"));
            Files.deleteIfExists(state.file("bridge"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static List<String> concat(List<String> head, String... tail) {
        List<String> out = new ArrayList<>(head);
        out.addAll(List.of(tail));
        return out;
    }
}
