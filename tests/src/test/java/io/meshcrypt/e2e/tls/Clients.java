package io.meshcrypt.e2e.tls;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.Collectors;

/**
 * The non-Java clients of the TLS/SASL test, as separate processes: kcat and confluent-kafka-python (both librdkafka).
 * Credentials go to them in a file (kcat -F) or the environment (Python), never on the command line.
 */
final class Clients {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long TIMEOUT_SECONDS = 60;

    private Clients() {
    }

    /** What a client process printed (standard output and error) and how it exited. */
    record Result(int exit, String output) {
    }

    /** kcat against {@code 127.0.0.1:bootstrap} with librdkafka {@code settings}. */
    static Kcat kcat(Path home, int bootstrap, Map<String, String> settings) throws IOException {
        Path config = Files.createTempFile(home, "kcat-", ".conf", PosixFilePermissions.asFileAttribute(
                PosixFilePermissions.fromString("rw-------")));
        Files.writeString(config, settings.entrySet().stream().map(e -> e.getKey() + "=" + e.getValue())
                .collect(Collectors.joining("\n", "", "\n")));
        return new Kcat(List.of("kcat", "-F", config.toString(), "-b", "127.0.0.1:" + bootstrap), home.resolve("clients.log"));
    }

    /** @param errors where the client's standard error goes when its output is parsed */
    record Kcat(List<String> base, Path errors) {
        void produce(String topic, List<String> values) throws IOException {
            Result r = run(command("-P", "-t", topic), String.join("\n", values) + "\n", Map.of(), null);
            if (r.exit() != 0) {
                throw new AssertionError("kcat -P failed (" + r.exit() + "): " + r.output());
            }
        }

        /** The values of {@code topic} from the beginning, one per line; {@code expected} bounds the read. */
        List<String> consume(String topic, int expected) throws IOException {
            Result r = run(command("-C", "-t", topic, "-o", "beginning", "-c", Integer.toString(expected), "-e", "-q",
                    "-f", "%s\\n"), "", Map.of(), errors);
            if (r.exit() != 0) {
                throw new AssertionError("kcat -C failed (" + r.exit() + "): " + r.output());
            }
            return r.output().lines().toList();
        }

        /** kcat -L with a short timeout: its exit code and what it printed. */
        Result metadata() throws IOException {
            return run(command("-L", "-m", "10"), "", Map.of(), null);
        }

        private List<String> command(String... args) {
            List<String> c = new ArrayList<>(base);
            c.addAll(List.of(args));
            return c;
        }
    }

    /** confluent-kafka-python in a venv under tests/target, installed on first use (pip); a failed install fails. */
    static Python python(Path home) throws IOException {
        Path venv = home.resolveSibling("python-clients");
        Path python = venv.resolve("bin/python");
        if (run(List.of(python.toString(), "-c", "import confluent_kafka"), "", Map.of(), null).exit() != 0) {
            for (List<String> step : List.of(List.of("python3", "-m", "venv", venv.toString()),
                    List.of(venv.resolve("bin/pip").toString(), "install", "--quiet", "--disable-pip-version-check",
                            "confluent-kafka"))) {
                Result r = run(step, "", Map.of(), null);
                if (r.exit() != 0) {
                    throw new AssertionError("installing confluent-kafka-python failed: " + step + "\n" + r.output());
                }
            }
        }
        Path script = home.resolve("confluent_clients.py");
        try (InputStream in = Clients.class.getResourceAsStream("/tls/confluent_clients.py")) {
            Files.write(script, in.readAllBytes());
        }
        return new Python(python, script, home.resolve("clients.log"));
    }

    record Python(Path python, Path script, Path errors) {
        /** Produces {@code values}, then reads as many back from the start of the topic. */
        List<String> roundTrip(Map<String, String> settings, String topic, List<String> values) throws IOException {
            List<String> command = new ArrayList<>(List.of(python.toString(), script.toString(), "roundtrip", topic));
            command.addAll(values);
            Result r = run(command, "", Map.of("KAFKA_CONF", JSON.writeValueAsString(settings)), errors);
            if (r.exit() != 0) {
                throw new AssertionError("confluent-kafka-python failed (" + r.exit() + "): " + r.output());
            }
            return JSON.readValue(r.output(), new TypeReference<List<String>>() { });
        }

        /** The errors the client reported asking for metadata, with its logs. */
        String metadataErrors(Map<String, String> settings) throws IOException {
            return run(List.of(python.toString(), script.toString(), "metadata"), "",
                    Map.of("KAFKA_CONF", JSON.writeValueAsString(settings)), null).output();
        }
    }

    /**
     * Runs {@code command} with {@code input} on standard input and {@code env} added to its environment. With
     * {@code errorsTo}, standard error goes to that file (outputs that are parsed); without, into the output.
     */
    private static Result run(List<String> command, String input, Map<String, String> env, Path errorsTo) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(command);
        pb.environment().putAll(env);
        if (errorsTo == null) {
            pb.redirectErrorStream(true);
        } else {
            pb.redirectError(ProcessBuilder.Redirect.appendTo(errorsTo.toFile()));
        }
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            return new Result(127, command.getFirst() + ": " + e.getMessage());
        }
        CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> {
            try {
                return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
        try {
            p.getOutputStream().write(input.getBytes(StandardCharsets.UTF_8));
            p.getOutputStream().close();
            if (!p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError(command.getFirst() + " did not finish within " + TIMEOUT_SECONDS + " s");
            }
            return new Result(p.exitValue(), out.get(10, TimeUnit.SECONDS));
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        } catch (ExecutionException | TimeoutException e) {
            throw new IllegalStateException("reading the output of " + command.getFirst(), e);
        }
    }
}
