package io.meshcrypt.e2e;

import static io.meshcrypt.e2e.support.Records.utf8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.e2e.support.Await;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.e2e.support.MeshExtension;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The filter-service's metrics endpoint in the running mesh (filter.yaml's observability:, written by the launcher):
 * ready, counters that move by exactly the records real clients produce and consume through Envoy, and a client that
 * speaks TLS to Envoy's Kafka listener counted as a protocol violation.
 */
@ExtendWith(MeshExtension.class)
class FilterMetricsTest {
    private static final HttpClient HTTP = HttpClient.newHttpClient();
    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    private final LocalMesh mesh;

    FilterMetricsTest(LocalMesh mesh) {
        this.mesh = mesh;
    }

    @Test
    void givenRecordsProducedAndConsumedThroughEnvoy_whenScraped_thenTheTopicsCountersMovedByExactlyThoseRecords() throws Exception {
        // Given a fresh topic (its own label) and a ready filter-service
        String topic = mesh.createTopic("metrics", 2);
        assertEquals(200, get("/readyz").statusCode());
        assertEquals(0, records(scrape(), topic, "produce", "encrypted"));

        // When 9 records are produced and read back through Envoy
        int produced = 9;
        try (KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Map.of())) {
            for (int i = 0; i < produced; i++) {
                producer.send(new ProducerRecord<>(topic, utf8("k" + i), utf8("metered value " + i))).get();
            }
        }
        int consumed = mesh.readThroughEnvoy(topic, Map.of()).size();

        // Then the counters of that topic moved by exactly as many
        assertEquals(produced, consumed);
        Await.until(TIMEOUT, () -> records(scrape(), topic, "fetch", "decrypted") >= consumed,
                () -> "fetch counter of " + topic + " in\n" + scrape());
        String after = scrape();
        assertEquals(produced, records(after, topic, "produce", "encrypted"), after);
        assertEquals(consumed, records(after, topic, "fetch", "decrypted"), after);
        assertEquals(0, records(after, topic, "fetch", "ciphertext"), after);
        assertEquals(0, records(after, topic, "produce", "denied"), after);
        // and the bytes of those records' batches: each send was a batch of its own (61 header bytes and the record)
        long producedBytes = bytes(after, topic, "produce", "encrypted");
        int valueBytes = 0;
        for (int i = 0; i < produced; i++) {
            valueBytes += utf8("k" + i).length + utf8("metered value " + i).length;
        }
        assertTrue(producedBytes >= produced * 61L + valueBytes && producedBytes < produced * 200L, after);
        // fetched as stored: envelopes, larger than the plaintext sent
        assertTrue(bytes(after, topic, "fetch", "decrypted") > producedBytes, after);
    }

    @Test
    void givenAClientSpeakingTlsToEnvoysKafkaListener_whenRefused_thenTheProtocolViolationCounterMovesByOne() throws Exception {
        double before = value(scrape(), "meshcrypt_connections_reset_total{reason=\"protocol_violation\"}");

        // When a client sends a TLS ClientHello where a Kafka request belongs
        InetSocketAddress bootstrap = address(mesh.kafkaBootstrap());
        String client;
        try (Socket socket = new Socket()) {
            socket.connect(bootstrap, (int) TIMEOUT.toMillis());
            String host = socket.getLocalAddress().getHostAddress();
            client = (host.contains(":") ? "[" + host + "]" : host) + ":" + socket.getLocalPort();
            socket.setSoTimeout((int) TIMEOUT.toMillis());
            OutputStream out = socket.getOutputStream();
            out.write(new byte[] {0x16, 0x03, 0x01, 0x00, (byte) 0xa5, 0x01, 0x00, 0x00, (byte) 0xa1, 0x03, 0x03, 0x01, 0x02});
            out.flush();
            // Then the connection is closed without an answer
            InputStream in = socket.getInputStream();
            assertEquals(-1, readOrReset(in), "no Kafka answer to a TLS ClientHello");
        }

        Await.until(TIMEOUT, () -> value(scrape(), "meshcrypt_connections_reset_total{reason=\"protocol_violation\"}") > before,
                () -> "protocol_violation counter in\n" + scrape());
        String after = scrape();
        assertEquals(before + 1, value(after, "meshcrypt_connections_reset_total{reason=\"protocol_violation\"}"), after);
        // and its connection-end line names the client's address (as Envoy saw it) and the sidecar's node
        Path log = mesh.logs().resolve("filter-service.log");
        Await.until(TIMEOUT, () -> endLine(log, client) != null, () -> "no connection-end line for " + client + " in " + log);
        String line = endLine(log, client);
        assertTrue(line.contains(" node=") && !line.contains(" node=- "), line);
        assertTrue(line.endsWith(" close=\"reset: protocol_violation\""), line);
    }

    /** The filter-service's connection-end line of the connection from {@code client}, or null. */
    private static String endLine(Path log, String client) {
        try (Stream<String> lines = Files.lines(log)) {
            return lines.filter(l -> l.contains("connection ended:") && l.contains(" client=" + client + " "))
                    .findFirst().orElse(null);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** -1 for a close or a reset (either is a refusal), else the first byte read. */
    private static int readOrReset(InputStream in) {
        try {
            return in.read();
        } catch (IOException reset) {
            return -1;
        }
    }

    private static InetSocketAddress address(String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        return new InetSocketAddress(hostPort.substring(0, colon), Integer.parseInt(hostPort.substring(colon + 1)));
    }

    private static long records(String scrape, String topic, String direction, String outcome) {
        return (long) value(scrape, "meshcrypt_records_total{direction=\"" + direction + "\",outcome=\"" + outcome
                + "\",topic=\"" + topic + "\"}");
    }

    private static long bytes(String scrape, String topic, String direction, String outcome) {
        return (long) value(scrape, "meshcrypt_record_bytes_total{direction=\"" + direction + "\",outcome=\""
                + outcome + "\",topic=\"" + topic + "\"}");
    }

    /** The sample's value, 0 when the series is not there yet. */
    private static double value(String scrape, String series) {
        Matcher m = Pattern.compile("^" + Pattern.quote(series) + " (\\S+)$", Pattern.MULTILINE).matcher(scrape);
        return m.find() ? Double.parseDouble(m.group(1)) : 0;
    }

    private static String scrape() {
        HttpResponse<String> response = get("/metrics");
        assertEquals(200, response.statusCode(), response.body());
        return response.body();
    }

    private static HttpResponse<String> get(String path) {
        try {
            return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + LocalMesh.PORTS.filterMetrics() + path))
                    .timeout(TIMEOUT).build(), HttpResponse.BodyHandlers.ofString());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}
