package io.meshcrypt.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** ./meshcrypt status and the demo's summary line, read from stub filter-service, xDS server and Envoy admin endpoints. */
class MeshStatusTest {

    private static final String SCRAPE_BEFORE = """
            # TYPE meshcrypt_records_total counter
            meshcrypt_records_total{direction="fetch",outcome="decrypted",topic="orders"} 3.0
            meshcrypt_records_total{direction="fetch",outcome="denied",topic="orders"} 0.0
            meshcrypt_records_total{direction="produce",outcome="encrypted",topic="orders"} 5.0
            meshcrypt_records_total{direction="produce",outcome="encrypted",topic="other"} 0.0
            meshcrypt_records_total{direction="fetch",outcome="ciphertext",topic="audit"} 1.0
            meshcrypt_ready 1.0
            """;
    private static final String SCRAPE_AFTER = """
            meshcrypt_records_total{direction="fetch",outcome="decrypted",topic="orders"} 1203.0
            meshcrypt_records_total{direction="fetch",outcome="denied",topic="orders"} 2.0
            meshcrypt_records_total{direction="produce",outcome="encrypted",topic="orders"} 1205.0
            meshcrypt_records_total{direction="produce",outcome="encrypted",topic="other"} 0.0
            meshcrypt_records_total{direction="fetch",outcome="ciphertext",topic="audit"} 1.0
            """;
    private static final String XDS_STATUS = """
            {"meshFile": "/s/mesh.yaml", "version": "7-1a2b3c4d",
             "envoys": [
               {"node": "go-producer", "inMesh": true, "connected": true, "mode": "ADS", "serving": "7-1a2b3c4d",
                "acked": {"Cluster": "7-1a2b3c4d", "Listener": "7-1a2b3c4d"}, "nacks": 0},
               {"node": "kafka-apps", "inMesh": true, "connected": true, "mode": "ADS", "serving": "8-99999999",
                "acked": {"Cluster": "8-99999999", "Listener": "7-1a2b3c4d"}, "nacks": 1,
                "lastNack": {"type": "Listener", "version": "8-99999999", "detail": "bad filter", "at": "2026-12-01T07:00:00Z"}},
               {"node": "left", "inMesh": false, "connected": false, "mode": null, "serving": null, "acked": {}, "nacks": 0}
             ],
             "filterServices": []}
            """;

    private final List<HttpServer> servers = new ArrayList<>();

    @AfterEach
    void stop() {
        servers.forEach(s -> s.stop(0));
    }

    /** A stub on an ephemeral loopback port answering each path with the next of its (status, body) pairs, the last repeated. */
    private int stub(Map<String, List<MeshScrape.Answer>> answers) throws IOException {
        HttpServer http = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 8);
        answers.forEach((path, list) -> {
            List<MeshScrape.Answer> queue = new ArrayList<>(list);
            http.createContext(path, exchange -> {
                MeshScrape.Answer a = queue.size() > 1 ? queue.remove(0) : queue.get(0);
                byte[] body = a.body().getBytes(StandardCharsets.UTF_8);
                exchange.sendResponseHeaders(a.status(), body.length);
                try (OutputStream out = exchange.getResponseBody()) {
                    out.write(body);
                }
            });
        });
        http.start();
        servers.add(http);
        return http.getAddress().getPort();
    }

    private static List<MeshScrape.Answer> ok(String... bodies) {
        return java.util.Arrays.stream(bodies).map(b -> new MeshScrape.Answer(200, b)).toList();
    }

    private MeshStatus mesh() throws IOException {
        int filter = stub(Map.of("/readyz", ok("ready\n"), "/metrics", ok(SCRAPE_BEFORE, SCRAPE_AFTER)));
        int xds = stub(Map.of("/status", ok(XDS_STATUS)));
        int envoy = stub(Map.of("/ready", ok("LIVE\n")));
        int draining = stub(Map.of("/ready", List.of(new MeshScrape.Answer(503, "DRAINING\n"))));
        Map<String, Supplier<MeshScrape.Answer>> envoys = new LinkedHashMap<>();
        envoys.put("envoy", () -> MeshScrape.get(envoy, "/ready"));
        envoys.put("go-sidecar", () -> MeshScrape.get(draining, "/ready"));
        return new MeshStatus(new MeshStatus.Endpoints(filter, xds, envoys));
    }

    @Test
    void givenARunningMesh_whenReported_thenHealthAckedVersionsNacksAndTheWindowsCountsPerTopic() throws IOException {
        List<Duration> slept = new ArrayList<>();

        String report = mesh().report(Duration.ofSeconds(5), slept::add);

        assertEquals("""
                health:
                  filter-service   ready  (/readyz)
                  xds-server       up, 2 of 3 Envoys connected  (/status)
                  envoy            LIVE  (admin /ready)
                  go-sidecar       DRAINING  (admin /ready)
                config acknowledged by each Envoy (xDS server /status):
                  go-producer      on 7-1a2b3c4d (Cluster 7-1a2b3c4d, Listener 7-1a2b3c4d), connected, 0 NACKs
                  kafka-apps       Cluster 8-99999999, Listener 7-1a2b3c4d, connected, serving 8-99999999, 1 NACK; last NACK Listener 8-99999999 at 2026-12-01T07:00:00Z: bad filter
                  left             nothing acknowledged yet, NOT connected, 0 NACKs
                records per topic in the last 5 s (filter-service /metrics read twice, 5 s apart; in brackets: since it started):
                  audit            fetch ciphertext 0 (1)
                  orders           fetch decrypted 1,200 (1,203), fetch denied 2 (2), produce encrypted 1,200 (1,205)
                """, report);
        assertEquals(List.of(Duration.ofSeconds(5)), slept);
    }

    @Test
    void givenAFilterServiceNotReady_whenReported_thenItsReasonIsShownAndNoCountsAreInvented() throws IOException {
        int filter = stub(Map.of("/readyz", List.of(new MeshScrape.Answer(503, "no policy in force yet\n")),
                "/metrics", List.of(new MeshScrape.Answer(503, ""))));
        MeshStatus status = new MeshStatus(new MeshStatus.Endpoints(filter, null, Map.of()));

        assertEquals("""
                health:
                  filter-service   NOT ready: no policy in force yet  (/readyz)
                """, status.report(Duration.ofSeconds(5), d -> {
        }));
    }

    @Test
    void givenAnXdsServerThatDoesNotAnswer_whenReported_thenItIsDown() throws IOException {
        int closed;
        try (var socket = new java.net.ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            closed = socket.getLocalPort();
        }
        MeshStatus status = new MeshStatus(new MeshStatus.Endpoints(null, closed, Map.of()));

        String report = status.report(Duration.ofSeconds(5), d -> {
        });

        assertEquals("health:\n  xds-server       DOWN: no answer from http://127.0.0.1:" + closed + "/status", report.lines().limit(2)
                .reduce((a, b) -> a + "\n" + b).orElseThrow().replaceFirst(" \\(.*", ""));
    }

    @Test
    void givenARunningMesh_whenSummarisedForTheDemo_thenOneLineWithTotalsReadinessAndEnvoyVersions() throws IOException {
        MeshStatus mesh = mesh();
        mesh.summaryLine(); // the first scrape: the stub answers the later one from now on

        assertEquals("mesh: 1,205 records encrypted, 1,203 decrypted, 2 denied · filter-service ready"
                + " · 2 Envoys: 1 on 7-1a2b3c4d, 1 on mixed or no versions, 1 NACK", mesh.summaryLine());
    }

    @Test
    void givenEnvoysAllOnOneVersion_whenSummarised_thenNOnThatVersion() {
        MeshScrape.EnvoyConfig a = new MeshScrape.EnvoyConfig("a", true, "7-x", Map.of("Cluster", "7-x", "Listener", "7-x"), 0, null);
        MeshScrape.EnvoyConfig b = new MeshScrape.EnvoyConfig("b", true, "7-x", Map.of("Listener", "7-x"), 0, null);
        MeshScrape.EnvoyConfig gone = new MeshScrape.EnvoyConfig("c", false, "6-y", Map.of("Listener", "6-y"), 0, null);

        assertEquals("2 Envoys on 7-x", MeshStatus.envoyVersions(List.of(a, b, gone)));
    }

    @Test
    void givenACounterThatWentDown_whenDiffed_thenTheFilterServiceRestartedAndItCountsFromZero() {
        MeshScrape.Records before = MeshScrape.records(SCRAPE_AFTER);
        MeshScrape.Records after = MeshScrape.records(SCRAPE_BEFORE);

        assertEquals(5L, after.since(before).byTopic().get("orders").get("produce encrypted"));
    }
}
