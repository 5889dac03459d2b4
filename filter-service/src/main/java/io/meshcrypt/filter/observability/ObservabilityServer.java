package io.meshcrypt.filter.observability;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Supplier;

/**
 * The filter-service's HTTP endpoint (JDK HttpServer, one daemon thread, GET only): {@code /metrics} in Prometheus
 * text, {@code /healthz} 200 while the process serves, {@code /readyz} 200 when {@link Readiness} says ready, else 503
 * with one line saying why.
 */
public final class ObservabilityServer implements AutoCloseable {
    private static final String PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8";
    private static final String TEXT = "text/plain; charset=utf-8";

    private final HttpServer http;
    private final ExecutorService executor;

    private ObservabilityServer(HttpServer http, ExecutorService executor) {
        this.http = http;
        this.executor = executor;
    }

    /** @param metrics the Prometheus text, rendered per scrape */
    public static ObservabilityServer start(InetSocketAddress address, Supplier<String> metrics, Readiness readiness)
            throws IOException {
        HttpServer http = HttpServer.create(address, 16);
        http.createContext("/metrics", exchange -> respond(exchange, 200, PROMETHEUS_TEXT, metrics.get()));
        http.createContext("/healthz", exchange -> respond(exchange, 200, TEXT, "ok\n"));
        http.createContext("/readyz", exchange -> {
            String reason = readiness.notReadyReason();
            respond(exchange, reason == null ? 200 : 503, TEXT, (reason == null ? "ready" : reason) + "\n");
        });
        ExecutorService executor = Executors.newSingleThreadExecutor(Thread.ofPlatform().daemon().name("observability").factory());
        http.setExecutor(executor);
        http.start();
        return new ObservabilityServer(http, executor);
    }

    /** The bound address (its port when started on port 0). */
    public InetSocketAddress address() {
        return http.getAddress();
    }

    private static void respond(HttpExchange exchange, int status, String type, String body) throws IOException {
        try (exchange) {
            // the context matches by prefix: /metricsX is not /metrics
            if (!exchange.getRequestURI().getPath().equals(exchange.getHttpContext().getPath())) {
                exchange.sendResponseHeaders(404, -1);
                return;
            }
            if (!exchange.getRequestMethod().equals("GET") && !exchange.getRequestMethod().equals("HEAD")) {
                exchange.getResponseHeaders().set("Allow", "GET, HEAD");
                exchange.sendResponseHeaders(405, -1);
                return;
            }
            byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
            exchange.getResponseHeaders().set("Content-Type", type);
            if (exchange.getRequestMethod().equals("HEAD")) {
                exchange.sendResponseHeaders(status, -1);
                return;
            }
            exchange.sendResponseHeaders(status, bytes.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(bytes);
            }
        }
    }

    @Override
    public void close() {
        http.stop(0);
        executor.shutdownNow();
    }
}
