package io.meshcrypt.istio;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The filter-service's own jar ({@code serve --config FILE}) in a process of its own, as its container runs it: what a
 * test learns from it is what filter.yaml makes of the service, not what a test wires by hand. Ready once its gRPC
 * port accepts connections (the readiness signal Kubernetes uses, see deployment.yaml).
 */
final class FilterServiceProcess implements AutoCloseable {

    private static final Duration READY = Duration.ofSeconds(60);
    private static final Duration STOP = Duration.ofSeconds(10);

    private final Process process;
    private final Path log;

    private FilterServiceProcess(Process process, Path log) {
        this.process = process;
        this.log = log;
    }

    /** Starts {@code java -jar filter-service/target/meshcrypt-filter-service.jar serve --config config}. */
    static FilterServiceProcess start(Path root, Path config, int port, Path log) throws IOException {
        Path jar = root.resolve("filter-service/target/meshcrypt-filter-service.jar");
        if (!Files.isReadable(jar)) {
            throw new IllegalStateException(jar + " is missing: build the filter-service first (./mvnw -o package)");
        }
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process process = new ProcessBuilder(List.of(java, "-Xmx256m", "-jar", jar.toString(), "serve", "--config",
                config.toString())).directory(config.getParent().toFile()).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
        FilterServiceProcess service = new FilterServiceProcess(process, log);
        try {
            service.awaitListening(port);
        } catch (IOException | RuntimeException | Error e) {
            service.close();
            throw e;
        }
        return service;
    }

    private void awaitListening(int port) throws IOException {
        long deadline = System.nanoTime() + READY.toNanos();
        while (true) {
            try (Socket socket = new Socket()) {
                socket.connect(new InetSocketAddress("127.0.0.1", port), 200);
                return;
            } catch (IOException notYet) {
                if (!process.isAlive()) {
                    throw new IllegalStateException("the filter-service exited at start (code " + process.exitValue()
                            + "); log " + log + ":\n" + Files.readString(log));
                }
                if (System.nanoTime() - deadline > 0) {
                    throw new IllegalStateException("the filter-service is not listening on " + port + " after " + READY
                            + "; log " + log + ":\n" + Files.readString(log));
                }
            }
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for the filter-service", e);
            }
        }
    }

    /** SIGTERM (the service drains its streams), then SIGKILL after 10 s. */
    @Override
    public void close() {
        process.destroy();
        try {
            process.onExit().get(STOP.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException | ExecutionException e) {
            process.destroyForcibly().onExit().join();
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }
}
