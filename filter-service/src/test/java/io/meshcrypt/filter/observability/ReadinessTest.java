package io.meshcrypt.filter.observability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.crypto.DekManager;
import io.meshcrypt.filter.kms.CountingKekProvider;
import io.meshcrypt.filter.kms.KeyNotReadyException;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.kms.LocalKekProvider;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Readiness from start to serving, through a KMS outage and back, as /readyz answers it over real HTTP. */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class ReadinessTest {
    private static final HttpClient HTTP = HttpClient.newHttpClient();

    @TempDir
    Path dir;

    private static HttpResponse<String> get(ObservabilityServer server, String path) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.address().getPort() + path))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void givenLocalKeysetOnly_whenServing_thenReadyAndLiveAndMetricsServed() throws Exception {
        Readiness readiness = new Readiness(null);
        try (ObservabilityServer server = ObservabilityServer.start(new java.net.InetSocketAddress("127.0.0.1", 0),
                () -> "meshcrypt_ready 1.0\n", readiness)) {
            HttpResponse<String> starting = get(server, "/readyz");
            assertEquals(503, starting.statusCode());
            assertEquals("starting: keys and policy not loaded yet\n", starting.body());
            assertEquals(200, get(server, "/healthz").statusCode());

            readiness.serving();

            assertEquals(200, get(server, "/readyz").statusCode());
            HttpResponse<String> metrics = get(server, "/metrics");
            assertEquals(200, metrics.statusCode());
            assertTrue(metrics.headers().firstValue("Content-Type").orElse("").startsWith("text/plain; version=0.0.4"));
            assertEquals("meshcrypt_ready 1.0\n", metrics.body());
            assertEquals(404, get(server, "/metricsfoo").statusCode());
        }
    }

    @Test
    void givenKmsDownAndNoKeysCached_whenServing_thenNotReadyUntilTheKmsAnswers() throws Exception {
        Keysets.create(dir.resolve("kek.json"));
        CountingKekProvider kms = new CountingKekProvider(new LocalKekProvider(dir.resolve("kek.json")));
        kms.down.set(true);
        DekManager.Settings d = DekManager.Settings.defaults();
        try (DekManager deks = new DekManager(kms, new DekManager.Settings(d.maxRecordsPerDek(), d.maxDekAge(),
                d.cacheTtl(), d.cacheMaxEntries(), Duration.ofSeconds(5), Duration.ofMillis(50), Duration.ofMillis(100),
                d.kekCheckInterval()))) {
            Readiness readiness = new Readiness(deks);
            readiness.serving();
            awaitNotReady(deks, readiness);
            assertTrue(readiness.notReadyReason().contains("unreachable"), readiness.notReadyReason());

            kms.down.set(false);
            awaitDek(deks);

            assertNull(readiness.notReadyReason());
        }
    }

    /** A wrap fails while the KMS is down. */
    private static void awaitNotReady(DekManager deks, Readiness readiness) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (readiness.ready() && System.nanoTime() < deadline) {
            try {
                deks.forEncryption("orders");
            } catch (KeyNotReadyException e) {
                e.ready().exceptionally(t -> null).get();
            } catch (java.security.GeneralSecurityException expected) {
                Thread.sleep(20);
            }
        }
        assertTrue(!readiness.ready(), "still ready with the KMS down");
    }

    /** Retries until the KMS wrapped a DEK (past the backoff). */
    private static void awaitDek(DekManager deks) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (System.nanoTime() < deadline) {
            try {
                deks.forEncryption("orders");
                return;
            } catch (KeyNotReadyException e) {
                e.ready().exceptionally(t -> null).get();
            } catch (java.security.GeneralSecurityException backingOff) {
                Thread.sleep(20);
            }
        }
        throw new AssertionError("no DEK after the KMS came back");
    }
}
