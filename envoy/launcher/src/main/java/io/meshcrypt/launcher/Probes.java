package io.meshcrypt.launcher;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Readiness checks: a port that accepts, an Envoy admin that says LIVE, Kafka metadata naming a broker. */
final class Probes {

    private Probes() {
    }

    static boolean portOpen(int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), 1000);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** The body of a GET on 127.0.0.1, or null when it fails or answers other than 200. */
    static String get(int port, String path) {
        MeshScrape.Answer a = MeshScrape.get(port, path);
        return a.ok() ? a.body() : null;
    }

    /** The same GET inside a network namespace (its own loopback), through curl. */
    static String getIn(String netns, int port, String path) {
        Result r = run(List.of("ip", "netns", "exec", netns, "curl", "-fsS", "--max-time", "2", "http://127.0.0.1:" + port + path));
        return r.exit() == 0 ? r.output() : null;
    }

    static boolean adminLive(int adminPort) {
        String body = get(adminPort, "/ready");
        return body != null && body.strip().equals("LIVE");
    }

    static boolean adminLiveIn(String netns, int adminPort) {
        String body = getIn(netns, adminPort, "/ready");
        return body != null && body.strip().equals("LIVE");
    }

    /** An Envoy may report LIVE before its first xDS answer: the listener it waits for is in /listeners. */
    static boolean hasListener(String netns, int adminPort, String name) {
        String body = netns == null ? get(adminPort, "/listeners") : getIn(netns, adminPort, "/listeners");
        return body != null && body.lines().anyMatch(l -> l.startsWith(name + "::"));
    }

    /**
     * Kafka metadata from {@code bootstrap} (kcat) names broker 1 at {@code expectedBroker1Port}. Through an Envoy
     * this proves client, Envoy, filter-service and broker work together and that clients stay behind Envoy.
     */
    static boolean metadataNames(int bootstrapPort, int expectedBroker1Port) {
        return metadataNames(bootstrapPort, Map.of(1, expectedBroker1Port));
    }

    /** Kafka metadata from {@code bootstrap} names broker {@code id} at {@code expectedPort}. */
    static boolean metadataNames(int bootstrapPort, int id, int expectedPort) {
        return metadataNames(bootstrapPort, Map.of(id, expectedPort));
    }

    /** Kafka metadata from {@code bootstrap} names each broker id of {@code expected} at its port there. */
    static boolean metadataNames(int bootstrapPort, Map<Integer, Integer> expected) {
        Result r = run(List.of("kcat", "-b", "127.0.0.1:" + bootstrapPort, "-L", "-m", "3"));
        if (r.exit() != 0) {
            return false;
        }
        // kcat: "  broker 2 at 127.0.0.1:19212 (controller)"
        List<String> lines = r.output().lines().map(String::strip).toList();
        return expected.entrySet().stream().allMatch(e -> lines.stream().anyMatch(l -> l.equals("broker " + e.getKey() + " at 127.0.0.1:" + e.getValue())
                || l.startsWith("broker " + e.getKey() + " at 127.0.0.1:" + e.getValue() + " ")));
    }

    record Result(int exit, String output) {
    }

    /** Runs a short command, standard error discarded; exit 127 when it cannot start. */
    static Result run(List<String> command) {
        try {
            Process p = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.DISCARD).start();
            p.getOutputStream().close();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return new Result(124, out);
            }
            return new Result(p.exitValue(), out);
        } catch (IOException e) {
            return new Result(127, "");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Result(130, "");
        }
    }

    /** Runs a command with its output on the launcher's own; fails with {@code failure} unless it exits 0. */
    static void runVisible(List<String> command, java.nio.file.Path dir, String failure) {
        try {
            Process p = new ProcessBuilder(new ArrayList<>(command)).directory(dir.toFile()).inheritIO().start();
            if (p.waitFor() != 0) {
                throw new LauncherException(failure);
            }
        } catch (IOException e) {
            throw new LauncherException(failure + ": " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new LauncherException(failure + ": interrupted");
        }
    }

    static boolean onPath(String tool) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (!dir.isEmpty() && java.nio.file.Files.isExecutable(java.nio.file.Path.of(dir, tool))) {
                return true;
            }
        }
        return false;
    }
}
