package io.meshcrypt.xds.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Executors;
import java.util.function.Supplier;

/**
 * {@code GET /status} (JSON) and {@code GET /metrics} (Prometheus text), on a few daemon threads. The JDK's server
 * reads a request on the thread that answers it: one thread would let a single client that never finishes its request
 * stall every scrape, so there are {@value #THREADS}, and the server's own deadlines close a request not received (or a
 * response not taken) within {@value #REQUEST_SECONDS} s, which frees a thread such a client holds.
 */
public final class StatusHttpServer implements AutoCloseable {
    static final int THREADS = 4;
    static final int REQUEST_SECONDS = 10;

    static {
        // Read once, when the JDK's server first starts: set before that unless the operator set them.
        setIfAbsent("sun.net.httpserver.maxReqTime", Integer.toString(REQUEST_SECONDS));
        setIfAbsent("sun.net.httpserver.maxRspTime", Integer.toString(REQUEST_SECONDS));
        setIfAbsent("sun.net.httpserver.maxReqHeaders", "100");
    }

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final String PROMETHEUS_TEXT = "text/plain; version=0.0.4";

    private final HttpServer http;

    private StatusHttpServer(HttpServer http) {
        this.http = http;
    }

    public static StatusHttpServer start(InetSocketAddress address, Supplier<?> status, PrometheusMeterRegistry metrics) throws IOException {
        HttpServer http = HttpServer.create(address, 16);
        http.createContext("/status", exchange -> respond(exchange, "application/json", () -> JSON.writeValueAsString(status.get()) + "\n"));
        http.createContext("/metrics", exchange -> respond(exchange, PROMETHEUS_TEXT, metrics::scrape));
        http.setExecutor(Executors.newFixedThreadPool(THREADS, r -> {
            Thread t = new Thread(r, "xds-status");
            t.setDaemon(true);
            return t;
        }));
        http.start();
        return new StatusHttpServer(http);
    }

    public InetSocketAddress address() {
        return http.getAddress();
    }

    private interface Body {
        String render() throws IOException;
    }

    private static void respond(HttpExchange exchange, String type, Body body) throws IOException {
        try (exchange) {
            if (!exchange.getRequestMethod().equals("GET")) {
                exchange.sendResponseHeaders(405, -1);
                return;
            }
            byte[] bytes = body.render().getBytes(StandardCharsets.UTF_8);
            exchange.getResponseHeaders().set("Content-Type", type);
            exchange.sendResponseHeaders(200, bytes.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(bytes);
            }
        }
    }

    @Override
    public void close() {
        http.stop(0);
    }

    private static void setIfAbsent(String property, String value) {
        if (System.getProperty(property) == null) {
            System.setProperty(property, value);
        }
    }
}
