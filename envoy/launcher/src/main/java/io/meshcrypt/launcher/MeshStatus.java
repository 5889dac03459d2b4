package io.meshcrypt.launcher;

import io.meshcrypt.launcher.MeshScrape.Answer;
import io.meshcrypt.launcher.MeshScrape.EnvoyConfig;
import io.meshcrypt.launcher.MeshScrape.Records;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Supplier;
import java.util.stream.Collectors;

/**
 * What {@code ./meshcrypt status} and the demo's summary line say about the running mesh, from {@link MeshScrape}:
 * each component's health, the config version each Envoy acknowledged (and its NACKs), and the records per topic.
 */
final class MeshStatus {

    /**
     * Where the running mesh answers: null for a component that is not running.
     *
     * @param filterMetrics the filter-service's observability port
     * @param xdsStatus the xDS server's status port
     * @param envoyReady each running Envoy's admin {@code /ready}, by component
     */
    record Endpoints(Integer filterMetrics, Integer xdsStatus, Map<String, Supplier<Answer>> envoyReady) {
    }

    private final Endpoints endpoints;

    MeshStatus(Endpoints endpoints) {
        this.endpoints = endpoints;
    }

    /**
     * The health, config and records sections; the records are what the filter-service counted between two reads of
     * its /metrics {@code window} apart (a launcher keeps no history between calls), {@code sleep} waiting between them.
     */
    String report(Duration window, java.util.function.Consumer<Duration> sleep) {
        if (endpoints.filterMetrics() == null && endpoints.xdsStatus() == null && endpoints.envoyReady().isEmpty()) {
            return "";
        }
        StringBuilder sb = new StringBuilder("health:\n");
        if (endpoints.filterMetrics() != null) {
            sb.append(row("filter-service", MeshScrape.filterReadiness(endpoints.filterMetrics()) + "  (/readyz)"));
        }
        List<EnvoyConfig> envoys = null;
        if (endpoints.xdsStatus() != null) {
            Answer a = MeshScrape.get(endpoints.xdsStatus(), "/status");
            if (a.ok()) {
                envoys = MeshScrape.envoys(a.body());
                long connected = envoys.stream().filter(EnvoyConfig::connected).count();
                sb.append(row("xds-server", "up, " + connected + " of " + envoys.size() + " Envoys connected  (/status)"));
            } else {
                sb.append(row("xds-server", "DOWN: " + (a.status() == 0 ? a.body() : "/status answered " + a.status())));
            }
        }
        endpoints.envoyReady().forEach((component, ready) -> sb.append(row(component, MeshScrape.envoyReadiness(ready.get()) + "  (admin /ready)")));
        if (envoys != null) {
            sb.append("config acknowledged by each Envoy (xDS server /status):\n");
            for (EnvoyConfig e : envoys) {
                sb.append(row(e.node(), envoyConfig(e)));
            }
        }
        Records before = endpoints.filterMetrics() == null ? Records.NONE : MeshScrape.records(endpoints.filterMetrics());
        if (before != Records.NONE) {
            sleep.accept(window);
            Records after = MeshScrape.records(endpoints.filterMetrics());
            sb.append("records per topic in the last ").append(window.toSeconds()).append(" s (filter-service /metrics read twice, ")
                    .append(window.toSeconds()).append(" s apart; in brackets: since it started):\n");
            sb.append(recordsPerTopic(after.since(before), after));
        }
        return sb.toString();
    }

    private static String row(String name, String what) {
        return String.format("  %-16s %s%n", name, what);
    }

    /** {@code 7-1a2b3c4d (Cluster 7-1a2b3c4d, Listener 7-1a2b3c4d), connected, 0 NACKs} and the last NACK when there was one. */
    static String envoyConfig(EnvoyConfig e) {
        String acked = e.acked().isEmpty() ? "nothing acknowledged yet"
                : e.acked().entrySet().stream().map(a -> a.getKey() + " " + a.getValue()).collect(Collectors.joining(", "));
        String version = e.version();
        StringBuilder sb = new StringBuilder(version != null ? "on " + version + " (" + acked + ")" : acked);
        sb.append(e.connected() ? ", connected" : ", NOT connected");
        if (e.serving() != null && !e.serving().equals(version)) {
            sb.append(", serving ").append(e.serving());
        }
        sb.append(", ").append(e.nacks()).append(e.nacks() == 1 ? " NACK" : " NACKs");
        if (e.lastNack() != null) {
            sb.append("; last NACK ").append(e.lastNack());
        }
        return sb.toString();
    }

    /** One line per topic that counted anything: each non-zero count in the window, its total in brackets. */
    static String recordsPerTopic(Records window, Records total) {
        StringBuilder sb = new StringBuilder();
        total.byTopic().forEach((topic, counts) -> {
            List<String> parts = new ArrayList<>();
            counts.forEach((kind, all) -> {
                if (all > 0) {
                    long recent = window.byTopic().getOrDefault(topic, Map.of()).getOrDefault(kind, 0L);
                    parts.add(kind + " " + number(recent) + " (" + number(all) + ")");
                }
            });
            if (!parts.isEmpty()) {
                sb.append(row(topic, String.join(", ", parts)));
            }
        });
        return sb.isEmpty() ? row("(none)", "no records counted yet") : sb.toString();
    }

    /**
     * The demo's one line, e.g. {@code mesh: 1,204 records encrypted, 1,198 decrypted, 0 denied · filter-service ready ·
     * 3 Envoys on 7-1a2b3c4d}; the counts are since the filter-service started.
     */
    String summaryLine() {
        StringBuilder sb = new StringBuilder("mesh: ");
        if (endpoints.filterMetrics() != null) {
            Records r = MeshScrape.records(endpoints.filterMetrics());
            sb.append(number(r.total("encrypted"))).append(" records encrypted, ").append(number(r.total("decrypted")))
                    .append(" decrypted, ").append(number(r.total("denied"))).append(" denied · filter-service ")
                    .append(MeshScrape.filterReadiness(endpoints.filterMetrics()));
        } else {
            sb.append("filter-service not running");
        }
        if (endpoints.xdsStatus() != null) {
            Answer a = MeshScrape.get(endpoints.xdsStatus(), "/status");
            sb.append(" · ").append(a.ok() ? envoyVersions(MeshScrape.envoys(a.body())) : "xDS server: no answer");
        }
        return sb.toString();
    }

    /** {@code 3 Envoys on 7-1a2b3c4d}, or per version when they differ ({@code 3 Envoys: 2 on 7-.., 1 on 6-..}); NACKs. */
    static String envoyVersions(List<EnvoyConfig> envoys) {
        List<EnvoyConfig> connected = envoys.stream().filter(EnvoyConfig::connected).toList();
        Map<String, Long> byVersion = new TreeMap<>();
        for (EnvoyConfig e : connected) {
            byVersion.merge(e.version() == null ? "mixed or no versions" : e.version(), 1L, Long::sum);
        }
        String n = connected.size() + (connected.size() == 1 ? " Envoy" : " Envoys");
        String versions = byVersion.size() == 1 ? n + " on " + byVersion.keySet().iterator().next()
                : n + (byVersion.isEmpty() ? "" : ": " + byVersion.entrySet().stream().map(v -> v.getValue() + " on " + v.getKey())
                        .collect(Collectors.joining(", ")));
        long nacks = envoys.stream().mapToLong(EnvoyConfig::nacks).sum();
        return nacks == 0 ? versions : versions + ", " + nacks + (nacks == 1 ? " NACK" : " NACKs");
    }

    private static String number(long n) {
        return String.format(Locale.ROOT, "%,d", n);
    }
}
