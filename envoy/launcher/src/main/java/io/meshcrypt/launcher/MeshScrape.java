package io.meshcrypt.launcher;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads the running mesh's own endpoints, for {@code ./meshcrypt status} and the demo's summary line: the
 * filter-service's {@code /readyz} and {@code /metrics}, the xDS server's {@code /status}, an Envoy admin's
 * {@code /ready}. Every read is on 127.0.0.1 with a 2 s bound; a component that does not answer is reported, not
 * waited for.
 */
final class MeshScrape {
    private static final Duration TIMEOUT = Duration.ofSeconds(2);
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(TIMEOUT).build();
    private static final ObjectMapper JSON = new ObjectMapper();
    /** {@code meshcrypt_records_total{direction="produce",outcome="encrypted",topic="orders"} 12.0}: labels sorted by name. */
    private static final Pattern RECORDS = Pattern.compile(
            "^meshcrypt_records_total\\{direction=\"([a-z]+)\",outcome=\"([a-z]+)\",topic=\"((?:[^\"\\\\]|\\\\.)*)\"} ([0-9.eE+]+)$",
            Pattern.MULTILINE);

    private MeshScrape() {
    }

    /** An HTTP answer; {@code status} 0 with the reason in {@code body} when there was none. */
    record Answer(int status, String body) {
        boolean ok() {
            return status == 200;
        }
    }

    static Answer get(int port, String path) {
        try {
            HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).timeout(TIMEOUT).build(),
                    HttpResponse.BodyHandlers.ofString());
            return new Answer(r.statusCode(), r.body());
        } catch (IOException e) {
            return new Answer(0, "no answer from http://127.0.0.1:" + port + path + " (" + (e.getMessage() == null ? e : e.getMessage()) + ")");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Answer(0, "interrupted");
        }
    }

    /** The filter-service's readiness: {@code ready}, {@code NOT ready: <its reason>}, or why it did not answer. */
    static String filterReadiness(int metricsPort) {
        Answer a = get(metricsPort, "/readyz");
        if (a.ok()) {
            return "ready";
        }
        return a.status() == 0 ? a.body() : "NOT ready: " + a.body().strip();
    }

    /** An Envoy's admin {@code /ready}: {@code LIVE}, the state it names instead, or why it did not answer. */
    static String envoyReadiness(Answer ready) {
        return ready.status() == 0 ? ready.body() : ready.body().strip();
    }

    /** {@code meshcrypt_records_total} per topic, then per {@code "<direction> <outcome>"}, both sorted. */
    record Records(Map<String, Map<String, Long>> byTopic) {

        static final Records NONE = new Records(Map.of());

        /** The records of one outcome (encrypted, decrypted, ciphertext, denied) over every topic and direction. */
        long total(String outcome) {
            return byTopic.values().stream().flatMap(m -> m.entrySet().stream())
                    .filter(e -> e.getKey().endsWith(" " + outcome)).mapToLong(Map.Entry::getValue).sum();
        }

        /** What was counted since {@code earlier}; a counter that went down (the filter-service restarted) counts from 0. */
        Records since(Records earlier) {
            Map<String, Map<String, Long>> out = new TreeMap<>();
            byTopic.forEach((topic, counts) -> counts.forEach((kind, now) -> {
                long before = earlier.byTopic.getOrDefault(topic, Map.of()).getOrDefault(kind, 0L);
                out.computeIfAbsent(topic, t -> new TreeMap<>()).put(kind, now >= before ? now - before : now);
            }));
            return new Records(out);
        }
    }

    static Records records(String prometheusText) {
        Map<String, Map<String, Long>> byTopic = new TreeMap<>();
        Matcher m = RECORDS.matcher(prometheusText);
        while (m.find()) {
            byTopic.computeIfAbsent(m.group(3), t -> new TreeMap<>()).put(m.group(1) + " " + m.group(2), (long) Double.parseDouble(m.group(4)));
        }
        return new Records(byTopic);
    }

    /** The filter-service's record counters now, or {@link Records#NONE} when its /metrics does not answer. */
    static Records records(int metricsPort) {
        Answer a = get(metricsPort, "/metrics");
        return a.ok() ? records(a.body()) : Records.NONE;
    }

    /** One Envoy as the xDS server's {@code /status} reports it. */
    record EnvoyConfig(String node, boolean connected, String serving, Map<String, String> acked, long nacks, String lastNack) {

        /** The one version every acknowledged type is at, or null when they differ or none is acknowledged yet. */
        String version() {
            List<String> versions = acked.values().stream().distinct().toList();
            return versions.size() == 1 ? versions.get(0) : null;
        }
    }

    /** @throws IllegalArgumentException when {@code statusJson} is not the xDS server's /status */
    static List<EnvoyConfig> envoys(String statusJson) {
        try {
            JsonNode root = JSON.readTree(statusJson);
            List<EnvoyConfig> out = new ArrayList<>();
            for (JsonNode e : root.path("envoys")) {
                Map<String, String> acked = new TreeMap<>();
                e.path("acked").properties().forEach(p -> acked.put(p.getKey(), p.getValue().asText()));
                JsonNode nack = e.path("lastNack");
                String lastNack = nack.isObject() ? nack.path("type").asText() + " " + nack.path("version").asText() + " at "
                        + nack.path("at").asText() + ": " + nack.path("detail").asText() : null;
                out.add(new EnvoyConfig(e.path("node").asText(), e.path("connected").asBoolean(), e.path("serving").asText(null),
                        Collections.unmodifiableMap(acked), e.path("nacks").asLong(), lastNack));
            }
            return out;
        } catch (IOException e) {
            throw new IllegalArgumentException("not the xDS server's /status: " + e.getMessage(), e);
        }
    }
}
