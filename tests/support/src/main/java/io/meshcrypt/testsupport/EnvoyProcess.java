package io.meshcrypt.testsupport;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * One Envoy the tests start with a config file: started, ready once its admin API says LIVE, stopped on close.
 *
 * <p>The binary is named by the {@value #BINARY_PROPERTY} system property, which {@code ./meshcrypt test} passes; there
 * is no other rule, so a test that needs Envoy fails (never skips, never picks up another Envoy) when it is not named.
 */
public final class EnvoyProcess implements AutoCloseable {

    public static final String BINARY_PROPERTY = "meshcrypt.envoy";
    public static final Duration DEFAULT_READY_TIMEOUT = Duration.ofSeconds(60);
    private static final Duration STOP_TIMEOUT = Duration.ofSeconds(10);
    /** Generous: a busy 2-core machine can take seconds to render /stats after thousands of connections. */
    private static final Duration ADMIN_TIMEOUT = Duration.ofSeconds(10);
    private static final HttpClient HTTP = HttpClient.newHttpClient();

    /**
     * What runs besides the config: the binary, environment added to the test's own (e.g.
     * {@code ENVOY_DYNAMIC_MODULES_SEARCH_PATH} for dynamic modules) and extra arguments.
     */
    public record Command(Path binary, Map<String, String> environment, List<String> args) {
        public Command {
            environment = Map.copyOf(environment);
            args = List.copyOf(args);
        }

        /** {@link EnvoyProcess#binary()} with these arguments and no added environment. */
        public static Command of(String... args) {
            return new Command(EnvoyProcess.binary(), Map.of(), List.of(args));
        }

        public Command withBinary(Path other) {
            return new Command(other, environment, args);
        }

        public Command withEnvironment(String name, String value) {
            Map<String, String> more = new HashMap<>(environment);
            more.put(name, value);
            return new Command(binary, more, args);
        }

        ProcessBuilder processBuilder(List<String> head, Path config) {
            List<String> command = new ArrayList<>();
            command.add(binary.toString());
            command.addAll(head);
            command.add(config.toString());
            command.addAll(args);
            ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
            pb.environment().putAll(environment);
            return pb;
        }
    }

    /** The outcome of {@code envoy --mode validate}. */
    public record Validation(int exitCode, String output) {
    }

    private final Process process;
    private final int adminPort;
    private final Path log;

    private EnvoyProcess(Process process, int adminPort, Path log) {
        this.process = process;
        this.adminPort = adminPort;
        this.log = log;
    }

    /** The Envoy binary {@value #BINARY_PROPERTY} names; fails saying how to name one. */
    public static Path binary() {
        String named = System.getProperty(BINARY_PROPERTY, "");
        if (named.isBlank()) {
            throw new IllegalStateException("no Envoy binary: run the tests with ./meshcrypt test, which passes -D"
                    + BINARY_PROPERTY + ", or pass -D" + BINARY_PROPERTY + "=/path/to/envoy to ./mvnw");
        }
        Path binary = Path.of(named);
        if (!Files.isExecutable(binary)) {
            throw new IllegalStateException("-D" + BINARY_PROPERTY + "=" + named + " is not an executable Envoy");
        }
        return binary;
    }

    /** As {@link #start(Path, int, Path, Duration, String...)} with {@link #DEFAULT_READY_TIMEOUT}. */
    public static EnvoyProcess start(Path config, int adminPort, Path log, String... extraArgs) throws IOException {
        return start(config, adminPort, log, DEFAULT_READY_TIMEOUT, extraArgs);
    }

    /**
     * Starts {@code envoy -c config --disable-hot-restart extraArgs...} in the config's directory, its output appended
     * to {@code log}, and waits until the admin API on {@code adminPort} reports LIVE.
     *
     * @throws IllegalStateException when Envoy exits or is not LIVE in time (it is stopped; the log is in the message)
     */
    public static EnvoyProcess start(Path config, int adminPort, Path log, Duration readyTimeout, String... extraArgs)
            throws IOException {
        return start(config, adminPort, log, readyTimeout, Command.of(extraArgs));
    }

    /** As {@link #start(Path, int, Path, Duration, String...)}, run as {@code command} says. */
    public static EnvoyProcess start(Path config, int adminPort, Path log, Duration readyTimeout, Command command)
            throws IOException {
        Files.createDirectories(log.toAbsolutePath().getParent());
        Process process = command.processBuilder(List.of("--disable-hot-restart", "-c"), config)
                .directory(config.toAbsolutePath().getParent().toFile())
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
        EnvoyProcess envoy = new EnvoyProcess(process, adminPort, log);
        try {
            envoy.awaitReady(readyTimeout);
        } catch (RuntimeException | Error e) {
            envoy.close();
            throw e;
        }
        return envoy;
    }

    /** Runs {@code envoy --mode validate -c config}, its output written to {@code log}. */
    public static Validation validate(Path config, Path log, String... extraArgs) throws IOException, InterruptedException {
        return validate(config, log, Command.of(extraArgs));
    }

    /** As {@link #validate(Path, Path, String...)}, run as {@code command} says. */
    public static Validation validate(Path config, Path log, Command command) throws IOException, InterruptedException {
        Process p = command.processBuilder(List.of("--mode", "validate", "-c"), config)
                .redirectOutput(log.toFile()).start();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException("envoy --mode validate did not finish within 60 s: " + config);
        }
        return new Validation(p.exitValue(), config + "\n" + Files.readString(log));
    }

    private void awaitReady(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!"LIVE".equals(admin("/ready").strip())) {
            if (!process.isAlive()) {
                throw new IllegalStateException("Envoy exited at start (code " + process.exitValue() + "); log " + log
                        + ":\n" + logText());
            }
            if (System.nanoTime() - deadline > 0) {
                throw new IllegalStateException("Envoy not LIVE on admin port " + adminPort + " within " + timeout
                        + "; log " + log + ":\n" + logText());
            }
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for Envoy", e);
            }
        }
    }

    /** GET on the admin API; empty when it does not answer (yet). */
    public String admin(String path) {
        try {
            return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + adminPort + path))
                    .timeout(ADMIN_TIMEOUT).build(), HttpResponse.BodyHandlers.ofString()).body();
        } catch (IOException e) {
            return "";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    public int adminPort() {
        return adminPort;
    }

    /** The Envoy process itself (its pid, whether it is alive). */
    public Process process() {
        return process;
    }

    /** What Envoy has logged so far. */
    public String logText() {
        try {
            return Files.readString(log);
        } catch (IOException e) {
            return "(" + e + ")";
        }
    }

    /** SIGTERM, then SIGKILL if Envoy is still running after 10 s. */
    @Override
    public void close() {
        process.destroy();
        try {
            if (!process.waitFor(STOP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
                process.destroyForcibly().waitFor(STOP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }
}
