package io.meshcrypt.xds.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The status endpoint keeps answering scrapes while clients hold connections with requests they never finish. */
@Timeout(60)
class StatusHttpServerTest {

    @Test
    void givenClientsThatNeverFinishTheirRequests_whenScraped_thenMetricsAreServedAtOnce() throws Exception {
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        registry.counter("probe_total").increment();
        List<Socket> slow = new ArrayList<>();
        try (StatusHttpServer server = StatusHttpServer.start(new InetSocketAddress("127.0.0.1", 0),
                () -> Map.of("ok", true), registry)) {
            // Given fewer slow clients than threads, each stopping in the middle of its headers
            for (int i = 0; i < StatusHttpServer.THREADS - 1; i++) {
                Socket s = new Socket("127.0.0.1", server.address().getPort());
                OutputStream out = s.getOutputStream();
                out.write("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ".getBytes(StandardCharsets.US_ASCII));
                out.flush();
                slow.add(s);
            }
            Thread.sleep(300);

            // When a real scrape comes
            long start = System.nanoTime();
            HttpResponse<String> response = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                            URI.create("http://127.0.0.1:" + server.address().getPort() + "/metrics"))
                    .timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.ofString());

            // Then it is answered, without waiting for the slow ones
            assertEquals(200, response.statusCode());
            assertTrue(response.body().contains("probe_total"), response.body());
            assertTrue(Duration.ofNanos(System.nanoTime() - start).toMillis() < 3000, "served at once");
        } finally {
            for (Socket s : slow) {
                s.close();
            }
        }
    }
}
