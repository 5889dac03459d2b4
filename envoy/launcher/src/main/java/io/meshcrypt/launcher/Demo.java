package io.meshcrypt.launcher;

import java.io.File;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/** {@code ./meshcrypt demo}: the mesh plus the sample apps, each Kafka app behind its own sidecar, then the live view. */
final class Demo {

    static final String TOPIC = "meshcrypt-demo";

    private final Components mesh;
    private final PortPlan ports;
    private final StateDir state;
    private final Supervisor supervisor;
    private final Path sample;
    private final String interval;
    private int step;
    private int steps;

    Demo(Components mesh, String intervalMs) {
        this.mesh = mesh;
        this.ports = mesh.ports;
        this.state = mesh.state;
        this.supervisor = mesh.supervisor;
        this.sample = mesh.root.resolve("sample-apps");
        this.interval = intervalMs == null || intervalMs.isEmpty() ? "1000" : intervalMs;
    }

    private void progress(String what) {
        step++;
        System.out.printf("%n[%d/%d] %s%n", step, steps, what);
        System.out.flush();
    }

    /** What Kafka app {@code app} dials: its own sidecar (explicit) or the broker's real address (transparent). */
    private String kafkaBootstrap(KafkaApp app) {
        return mesh.transparent() ? ports.brokerRealHost() + ":" + ports.brokerTransparent() : "127.0.0.1:" + ports.appSidecar(app).bootstrap();
    }

    void start(boolean transparent) {
        steps = 9 + (transparent ? 2 : 0);
        progress("setup: JDK, Envoy " + Installer.ENVOY_VERSION + ", broker classpath, filter-service, sample apps (built once)");
        Netns netns = new Netns(mesh.root, state, ports);
        if (transparent) {
            mesh.installer.transparentTools();
        }
        mesh.setup(List.of("broker", "filter-service", "envoy", "xds-server"));
        mesh.installer.sampleApps();
        mesh.setMode(transparent ? "transparent" : "explicit");
        // the demo's sidecars front one broker: a cluster's data left by up --brokers N is refused, not half-served
        mesh.useBrokers(1);
        mesh.ensureCertificates();
        if (transparent) {
            progress("network namespaces " + String.join(" ", netns.names()) + ", each app's with the init script's iptables REDIRECT");
            if (!supervisor.isRunning("broker")) {
                netns.up();
            }
        }
        progress("Kafka broker");
        mesh.writeMeshFile(transparent ? MeshFile.transparentDemo(ports) : MeshFile.demo(ports));
        mesh.startBrokers();
        progress("xDS server (127.0.0.1:" + ports.xds() + ", status 127.0.0.1:" + ports.xdsStatus() + "): the mesh file's listeners for"
                + " the sidecars, its policy and HTTP rules for the filter-service");
        mesh.startXdsServer();
        progress("filter-service (ext_proc for Kafka and HTTP; policy and HTTP rules from the xDS server)");
        mesh.startFilterService();
        if (transparent) {
            progress("the relay that lets the app namespaces reach the xDS server and the filter-service ("
                    + ports.brokerRealHost() + ":" + ports.relayXds() + ", :" + ports.relayExtProc() + ")");
            mesh.startRelay();
            progress("Envoy sidecars in the app namespaces (uid " + Netns.PROXY_UID + ", original_dst on 127.0.0.1:"
                    + PortPlan.NAMESPACE_SIDECAR_PORT + "), configured by the xDS server");
            for (KafkaApp app : KafkaApp.values()) {
                mesh.startNamespaceSidecar(app, netns.of(app));
            }
        } else {
            progress("the Envoy Kafka sidecars the xDS server configures: one per app (bootstrap " + ports.appSidecar(KafkaApp.GO).bootstrap() + ", "
                    + ports.appSidecar(KafkaApp.NODE).bootstrap() + ", " + ports.appSidecar(KafkaApp.JAVA).bootstrap()
                    + "), one shared (127.0.0.1:" + ports.envoyBootstrap() + ") for your own clients");
            mesh.startEnvoy();
            mesh.awaitMesh(ports.envoyBootstrap(), ports.envoyBroker1(), "envoy");
            for (KafkaApp app : KafkaApp.values()) {
                mesh.startAppSidecar(app);
            }
        }
        progress("HTTP echo service (127.0.0.1:" + ports.httpApp() + ") and its Envoy sidecar (127.0.0.1:" + ports.httpSidecar() + ")");
        startApp("http-echo", "its HTTP port", "Started EchoApplication", Map.of("HTTP_PORT", Integer.toString(ports.httpApp())),
                List.of(Installer.java(), "-Xmx256m", "-XX:TieredStopAtLevel=1", "-jar", sample.resolve("spring/http-echo/target/http-echo.jar").toString()));
        mesh.startHttpSidecar();
        String javaBootstrap = kafkaBootstrap(KafkaApp.JAVA);
        progress("Spring Boot consumer (spring-kafka) -> " + javaBootstrap);
        startApp("spring-consumer", "its start", "Started ConsumerApplication", Map.of("KAFKA_BOOTSTRAP", javaBootstrap, "TOPIC", TOPIC),
                List.of(Installer.java(), "-Xmx256m", "-XX:TieredStopAtLevel=1", "-jar", sample.resolve("spring/consumer/target/spring-consumer.jar").toString()));
        progress("producers: Go (franz-go) -> " + kafkaBootstrap(KafkaApp.GO) + " and Node (kafkajs) -> " + kafkaBootstrap(KafkaApp.NODE));
        startApp("go-producer", "its first acknowledged record", "^sent ", producerEnv(KafkaApp.GO),
                List.of(sample.resolve("go-producer/go-producer").toString()));
        startApp("node-producer", "its first acknowledged record", "^sent ", producerEnv(KafkaApp.NODE),
                List.of("node", sample.resolve("node-producer/producer.js").toString()));
        progress("views: broker tap (direct read of 127.0.0.1:" + ports.broker() + "), HTTP client");
        startApp("broker-tap", null, null, Map.of(),
                List.of("python3", sample.resolve("tools/broker-tap.py").toString(), "127.0.0.1:" + ports.broker(), TOPIC));
        startApp("http-client", "its first answer", "^got ", Map.of("HTTP_URL", "http://127.0.0.1:" + ports.httpSidecar(), "INTERVAL_MS", interval),
                List.of(sample.resolve("tools/http-client.sh").toString()));
        writeEndpoints();
        Say.say("demo is up (" + state.mode() + " mode); endpoints in " + state.file("endpoints.env"));
        try {
            System.out.print(Files.readString(state.file("endpoints.env")));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private Map<String, String> producerEnv(KafkaApp app) {
        return Map.of("TOPIC", TOPIC, "INTERVAL_MS", interval, "KAFKA_BOOTSTRAP", kafkaBootstrap(app));
    }

    /** Starts an app (in its namespace in transparent mode); its log holds this run only, read from the top. */
    private void startApp(String component, String what, String readyRegex, Map<String, String> env, List<String> command) {
        if (supervisor.isRunning(component)) {
            return;
        }
        try {
            Files.writeString(state.log(component), "");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        String ns = mesh.transparent() ? new Netns(mesh.root, state, ports).ofComponent(component) : null;
        List<String> full = new ArrayList<>();
        if (ns != null) {
            full.addAll(List.of("ip", "netns", "exec", ns));
        }
        full.addAll(command);
        supervisor.launch(component, state.dir(), env, full);
        if (readyRegex != null) {
            Pattern ready = Pattern.compile(readyRegex, Pattern.MULTILINE);
            supervisor.await(component, what, () -> ready.matcher(readLog(component)).find());
        }
    }

    private String readLog(String component) {
        try {
            return new String(Files.readAllBytes(state.log(component)), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "";
        }
    }

    private void writeEndpoints() {
        StringBuilder sb = new StringBuilder();
        String mode = state.mode();
        sb.append("MESH_MODE=").append(mode).append('\n');
        if (mode.equals("transparent")) {
            sb.append("KAFKA_BOOTSTRAP=").append(kafkaBootstrap(KafkaApp.GO)).append('\n');
            sb.append("SIDECAR_ADMIN=127.0.0.1:").append(ports.namespaceSidecarAdmin())
                    .append("   # inside each app namespace: ip netns exec NS curl ...\n");
            sb.append("RELAY_ADMIN=127.0.0.1:").append(ports.relayAdmin()).append('\n');
            sb.append("NETNS=").append(String.join(",", new Netns(mesh.root, state, ports).names())).append('\n');
        } else {
            sb.append("KAFKA_BOOTSTRAP=127.0.0.1:").append(ports.envoyBootstrap()).append("   # the shared sidecar (node ")
                    .append(MeshFile.SHARED_NODE).append("), for your own clients\n");
            sb.append("ENVOY_ADMIN=127.0.0.1:").append(ports.envoyAdmin()).append('\n');
            for (KafkaApp app : KafkaApp.values()) {
                String key = app.component().toUpperCase(java.util.Locale.ROOT).replace('-', '_');
                sb.append(key).append("_BOOTSTRAP=127.0.0.1:").append(ports.appSidecar(app).bootstrap()).append('\n');
                sb.append(key).append("_ENVOY_ADMIN=127.0.0.1:").append(ports.appSidecar(app).admin()).append('\n');
            }
        }
        sb.append("BROKER_DIRECT=127.0.0.1:").append(ports.broker()).append('\n');
        sb.append("FILTER_GRPC=127.0.0.1:").append(ports.filterGrpc()).append('\n');
        sb.append("FILTER_METRICS=http://127.0.0.1:").append(ports.filterMetrics()).append("/metrics   # also /healthz, /readyz\n");
        sb.append("DEMO_TOPIC=").append(TOPIC).append('\n');
        if (supervisor.isRunning("xds-server")) {
            sb.append("XDS=127.0.0.1:").append(ports.xds()).append('\n');
            sb.append("XDS_STATUS=http://127.0.0.1:").append(ports.xdsStatus()).append("/status\n");
        }
        sb.append("HTTP_URL=http://127.0.0.1:").append(ports.httpSidecar()).append('\n');
        sb.append("HTTP_APP=http://127.0.0.1:").append(ports.httpApp()).append('\n');
        sb.append("HTTP_ENVOY_ADMIN=127.0.0.1:").append(ports.httpSidecarAdmin()).append('\n');
        sb.append("LOGS=").append(state.logs()).append('\n');
        StateDir.writeAtomically(state.file("endpoints.env"), sb.toString());
    }

    // ---- the live view

    /** How often the view prints the mesh's summary line, read from the filter-service's and xDS server's endpoints. */
    private static final long SUMMARY_EVERY_NANOS = 5_000_000_000L;

    /**
     * Shows every app log line of interest as it comes, and every 5 s the mesh's one-line summary, until {@code stop} or
     * {@code durationSeconds} (0: no end).
     */
    void view(int columns, long durationSeconds, AtomicBoolean stop) {
        DemoView view = new DemoView(columns);
        MeshStatus meshStatus = mesh.meshStatus();
        System.out.println();
        view.header().forEach(System.out::println);
        Map<String, Tail> tails = new LinkedHashMap<>();
        for (String source : DemoView.SOURCES) {
            if (Files.exists(state.log(source))) {
                tails.put(source, new Tail(state.log(source).toFile()));
            }
        }
        Set<String> dead = new LinkedHashSet<>();
        long end = System.nanoTime() + durationSeconds * 1_000_000_000L;
        long nextCheck = 0;
        long nextSummary = System.nanoTime() + SUMMARY_EVERY_NANOS;
        while (!stop.get() && (durationSeconds == 0 || System.nanoTime() < end)) {
            tails.forEach((source, tail) -> tail.newLines().forEach(l -> view.rows(source, l).forEach(System.out::println)));
            System.out.flush();
            if (System.nanoTime() > nextCheck) {
                for (String c : Components.DEMO) {
                    if (!dead.contains(c) && Files.exists(state.pidFile(c)) && !supervisor.isRunning(c)) {
                        dead.add(c);
                        Say.say(c + " exited; its log: " + state.log(c));
                    }
                }
                nextCheck = System.nanoTime() + 1_000_000_000L;
            }
            if (System.nanoTime() > nextSummary) {
                System.out.println(view.summary(meshStatus.summaryLine()));
                nextSummary = System.nanoTime() + SUMMARY_EVERY_NANOS;
            }
            Supervisor.sleep(200);
        }
        tails.forEach((source, tail) -> tail.newLines().forEach(l -> view.rows(source, l).forEach(System.out::println)));
        System.out.flush();
    }

    /** Follows one log: the complete lines added since the last call. */
    private static final class Tail {
        private final File file;
        private long offset;
        private byte[] partial = new byte[0];

        Tail(File file) {
            this.file = file;
        }

        List<String> newLines() {
            List<String> lines = new ArrayList<>();
            try (RandomAccessFile f = new RandomAccessFile(file, "r")) {
                long length = f.length();
                if (length < offset) {
                    offset = 0; // truncated: start over, as tail -F does
                    partial = new byte[0];
                }
                if (length == offset) {
                    return lines;
                }
                byte[] chunk = new byte[(int) Math.min(length - offset, 1 << 20)];
                f.seek(offset);
                f.readFully(chunk);
                offset += chunk.length;
                byte[] all = new byte[partial.length + chunk.length];
                System.arraycopy(partial, 0, all, 0, partial.length);
                System.arraycopy(chunk, 0, all, partial.length, chunk.length);
                int start = 0;
                for (int i = 0; i < all.length; i++) {
                    if (all[i] == '\n') {
                        lines.add(new String(all, start, i - start, StandardCharsets.UTF_8));
                        start = i + 1;
                    }
                }
                partial = java.util.Arrays.copyOfRange(all, start, all.length);
            } catch (IOException e) {
                // gone for now (tail -F waits for it too)
            }
            return lines;
        }
    }

    // ---- the summary

    /** Prints what flowed; false when an app sent nothing, the consumer got nothing, or plaintext is at rest. */
    boolean summary() {
        long go = count("go-producer", "^sent ");
        long node = count("node-producer", "^sent ");
        long got = count("spring-consumer", "^received ");
        // one snapshot of the tap's log: it may still be writing, and the counts must add up
        List<String> tap = lines("broker-tap").stream().filter(l -> l.startsWith("held ")).toList();
        long held = tap.size();
        long sealed = tap.stream().filter(l -> l.contains("[meshcrypt envelope")).count();
        long plain = held - sealed;
        System.out.printf("%nsummary: go-producer sent %d, node-producer sent %d, spring-consumer received %d; the broker tap saw %d records,"
                + " %d of them meshcrypt envelopes, %d plaintext%n", go, node, got, held, sealed, plain);
        boolean ok = go > 0 && node > 0 && got > 0 && plain == 0;
        long httpSent = count("http-client", "^sent ");
        long rewritten = count("http-echo", "^received .*XXX-XX-XXXX");
        System.out.printf("summary: http client sent %d orders, the HTTP service received %d rewritten by the sidecar%n", httpSent, rewritten);
        System.out.flush();
        return ok && rewritten > 0;
    }

    private long count(String component, String regex) {
        Pattern p = Pattern.compile(regex);
        return lines(component).stream().filter(l -> p.matcher(l).find()).count();
    }

    private List<String> lines(String component) {
        try (Stream<String> s = new String(Files.readAllBytes(state.log(component)), StandardCharsets.UTF_8).lines()) {
            return s.toList();
        } catch (IOException e) {
            return List.of();
        }
    }
}
