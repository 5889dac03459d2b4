package io.meshcrypt.filter.http;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real Envoy 1.40 running envoy/http-sidecar.yaml.template. Listener and admin bind port 0; the admin address is
 * read from {@code --admin-address-path} and the listener's port from the admin API, so there is no port race.
 *
 * <p>The binary: {@code -Dmeshcrypt.envoy}, {@code $MESHCRYPT_ENVOY}, {@code $MESHCRYPT_HOME/venv/bin/envoy}, the
 * repository's {@code .meshcrypt/venv/bin/envoy} (what {@code ./meshcrypt setup} installs), or {@code envoy} on the
 * PATH. Without one the tests are skipped, saying so on stderr.
 */
final class EnvoySidecar implements AutoCloseable {

    private static final Duration START_TIMEOUT = Duration.ofSeconds(30);

    private final Process process;
    private final Path log;
    private final int adminPort;
    private final int listenerPort;

    private EnvoySidecar(Process process, Path log, int adminPort, int listenerPort) {
        this.process = process;
        this.log = log;
        this.adminPort = adminPort;
        this.listenerPort = listenerPort;
    }

    static EnvoySidecar start(Path dir, int appPort, int filterPort) throws Exception {
        Path binary = locateBinary();
        // ./meshcrypt test (and so CI) names the binary: there a missing Envoy is a failure, never a skip.
        String named = System.getProperty("meshcrypt.envoy");
        if (named != null && !Files.isExecutable(Path.of(named))) {
            throw new IllegalStateException("-Dmeshcrypt.envoy=" + named + " is not an executable Envoy");
        }
        if (binary == null) {
            // Said on stderr too: surefire counts skips without their reasons (this module has no SkipReport).
            String why = "no Envoy binary found (set -Dmeshcrypt.envoy or run ./meshcrypt setup)";
            System.err.println("[meshcrypt] SKIPPED the HTTP sidecar tests: " + why);
            assumeTrue(false, why);
        }
        String yaml = Files.readString(repoRoot().resolve("envoy/http-sidecar.yaml.template"))
                .replace("@@ENVOY_ADMIN_PORT@@", "0")
                .replace("@@HTTP_LISTEN_PORT@@", "0")
                .replace("@@APP_PORT@@", Integer.toString(appPort))
                .replace("@@FILTER_GRPC_PORT@@", Integer.toString(filterPort));
        Path config = dir.resolve("envoy.yaml");
        Files.writeString(config, yaml);
        Path adminAddress = dir.resolve("admin-address");
        Path log = dir.resolve("envoy.log");
        Process process = new ProcessBuilder(binary.toString(), "-c", config.toString(), "--disable-hot-restart",
                "--admin-address-path", adminAddress.toString(), "--log-level", "info")
                .redirectErrorStream(true)
                .redirectOutput(log.toFile())
                .start();
        try {
            long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
            HttpClient client = HttpClient.newHttpClient();
            while (true) {
                if (!process.isAlive()) {
                    throw new IllegalStateException("Envoy exited with " + process.exitValue() + ":\n" + Files.readString(log));
                }
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("Envoy not ready within " + START_TIMEOUT + ":\n" + Files.readString(log));
                }
                Integer ready = readiness(client, adminAddress);
                if (ready != null) {
                    int adminPort = ready;
                    return new EnvoySidecar(process, log, adminPort, listenerPort(client, adminPort));
                }
                TimeUnit.MILLISECONDS.sleep(50);
            }
        } catch (Exception | Error e) {
            process.destroyForcibly();
            throw e;
        }
    }

    /** @return the admin port once Envoy reports LIVE, else null */
    private static Integer readiness(HttpClient client, Path adminAddress) throws IOException, InterruptedException {
        if (!Files.exists(adminAddress)) {
            return null;
        }
        String address = Files.readString(adminAddress).strip();
        if (address.isEmpty()) {
            return null;
        }
        int port = Integer.parseInt(address.substring(address.lastIndexOf(':') + 1));
        try {
            HttpResponse<String> ready = client.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/ready")).build(),
                    HttpResponse.BodyHandlers.ofString());
            return ready.statusCode() == 200 && ready.body().strip().equals("LIVE") ? port : null;
        } catch (IOException e) {
            return null;
        }
    }

    private static int listenerPort(HttpClient client, int adminPort) throws IOException, InterruptedException {
        String json = client.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + adminPort + "/listeners?format=json")).build(),
                HttpResponse.BodyHandlers.ofString()).body();
        for (JsonNode listener : new ObjectMapper().readTree(json).path("listener_statuses")) {
            if (listener.path("name").asText().equals("http_inbound")) {
                return listener.path("local_address").path("socket_address").path("port_value").asInt();
            }
        }
        throw new IllegalStateException("listener http_inbound not found: " + json);
    }

    int port() {
        return listenerPort;
    }

    /** One admin stat value, e.g. {@code http.http_inbound.ext_proc.streams_started}. */
    long stat(String name) throws IOException, InterruptedException {
        String body = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(
                "http://127.0.0.1:" + adminPort + "/stats?filter=^" + name.replace(".", "\\.") + "$")).build(),
                HttpResponse.BodyHandlers.ofString()).body();
        for (String line : body.lines().toList()) {
            if (line.startsWith(name + ": ")) {
                return Long.parseLong(line.substring(name.length() + 2).strip());
            }
        }
        throw new IllegalStateException("no stat " + name + " in: " + body);
    }

    String log() throws IOException {
        return Files.readString(log, StandardCharsets.UTF_8);
    }

    @Override
    public void close() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
    }

    private static Path locateBinary() {
        List<String> candidates = new ArrayList<>();
        candidates.add(System.getProperty("meshcrypt.envoy"));
        candidates.add(System.getenv("MESHCRYPT_ENVOY"));
        String home = System.getenv("MESHCRYPT_HOME");
        if (home != null) {
            candidates.add(home + "/venv/bin/envoy");
        }
        candidates.add(repoRoot().resolve(".meshcrypt/venv/bin/envoy").toString());
        String path = System.getenv("PATH");
        if (path != null) {
            for (String dir : path.split(java.io.File.pathSeparator)) {
                candidates.add(dir + "/envoy");
            }
        }
        return candidates.stream().filter(c -> c != null && !c.isBlank()).map(Path::of)
                .filter(Files::isExecutable).findFirst().orElse(null);
    }

    static Path repoRoot() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("envoy/http-sidecar.yaml.template"))) {
                return p;
            }
        }
        throw new IllegalStateException("envoy/http-sidecar.yaml.template not found above " + Path.of("").toAbsolutePath());
    }
}
