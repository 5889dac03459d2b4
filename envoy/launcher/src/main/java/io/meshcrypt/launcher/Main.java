package io.meshcrypt.launcher;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicBoolean;
import picocli.AutoComplete;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Unmatched;

/**
 * {@code ./meshcrypt}: run the local encrypted-Kafka mesh (Kafka broker, filter-service, xDS server, Envoy sidecars).
 * Exit codes: 0 done, 1 failed (the error says why), 2 usage error.
 */
@Command(name = "meshcrypt", mixinStandardHelpOptions = true, version = "meshcrypt launcher",
        description = "Runs the local encrypted-Kafka mesh: Kafka broker, filter-service, xDS server and the Envoy sidecars it configures.",
        subcommands = {Main.DemoCommand.class, Main.Up.class, Main.Down.class, Main.Start.class, Main.Stop.class, Main.Status.class,
            Main.Pki.class, Main.Audit.class, Main.Forget.class, Main.Setup.class, Main.Keyset.class, Main.Test.class, CommandLine.HelpCommand.class, AutoComplete.GenerateCompletion.class},
        footerHeading = "%n",
        footer = {
            "components: broker filter-service envoy (up --brokers N: broker is node 1, broker-2 ... broker-N the others)",
            "",
            "environment:",
            "  MESHCRYPT_HOME       state dir: logs/, pids/, configs, keyset, Envoy venv (default: <repo>/.meshcrypt)",
            "  MESHCRYPT_PORT_BASE  port base B (default 19000). Ports, all on 127.0.0.1:",
            "                         B+51   filter-service gRPC        B+92   broker (BROKER_DIRECT)",
            "                         B+93   broker KRaft controller    B+192  Envoy bootstrap (KAFKA_BOOTSTRAP)",
            "                         B+193  Envoy listener of broker 1 B+901  Envoy admin",
            "                         B+18   xDS server (ADS)           B+19   its status (XDS_STATUS)",
            "                         B+54   filter-service metrics and health (FILTER_METRICS)",
            "                       demo: B+80 HTTP service, B+81 its sidecar (HTTP_URL), B+902 sidecar admin;",
            "                       the Kafka apps' sidecars (go, node, java = 0, 1, 2): bootstrap B+194+2i,",
            "                       broker 1 listener B+195+2i, admin B+905+i;",
            "                       transparent: B+94 broker's real address and the relay (B+52 ext_proc,",
            "                       B+53 xDS) on 169.254.(B/1000).1, B+903 relay admin; in each app namespace",
            "                       the sidecar on 127.0.0.1:15001, its admin on 127.0.0.1:B+904",
            "                       up --brokers N: broker n >= 2 on B+110+n, its controller B+120+n, the Envoy",
            "                       listener of broker n B+210+n",
            "                       Two meshes side by side need bases at least 1000 apart (e.g. 19000, 29000).",
            "  MESHCRYPT_TLS        on (default): mutual TLS on every hop, certificates from the local CA in",
            "                       $MESHCRYPT_HOME/pki (see ./meshcrypt pki); off: plaintext on loopback",
            "  MESHCRYPT_EXT_PROC   tcp (default): sidecars reach the filter-service on its gRPC port (mutual TLS with",
            "                       MESHCRYPT_TLS=on); unix: each sidecar on its own owner-only Unix socket in",
            "                       $MESHCRYPT_HOME/run/, no TLS on that hop (needs a short MESHCRYPT_HOME)",
            "  MESHCRYPT_TIMEOUT    readiness deadline per component in seconds (default 90)",
            "  DEMO_INTERVAL_MS     pause between the demo apps' records/requests (default 1000)",
            "  COLUMNS              width of the demo's live view (default: the terminal's, else 180)"})
public final class Main implements Runnable {

    static final String DOWN_HINT = "components already started keep running: inspect them with ./meshcrypt status, stop them with ./meshcrypt down";
    static final String DEMO_HINT = "what started keeps running: inspect it with ./meshcrypt status, stop it with ./meshcrypt down";

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    private final Map<String, String> env;
    private final Path root;
    /** Printed after an error: what the user can do about what was left running. */
    private String hint;

    Main(Path root, Map<String, String> env) {
        this.root = root;
        this.env = env;
    }

    public static void main(String[] args) {
        Path root = Path.of(System.getProperty("meshcrypt.root", ".")).toAbsolutePath().normalize();
        System.exit(execute(root, System.getenv(), args));
    }

    /** Runs one command line; returns the exit code. */
    static int execute(Path root, Map<String, String> env, String... args) {
        Main main = new Main(root, env);
        CommandLine cli = new CommandLine(main).setUsageHelpWidth(120);
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            if (e instanceof LauncherException || e instanceof IllegalArgumentException) {
                PrintWriter err = commandLine.getErr();
                err.println("meshcrypt: error: " + e.getMessage());
                if (main.hint != null) {
                    err.println("meshcrypt: " + main.hint);
                }
                err.flush();
                return 1;
            }
            throw e;
        });
        return cli.execute(args);
    }

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    // ---- context

    StateDir state() {
        String home = env.get("MESHCRYPT_HOME");
        return new StateDir(home == null || home.isEmpty() ? root.resolve(".meshcrypt") : Path.of(home).toAbsolutePath());
    }

    PortPlan ports() {
        try {
            return PortPlan.parse(env.get("MESHCRYPT_PORT_BASE"));
        } catch (IllegalArgumentException e) {
            throw new LauncherException("MESHCRYPT_PORT_BASE=" + env.get("MESHCRYPT_PORT_BASE") + ": " + e.getMessage());
        }
    }

    Duration timeout() {
        String t = env.getOrDefault("MESHCRYPT_TIMEOUT", "90");
        if (!t.matches("[0-9]{1,5}") || Integer.parseInt(t) == 0) {
            throw new LauncherException("MESHCRYPT_TIMEOUT=" + t + ": must be a positive number of seconds");
        }
        return Duration.ofSeconds(Integer.parseInt(t));
    }

    Components components() {
        StateDir state = state();
        PortPlan ports = ports();
        return new Components(root, state, ports, new Supervisor(state, timeout()), tls(), ExtProcHop.parse(env));
    }

    /**
     * MESHCRYPT_TLS: {@code on} (default) runs mutual TLS on every hop with the local CA in $MESHCRYPT_HOME/pki,
     * {@code off} runs plaintext on loopback.
     */
    boolean tls() {
        return tls(env);
    }

    /** {@link #tls()} for the environment {@code env}: what the e2e harness asks of the mesh it starts. */
    public static boolean tls(Map<String, String> env) {
        String tls = env.getOrDefault("MESHCRYPT_TLS", "");
        return switch (tls) {
            case "", "on" -> TLS_DEFAULT;
            case "off" -> false;
            default -> throw new LauncherException("MESHCRYPT_TLS=" + tls + ": must be on or off");
        };
    }

    /** Whether the mesh runs mutual TLS when MESHCRYPT_TLS is unset. */
    static final boolean TLS_DEFAULT = true;

    private static void printFile(Path f) {
        try {
            System.out.print(Files.readString(f));
            System.out.flush();
        } catch (IOException e) {
            throw new LauncherException("cannot read " + f + ": " + e.getMessage(), e);
        }
    }

    private static void run(AutoCloseable lock, Runnable body) {
        try (lock) {
            body.run();
        } catch (LauncherException | IllegalArgumentException e) {
            throw e;
        } catch (Exception e) {
            throw new LauncherException(e.toString(), e);
        }
    }

    /** Starts the xDS server for {@code up} (keeping the file of a running one: rewriting it would drop a demo's sidecars). */
    private static void startXds(Components mesh) {
        if (!mesh.supervisor.isRunning("xds-server")) {
            mesh.writeMeshFile(MeshFile.up(mesh.ports, mesh.brokers()));
        }
        mesh.startXdsServer();
    }

    // ---- commands

    @Command(name = "up", description = "setup, then start broker, filter-service, xDS server and the Envoy it configures (each only if"
            + " not running), wait until the mesh answers, write $MESHCRYPT_HOME/endpoints.env")
    static final class Up implements Runnable {
        @CommandLine.ParentCommand
        Main main;

        @Option(names = "--brokers", paramLabel = "N", description = "run N brokers (1 to " + PortPlan.MAX_BROKERS + "): a KRaft"
                + " cluster of combined broker+controller nodes, each behind its own listener of the sidecar (docs/multi-broker.md);"
                + " default: as many as the broker data in $MESHCRYPT_HOME was formatted for, else 1")
        Integer brokers;
        @Option(names = "--bridge", description = "Kafka through the ext_proc bridge dynamic module (built with cargo) instead of"
                + " Envoy's network ext_proc filter, as on istio-proxy (docs/dynamic-module.md)")
        boolean bridge;

        @Override
        public void run() {
            if (brokers != null && (brokers < 1 || brokers > PortPlan.MAX_BROKERS)) {
                throw new CommandLine.ParameterException(main.spec.commandLine().getSubcommands().get("up"),
                        "--brokers needs a number from 1 to " + PortPlan.MAX_BROKERS);
            }
            Components mesh = main.components();
            main.hint = DOWN_HINT;
            Main.run(mesh.state.lock(), () -> {
                mesh.setup(List.of("broker", "filter-service", "envoy", "xds-server"));
                mesh.setMode("explicit");
                if (brokers != null) {
                    mesh.useBrokers(brokers);
                }
                mesh.setBridge(bridge);
                mesh.ensureCertificates();
                if (!mesh.supervisor.isRunning("xds-server")) {
                    mesh.writeMeshFile(MeshFile.up(mesh.ports, mesh.brokers()));
                }
                mesh.startBrokers();
                // the xDS server owns the policy: the filter-service waits for it before it serves
                startXds(mesh);
                mesh.startFilterService();
                mesh.startEnvoy();
                mesh.awaitMesh(mesh.ports.envoyBootstrap(), mesh.sharedSidecarListeners(), "envoy");
                mesh.writeEndpoints();
                Say.say("mesh is up (encryption policy: " + mesh.state.file("filter.yaml") + ", logs: " + mesh.state.logs() + ")");
                printFile(mesh.state.file("endpoints.env"));
            });
        }
    }

    @Command(name = "down", description = "stop all components and demo apps (TERM, then KILL after 15 s), remove pid files, network"
            + " namespaces and iptables rules of the transparent demo")
    static final class Down implements Runnable {
        @CommandLine.ParentCommand
        Main main;

        @Override
        public void run() {
            Components mesh = main.components();
            Main.run(mesh.state.lock(), mesh::stopAll);
        }
    }

    @Command(name = "demo", description = {
        "the mesh plus the sample apps (Go and Node producers, Spring Boot consumer, Spring Boot HTTP service, each behind its own"
            + " Envoy sidecar configured by the xDS server; a direct broker tap, an HTTP client), then a live view of what each sent,"
            + " received and what the broker holds, until Ctrl-C or N seconds (then everything stops; exit 1 if no record flowed or"
            + " plaintext was at rest)"})
    static final class DemoCommand implements Runnable {
        @CommandLine.ParentCommand
        Main main;

        @Option(names = "--detach", description = "return once all runs, endpoints in $MESHCRYPT_HOME/endpoints.env")
        boolean detach;

        @Option(names = "--duration", paramLabel = "N", description = "stop after N seconds")
        Integer duration;

        @Option(names = "--transparent", description = "(root) apps in network namespaces dial the broker's real address; iptables in"
                + " each namespace sends them through its Envoy sidecar")
        boolean transparent;

        @Override
        public void run() {
            if (duration != null && duration <= 0) {
                throw new CommandLine.ParameterException(main.spec.commandLine().getSubcommands().get("demo"),
                        "--duration needs a number of seconds");
            }
            Components mesh = main.components();
            Demo demo = new Demo(mesh, main.env.get("DEMO_INTERVAL_MS"));
            main.hint = DEMO_HINT;
            Main.run(mesh.state.lock(), () -> demo.start(transparent));
            if (detach) {
                Say.say("detached; ./meshcrypt down stops everything (apps included)");
                return;
            }
            long seconds = duration == null ? 0 : duration;
            Say.say("live view: Ctrl-C stops the demo and everything it started" + (seconds > 0 ? "; ending after " + seconds + "s" : ""));
            AtomicBoolean stop = new AtomicBoolean();
            Signals.onInterrupt(() -> stop.set(true));
            demo.view(main.columns(), seconds, stop);
            boolean ok = demo.summary();
            Main.run(mesh.state.lock(), mesh::stopAll);
            main.hint = null;
            if (!ok) {
                throw new LauncherException("the demo did not show what it should (see the summary above; logs in " + mesh.state.logs() + ")");
            }
        }
    }

    /** COLUMNS, else the terminal's width, else 180. */
    int columns() {
        String cols = env.get("COLUMNS");
        if ((cols == null || cols.isEmpty()) && System.console() != null) {
            try {
                Process p = new ProcessBuilder("stty", "size").redirectInput(new java.io.File("/dev/tty"))
                        .redirectError(ProcessBuilder.Redirect.DISCARD).start();
                String[] size = new String(p.getInputStream().readAllBytes()).strip().split(" ");
                cols = p.waitFor() == 0 && size.length == 2 ? size[1] : null;
            } catch (IOException e) {
                cols = null;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                cols = null;
            }
        }
        return cols != null && cols.matches("[0-9]{1,4}") ? Integer.parseInt(cols) : 180;
    }

    /** start and stop: one of the mesh's components. */
    abstract static class OneComponent implements Runnable {
        @CommandLine.ParentCommand
        Main main;

        @Parameters(paramLabel = "<component>", description = "broker, filter-service or envoy; a cluster's other brokers: broker-2 ... broker-N")
        String component;

        @Override
        public void run() {
            Components mesh = main.components();
            if (!Components.MESH.contains(component) && mesh.brokerId(component).isEmpty()) {
                throw new LauncherException("unknown component '" + component + "' (one of: " + String.join(" ", Components.MESH)
                        + (mesh.brokers() > 1 ? " broker-2 ... broker-" + mesh.brokers() : "") + ")");
            }
            Main.run(mesh.state.lock(), () -> apply(mesh));
        }

        abstract void apply(Components mesh);
    }

    @Command(name = "start", description = "start one component and wait until it is ready")
    static final class Start extends OneComponent {
        @Override
        void apply(Components mesh) {
            main.hint = DOWN_HINT;
            mesh.ensureCertificates();
            java.util.Optional<Integer> broker = mesh.brokerId(component);
            if (broker.isPresent()) {
                mesh.setup(List.of("broker"));
                mesh.startBroker(broker.get());
                return;
            }
            switch (component) {
                case "filter-service" -> {
                    mesh.setup(List.of("filter-service", "xds-server"));
                    startXds(mesh);
                    mesh.startFilterService();
                }
                default -> {
                    // the Envoy's listeners come from the xDS server
                    mesh.setup(List.of("envoy", "xds-server"));
                    startXds(mesh);
                    mesh.startEnvoy();
                }
            }
        }
    }

    @Command(name = "stop", description = "stop one component")
    static final class Stop extends OneComponent {
        @Override
        void apply(Components mesh) {
            mesh.supervisor.stop(component);
        }
    }

    @Command(name = "status", description = "show which components run; their health (filter-service /readyz, xDS server, each Envoy's"
            + " admin /ready); the config version each Envoy acknowledged and its NACKs; the records per topic the filter-service"
            + " counted in the last N seconds (its /metrics read twice, N s apart) and since it started; the endpoints")
    static final class Status implements Runnable {
        @CommandLine.ParentCommand
        Main main;

        @Option(names = "--window", paramLabel = "N", defaultValue = "5", description = "seconds between the two reads of the"
                + " filter-service's counters, 1 to 60 (default: ${DEFAULT-VALUE})")
        int window;

        @Override
        public void run() {
            if (window < 1 || window > 60) {
                throw new CommandLine.ParameterException(main.spec.commandLine().getSubcommands().get("status"),
                        "--window needs 1 to 60 seconds");
            }
            System.out.print(main.components().status(Duration.ofSeconds(window)));
            System.out.flush();
        }
    }

    @Command(name = "pki", description = "show the local CA and each certificate of the mesh: its SPIFFE id and expiry"
            + " (up, demo and start issue them and renew those with less than 8 h left)")
    static final class Pki implements Runnable {
        @CommandLine.ParentCommand
        Main main;

        @Override
        public void run() {
            System.out.print(MeshPki.describe(main.state().file(MeshPki.DIR), java.time.Instant.now()));
            System.out.flush();
        }
    }

    @Command(name = "forget", description = "forget a subject (crypto-shredding): destroy its keys in the subject-key topic,"
            + " so every filter-service serves its records as the policy's forgotten: value from then on; written to the"
            + " audit trail by scope and subject ref, never the id (through the running filter-service's admin API, as the"
            + " launcher's admin identity; --offline: in process, with filter.yaml)")
    static final class Forget implements Runnable {
        @CommandLine.ParentCommand
        Main main;

        @Option(names = "--topic-pattern", paramLabel = "PATTERN", description = "the policy entry's topic pattern, as"
                + " written in the mesh file (the scope of an entry whose subject: names no scope:)")
        String topicPattern;

        @Option(names = "--scope", paramLabel = "NAME", description = "the scope: named by the subject: of policy entries"
                + " and HTTP rules, instead of --topic-pattern")
        String scope;

        @Option(names = "--subject", required = true, paramLabel = "ID", description = "the subject id as the records"
                + " carry it (record key, header or JSON field value); repeat it to forget several")
        List<String> subjects;

        @Option(names = "--offline", description = "in process with filter.yaml's KMS and subjectKeys:, when no"
                + " filter-service runs (default: through the running filter-service's admin API)")
        boolean offline;

        @Override
        public void run() {
            if ((topicPattern == null) == (scope == null)) {
                throw new LauncherException("forget: give exactly one of --topic-pattern PATTERN and --scope NAME");
            }
            Components mesh = main.components();
            mesh.installer.filterService();
            List<String> command = new ArrayList<>(List.of(Installer.java(), "-jar", mesh.installer.filterJar().toString(),
                    "subjects", "forget"));
            command.addAll(offline ? List.of("--config", mesh.state.file("filter.yaml").toString())
                    : adminClient(mesh));
            command.addAll(scope != null ? List.of("--scope", scope) : List.of("--topic-pattern", topicPattern));
            subjects.forEach(s -> command.addAll(List.of("--subject", s)));
            Probes.runVisible(command, mesh.state.dir(), "forgetting the subject failed" + (offline ? ""
                    : " (no filter-service running? then --offline)"));
        }

        /** {@code --server} and, with TLS, the launcher's admin certificate from the mesh CA (issued when due). */
        private static List<String> adminClient(Components mesh) {
            List<String> args = new ArrayList<>(List.of("--server", "127.0.0.1:" + mesh.ports.filterGrpc()));
            if (mesh.tls) {
                MeshPki pki = MeshPki.of(mesh.state);
                io.meshcrypt.pki.LocalCa.Issued admin = pki.admin(java.time.Instant.now());
                args.addAll(List.of("--certificate", admin.certificate().toString(),
                        "--private-key", admin.privateKey().toString(), "--trusted-ca", pki.caCertificate().toString()));
            }
            return args;
        }
    }

    @Command(name = "audit", description = "who accessed which topic: identity, direction, outcome, records, first and last"
            + " time, from the filter-service's audit trail ($MESHCRYPT_HOME/logs/audit.jsonl and its rotated files)")
    static final class Audit implements Callable<Integer> {
        @CommandLine.ParentCommand
        Main main;

        @Option(names = "--topic", paramLabel = "GLOB", description = "only topics matching GLOB (*, ?, {a,b})")
        String topic;

        @Option(names = "--identity", paramLabel = "ID", description = "only this workload identity (SPIFFE id); "
                + AuditReport.NO_IDENTITY + ": connections without one")
        String identity;

        @Option(names = "--since", paramLabel = "AGE", description = "only accesses in the last AGE: 90s, 15m, 1h, 2d")
        String since;

        @Option(names = "--direction", paramLabel = "fetch|produce", description = "only reads (fetch) or writes (produce)")
        String direction;

        @Option(names = "--file", paramLabel = "FILE", description = "the trail (default $MESHCRYPT_HOME/logs/audit.jsonl);"
                + " FILE.1, FILE.2, ... are read too")
        Path file;

        @Override
        public Integer call() throws IOException {
            if (direction != null && !direction.equals("fetch") && !direction.equals("produce")) {
                throw new IllegalArgumentException("--direction " + direction + ": must be fetch or produce");
            }
            Instant notBefore = since == null ? null : Instant.now().minus(AuditReport.since(since));
            Path trail = file != null ? file.toAbsolutePath() : main.state().logs().resolve("audit.jsonl");
            List<Path> files = AuditReport.files(trail);
            if (files.isEmpty()) {
                throw new LauncherException("no audit trail at " + trail + " (the filter-service writes it when filter.yaml"
                        + " has an audit: section; ./meshcrypt up writes one)");
            }
            AuditReport.Report report = AuditReport.read(files, new AuditReport.Query(topic, identity, notBefore, direction));
            AuditReport.print(report, main.spec.commandLine().getOut());
            if (report.unreadable() > 0) {
                main.spec.commandLine().getErr().println("meshcrypt: skipped " + report.unreadable()
                        + " unreadable line(s) of " + trail + "*");
            }
            return 0;
        }
    }

    @Command(name = "setup", description = "install Envoy " + Installer.ENVOY_VERSION + ", resolve the broker classpath, build the"
            + " filter-service and xDS server if missing or stale (the JDK >= 21 is picked by ./meshcrypt)")
    static final class Setup implements Runnable {
        @CommandLine.ParentCommand
        Main main;

        @Option(names = "--for-tests", description = "also install what the test suite needs (SoftHSM2, moto, ip/iptables, go, npm),"
                + " as ./meshcrypt test and CI do")
        boolean forTests;

        @Override
        public void run() {
            Components mesh = main.components();
            Main.run(mesh.state.lock(), () -> {
                if (forTests) {
                    mesh.installer.forTests();
                }
                mesh.setup(List.of("broker", "filter-service", "envoy", "xds-server"));
                Say.say("ready: Java " + Runtime.version().feature() + " at " + System.getProperty("java.home") + ", Envoy "
                        + Installer.ENVOY_VERSION + ", filter-service " + mesh.installer.filterJar());
            });
        }
    }

    @Command(name = "keyset", description = "keyset create [--out F]: create a new Tink keyset (default $MESHCRYPT_HOME/keyset.json;"
            + " never overwrites an existing one)", subcommands = Keyset.Create.class)
    static final class Keyset implements Runnable {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public void run() {
            throw new CommandLine.ParameterException(spec.commandLine(), "usage: ./meshcrypt keyset create [--out FILE]");
        }

        @Command(name = "create", description = "create a new Tink keyset (the filter-service's keys CLI)")
        static final class Create implements Runnable {
            @CommandLine.ParentCommand
            Keyset keyset;

            @Option(names = "--out", paramLabel = "FILE", description = "default: $MESHCRYPT_HOME/keyset.json")
            Path out;

            @Override
            public void run() {
                Main main = (Main) keyset.spec.parent().userObject();
                Components mesh = main.components();
                Main.run(mesh.state.lock(), () -> {
                    mesh.installer.filterService();
                    mesh.createKeyset(out != null ? out.toAbsolutePath() : mesh.state.file("keyset.json"));
                });
            }
        }
    }

    @Command(name = "test", description = "setup (as CI: everything the tests need), then ./mvnw -B verify [maven args]")
    static final class Test implements Callable<Integer> {
        @CommandLine.ParentCommand
        Main main;

        @Unmatched
        List<String> mavenArgs = new ArrayList<>();

        @Override
        public Integer call() {
            Components mesh = main.components();
            Main.run(mesh.state.lock(), () -> {
                mesh.installer.forTests();
                mesh.setup(List.of("broker", "filter-service", "envoy", "xds-server"));
            });
            List<String> command = new ArrayList<>(List.of("./mvnw", "-B", "verify",
                    // names the Envoy binary, so tests that need one fail rather than skip when it is missing
                    "-Dmeshcrypt.envoy=" + mesh.envoyBin()));
            command.addAll(mavenArgs);
            ProcessBuilder pb = new ProcessBuilder(command).directory(main.root.toFile()).inheritIO();
            List<String> path = new ArrayList<>(mesh.installer.testPath().stream().map(Path::toString).toList());
            path.add(main.env.getOrDefault("PATH", ""));
            pb.environment().put("PATH", String.join(":", path));
            try {
                Process p = pb.start();
                Signals.onInterrupt(() -> { });
                return p.waitFor();
            } catch (IOException e) {
                throw new LauncherException("cannot run ./mvnw: " + e.getMessage(), e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return 130;
            }
        }
    }
}
