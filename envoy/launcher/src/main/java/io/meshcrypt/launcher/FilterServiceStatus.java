package io.meshcrypt.launcher;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The filter-service's lines of {@code ./meshcrypt status}: its readiness ({@code /readyz}) and, from one scrape of
 * {@code /metrics}, the records per topic since it started.
 */
final class FilterServiceStatus {
    private static final Duration TIMEOUT = Duration.ofSeconds(2);
    /** {@code meshcrypt_records_total{direction="produce",outcome="encrypted",topic="orders"} 12.0}: labels sorted by name. */
    private static final Pattern RECORDS = Pattern.compile(
            "^meshcrypt_records_total\\{direction=\"([a-z]+)\",outcome=\"([a-z]+)\",topic=\"((?:[^\"\\\\]|\\\\.)*)\"} ([0-9.eE+]+)$",
            Pattern.MULTILINE);

    private FilterServiceStatus() {
    }

    /** @return the lines for the endpoint on 127.0.0.1:{@code port}, or one saying why it could not be read */
    static String of(int port) {
        HttpClient http = HttpClient.newBuilder().connectTimeout(TIMEOUT).build();
        try {
            HttpResponse<String> ready = get(http, port, "/readyz");
            StringBuilder sb = new StringBuilder(String.format("%-17s %s%n", "  readiness",
                    (ready.statusCode() == 200 ? "ready" : "NOT ready: " + ready.body().strip())));
            HttpResponse<String> metrics = get(http, port, "/metrics");
            if (metrics.statusCode() == 200) {
                sb.append(recordsPerTopic(metrics.body()));
            }
            return sb.toString();
        } catch (IOException e) {
            return String.format("%-17s no answer from http://127.0.0.1:%d (%s)%n", "  readiness", port, e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "";
        }
    }

    /** One line per topic with records: its non-zero counts by direction and outcome. */
    static String recordsPerTopic(String prometheusText) {
        Map<String, StringBuilder> topics = new TreeMap<>();
        Matcher m = RECORDS.matcher(prometheusText);
        while (m.find()) {
            long count = (long) Double.parseDouble(m.group(4));
            if (count > 0) {
                StringBuilder line = topics.computeIfAbsent(m.group(3), t -> new StringBuilder());
                line.append(line.isEmpty() ? "" : ", ").append(m.group(1)).append(' ').append(m.group(2)).append(' ').append(count);
            }
        }
        StringBuilder sb = new StringBuilder();
        topics.forEach((topic, counts) -> sb.append(String.format("  topic %-11s %s%n", topic, counts)));
        return sb.toString();
    }

    private static HttpResponse<String> get(HttpClient http, int port, String path) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).timeout(TIMEOUT).build(),
                HttpResponse.BodyHandlers.ofString());
    }
}
