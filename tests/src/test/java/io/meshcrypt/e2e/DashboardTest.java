package io.meshcrypt.e2e;

import static io.meshcrypt.e2e.support.Records.utf8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpServer;
import io.meshcrypt.e2e.support.Await;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.e2e.support.MeshExtension;
import io.meshcrypt.e2e.support.StaticHttpSidecar;
import io.meshcrypt.testsupport.EnvoyProcess;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The Grafana dashboard (envoy/observability/meshcrypt-dashboard.json): a well-formed Grafana 10 dashboard on a
 * Prometheus datasource variable, whose every query names metrics that the running filter-service, xDS server and
 * Envoy really export (scraped from the shared mesh after real traffic, and from an HTTP sidecar's Envoy after a request
 * through HTTP ext_proc). The shared mesh runs one Kafka filter, Envoy's network ext_proc or the bridge module
 * ({@code MESHCRYPT_BRIDGE=1}): the metrics of that one are required, the other's panels would show no data there.
 */
@ExtendWith(MeshExtension.class)
class DashboardTest {
    private static final Path DASHBOARD = LocalMesh.projectRoot().resolve("envoy/observability/meshcrypt-dashboard.json");
    private static final HttpClient HTTP = HttpClient.newHttpClient();
    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    /** Grafana 10.0 writes schema version 38. */
    private static final int GRAFANA_10_SCHEMA = 38;
    /** Below these the check proves little: a dashboard that lost its panels, or an extraction that finds nothing. */
    private static final int MIN_PANELS = 30;
    private static final int MIN_METRIC_NAMES = 40;

    /**
     * The Kafka filter a sidecar runs, told by the metric name (or {@code __name__} regex) a query reads: the panels of
     * both sit on one dashboard and neither exports the other's, so the test must know which of them to require. The
     * prefix marks them without extra markup in the JSON that Grafana would carry: in {@code /stats/prometheus} Envoy
     * names network ext_proc's stats {@code envoy_network_ext_proc_<stat_prefix>_*} and the bridge's
     * ({@code dynamicmodulescustom.meshcrypt_bridge.*}) {@code envoy_dynamicmodulescustom_meshcrypt_bridge_*}.
     */
    enum KafkaFilter {
        NETWORK_EXT_PROC("envoy_network_ext_proc_"),
        BRIDGE("envoy_dynamicmodulescustom_meshcrypt_bridge_");

        private final String metricPrefix;

        KafkaFilter(String metricPrefix) {
            this.metricPrefix = metricPrefix;
        }

        /** The filter the shared mesh runs. */
        static KafkaFilter ofSharedMesh() {
            return LocalMesh.BRIDGE ? BRIDGE : NETWORK_EXT_PROC;
        }

        /** @return the filter whose metric {@code nameOrRegex} selects, or null for a metric of neither */
        static KafkaFilter of(String nameOrRegex) {
            for (KafkaFilter filter : values()) {
                if (nameOrRegex.startsWith(filter.metricPrefix)) {
                    return filter;
                }
            }
            return null;
        }
    }

    // ---- structure

    @Test
    void givenTheDashboardFile_whenParsed_thenItIsAGrafana10DashboardWhosePanelsQueryThroughTheDatasourceVariable() {
        JsonNode dashboard = dashboard();

        assertFalse(dashboard.path("title").asText().isBlank(), "title");
        assertFalse(dashboard.path("uid").asText().isBlank(), "uid: links to the dashboard survive a re-import");
        assertTrue(dashboard.path("schemaVersion").asInt() >= GRAFANA_10_SCHEMA, "schemaVersion " + dashboard.path("schemaVersion"));
        assertTrue(dashboard.path("__inputs").isMissingNode(), "no import-time inputs: the datasource is a variable");

        String datasource = datasourceVariable(dashboard);
        List<String> datasourceRefs = new ArrayList<>();
        collectDatasources(dashboard, datasourceRefs);
        assertTrue(datasourceRefs.size() > MIN_PANELS, "datasource references " + datasourceRefs.size());
        for (String ref : datasourceRefs) {
            assertTrue(ref.equals("prometheus/${" + datasource + "}") || ref.equals("prometheus/$" + datasource),
                    "every datasource is the variable $" + datasource + ", no hard-coded uid: " + ref);
        }

        List<JsonNode> panels = panels(dashboard);
        assertTrue(panels.size() >= MIN_PANELS, panels.size() + " panels");
        Set<Integer> ids = new HashSet<>();
        for (JsonNode panel : allPanels(dashboard)) {
            assertTrue(panel.path("id").isInt() && ids.add(panel.path("id").asInt()), "unique integer id: " + panel.path("title"));
            JsonNode grid = panel.path("gridPos");
            assertTrue(grid.path("w").asInt() > 0 && grid.path("h").asInt() > 0 && grid.path("x").asInt() >= 0
                    && grid.path("x").asInt() + grid.path("w").asInt() <= 24, "gridPos of " + panel.path("title") + ": " + grid);
        }
        for (JsonNode panel : panels) {
            String title = panel.path("title").asText();
            assertFalse(title.isBlank(), "panel " + panel.path("id") + " has a title");
            assertFalse(panel.path("description").asText().isBlank(), title + " says what it shows");
            JsonNode targets = panel.path("targets");
            assertTrue(targets.isArray() && !targets.isEmpty(), title + " has targets");
            Set<String> refIds = new HashSet<>();
            for (JsonNode target : targets) {
                String expr = target.path("expr").asText();
                assertFalse(expr.isBlank(), title + ": a target without expr");
                assertTrue(refIds.add(target.path("refId").asText()), title + ": refId " + target.path("refId") + " twice");
                assertBalanced(title, expr);
            }
        }
        Set<KafkaFilter> charted = new HashSet<>();
        for (String expr : queries(dashboard).values()) {
            MetricNames names = MetricNames.of(expr);
            names.exact().forEach(name -> charted.add(KafkaFilter.of(name)));
            names.regexes().forEach(regex -> charted.add(KafkaFilter.of(regex)));
        }
        assertTrue(charted.containsAll(Set.of(KafkaFilter.values())), "one dashboard for meshes with either Kafka filter: " + charted);
    }

    @Test
    void givenExpressionsWithFunctionsLabelsStringsRangesAndVariables_whenMetricNamesExtracted_thenOnlyTheMetricNamesRemain() {
        assertEquals(new MetricNames(Set.of("meshcrypt_records_total"), Set.of()), MetricNames.of(
                "sum by (topic, direction) (rate(meshcrypt_records_total{topic=~\"$topic\", outcome=\"denied\"}[$__rate_interval]))"));
        assertEquals(new MetricNames(Set.of("a_seconds_sum", "a_seconds_count"), Set.of()), MetricNames.of(
                "sum without (instance) (rate(a_seconds_sum[5m] offset 1h)) / on (job) group_left (node) sum(rate(a_seconds_count[5m:30s])) > 0.5e3"));
        assertEquals(new MetricNames(Set.of("up", "x_total"), Set.of("envoy_.+_streams_started")), MetricNames.of(
                "label_replace({__name__=~\"envoy_.+_streams_started\"}, \"listener\", \"$1\", \"__name__\", \"envoy_(.+)\")"
                        + " and up == bool 1 unless {__name__=\"x_total\", by=\"sum(x)\"}"));
        assertEquals(new MetricNames(Set.of("meshcrypt_ready"), Set.of()), MetricNames.of("meshcrypt_ready == 0 or absent(meshcrypt_ready)"));
        try {
            MetricNames.of("sun(rate(x_total[5m]))");
            fail("a misspelt function is not taken for a metric");
        } catch (IllegalArgumentException expected) {
            assertTrue(expected.getMessage().contains("sun"), expected.getMessage());
        }
    }

    // ---- against the running services

    @Test
    void givenRecordsThroughTheSharedMesh_whenTheServicesAreScraped_thenEveryMetricTheDashboardQueriesIsExported(LocalMesh mesh) throws Exception {
        // Given records produced and consumed through Envoy, so that every per-topic and key counter exists
        String topic = mesh.createTopic("dashboard", 1);
        int produced = 3;
        try (KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Map.of())) {
            for (int i = 0; i < produced; i++) {
                producer.send(new ProducerRecord<>(topic, utf8("k" + i), utf8("charted " + i))).get();
            }
        }
        assertEquals(produced, mesh.readThroughEnvoy(topic, Map.of()).size());
        String decrypted = "meshcrypt_records_total{direction=\"fetch\",outcome=\"decrypted\",topic=\"" + topic + "\"} ";
        Await.until(TIMEOUT, () -> scrape(LocalMesh.PORTS.filterMetrics(), "/metrics").contains(decrypted),
                () -> "no " + decrypted + "in the filter-service's /metrics");

        // and one GC pause in the filter-service: Micrometer registers jvm_gc_pause_* at the first pause, which a JVM
        // that has allocated little since it started may not have had yet (CI caught the panel's metric missing)
        gcOnce(mesh.pid("filter-service"));
        Await.until(TIMEOUT, () -> scrape(LocalMesh.PORTS.filterMetrics(), "/metrics").contains("jvm_gc_pause_seconds_sum"),
                () -> "no jvm_gc_pause_seconds_sum in the filter-service's /metrics after a GC");

        // When the filter-service, the xDS server and the shared sidecar's Envoy are scraped
        Map<String, Set<String>> exported = new LinkedHashMap<>();
        exported.put("filter-service", sampleNames(scrape(LocalMesh.PORTS.filterMetrics(), "/metrics")));
        exported.put("xds-server", sampleNames(scrape(LocalMesh.PORTS.xdsStatus(), "/metrics")));
        exported.put("envoy", sampleNames(scrape(LocalMesh.PORTS.envoyAdmin(), "/stats/prometheus")));
        // and an HTTP sidecar's Envoy after a request through HTTP ext_proc (the shared mesh has no HTTP sidecar)
        try (HttpSidecar http = HttpSidecar.start(mesh)) {
            assertEquals(200, http.post("/orders", "{\"card\":{\"number\":\"4111 1111 1111 1111\"}}"), "through Envoy");
            Await.until(TIMEOUT, () -> scrape(http.envoy.adminPort(), "/stats/prometheus")
                    .contains("envoy_http_ext_proc_stream_msgs_received{envoy_http_conn_manager_prefix=\"orders\"} "),
                    () -> "no ext_proc answers counted by the HTTP sidecar");
            assertTrue(http.appRequests.get() == 1, "the request reached the app through ext_proc");
            exported.put("envoy-http", sampleNames(scrape(http.envoy.adminPort(), "/stats/prometheus")));
        }

        // Then every metric each panel (and the topic variable) queries is exported by one of them, but for the
        // metrics of the Kafka filter the mesh does not run
        KafkaFilter running = KafkaFilter.ofSharedMesh();
        Set<String> used = new TreeSet<>();
        Set<String> otherFilters = new TreeSet<>();
        Map<String, Integer> usedBySource = new LinkedHashMap<>();
        exported.keySet().forEach(source -> usedBySource.put(source, 0));
        List<String> missing = new ArrayList<>();
        for (Map.Entry<String, String> query : queries(dashboard()).entrySet()) {
            MetricNames names = MetricNames.of(query.getValue());
            assertFalse(names.exact().isEmpty() && names.regexes().isEmpty(), query.getKey() + " queries no metric: " + query.getValue());
            for (String name : names.exact()) {
                if (notRunning(name, running)) {
                    otherFilters.add(name);
                    continue;
                }
                used.add(name);
                String source = sourceOf(exported, name::equals);
                if (source == null) {
                    missing.add(query.getKey() + ": " + name);
                } else {
                    usedBySource.merge(source, 1, Integer::sum);
                }
            }
            for (String regex : names.regexes()) {
                if (notRunning(regex, running)) {
                    otherFilters.add("{__name__=~\"" + regex + "\"}");
                    continue;
                }
                used.add("{__name__=~\"" + regex + "\"}");
                Pattern pattern = Pattern.compile(regex);
                String source = sourceOf(exported, name -> pattern.matcher(name).matches());
                if (source == null) {
                    missing.add(query.getKey() + ": no metric matches " + regex);
                } else {
                    usedBySource.merge(source, 1, Integer::sum);
                }
            }
        }
        assertEquals(List.of(), missing, "queried but exported by none of " + exported.keySet() + " (the mesh runs " + running
                + "; not required, of the other Kafka filter: " + otherFilters + ")");
        assertFalse(otherFilters.isEmpty(), "the other Kafka filter's panels are told apart (" + running + " runs)");
        assertTrue(used.size() >= MIN_METRIC_NAMES, used.size() + " metric names: " + used);
        usedBySource.forEach((source, count) -> assertTrue(count > 0, "no panel charts the " + source + ": " + usedBySource));
    }

    private static boolean notRunning(String nameOrRegex, KafkaFilter running) {
        KafkaFilter filter = KafkaFilter.of(nameOrRegex);
        return filter != null && filter != running;
    }

    /**
     * An HTTP sidecar of the test's own: a static Envoy whose HTTP listener streams each request to the shared
     * filter-service over HTTP ext_proc (with the xDS server's processing mode; mutual TLS when the mesh runs it), in
     * front of a JDK HTTP server that answers 200.
     */
    private record HttpSidecar(EnvoyProcess envoy, HttpServer app, AtomicInteger appRequests, int listenerPort)
            implements AutoCloseable {
        static HttpSidecar start(LocalMesh mesh) throws IOException {
            AtomicInteger appRequests = new AtomicInteger();
            HttpServer app = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
            app.createContext("/", exchange -> {
                try (exchange) {
                    exchange.getRequestBody().readAllBytes();
                    appRequests.incrementAndGet();
                    exchange.sendResponseHeaders(200, -1);
                }
            });
            app.start();
            try {
                StaticHttpSidecar sidecar = StaticHttpSidecar.start(mesh, "orders", app.getAddress().getPort());
                return new HttpSidecar(sidecar.envoy(), app, appRequests, sidecar.listenerPort());
            } catch (IOException | RuntimeException e) {
                app.stop(0);
                throw e;
            }
        }

        /** @return the status of a JSON POST to {@code path} through the sidecar */
        int post(String path, String json) throws IOException, InterruptedException {
            return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + listenerPort + path))
                    .header("content-type", "application/json").timeout(TIMEOUT)
                    .POST(HttpRequest.BodyPublishers.ofString(json)).build(), HttpResponse.BodyHandlers.discarding()).statusCode();
        }

        @Override
        public void close() {
            try {
                envoy.close();
            } finally {
                app.stop(0);
            }
        }
    }

    // ---- the dashboard's JSON

    private static JsonNode dashboard() {
        try {
            return new ObjectMapper().readTree(DASHBOARD.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot read " + DASHBOARD, e);
        }
    }

    /**
     * Every query: each panel target's expr, as "title #index", and the metric of each {@code label_values} query
     * variable, as "variable $name".
     */
    private static Map<String, String> queries(JsonNode dashboard) {
        Map<String, String> queries = new LinkedHashMap<>();
        for (JsonNode panel : panels(dashboard)) {
            int i = 0;
            for (JsonNode target : panel.path("targets")) {
                queries.put(panel.path("title").asText() + " #" + i++, target.path("expr").asText());
            }
        }
        for (JsonNode variable : dashboard.path("templating").path("list")) {
            if (variable.path("type").asText().equals("query")) {
                Matcher m = LABEL_VALUES.matcher(variable.path("query").path("query").asText(variable.path("query").asText()));
                assertTrue(m.matches(), "variable " + variable.path("name") + ": label_values(metric, label)");
                queries.put("variable $" + variable.path("name").asText(), m.group(1));
            }
        }
        return queries;
    }

    /** The name of the one Prometheus datasource variable. */
    private static String datasourceVariable(JsonNode dashboard) {
        List<String> names = new ArrayList<>();
        for (JsonNode variable : dashboard.path("templating").path("list")) {
            if (variable.path("type").asText().equals("datasource")) {
                assertEquals("prometheus", variable.path("query").asText(), "datasource variable " + variable.path("name"));
                names.add(variable.path("name").asText());
            }
        }
        assertEquals(1, names.size(), "one datasource variable: " + names);
        return names.getFirst();
    }

    /** Every {@code datasource} value below {@code node}, as type/uid (a bare string as itself). */
    private static void collectDatasources(JsonNode node, List<String> out) {
        if (node.isObject()) {
            JsonNode ds = node.get("datasource");
            if (ds != null && !ds.isNull()) {
                out.add(ds.isTextual() ? ds.asText() : ds.path("type").asText() + "/" + ds.path("uid").asText());
            }
            node.forEach(child -> collectDatasources(child, out));
        } else if (node.isArray()) {
            node.forEach(child -> collectDatasources(child, out));
        }
    }

    /** Every panel, rows and the panels of collapsed rows included. */
    private static List<JsonNode> allPanels(JsonNode dashboard) {
        List<JsonNode> out = new ArrayList<>();
        for (JsonNode panel : dashboard.path("panels")) {
            out.add(panel);
            panel.path("panels").forEach(out::add);
        }
        return out;
    }

    /** The panels that chart something (no rows). */
    private static List<JsonNode> panels(JsonNode dashboard) {
        return allPanels(dashboard).stream().filter(p -> !p.path("type").asText().equals("row")).toList();
    }

    private static void assertBalanced(String title, String expr) {
        String unquoted = STRING.matcher(expr).replaceAll("\"\"");
        assertFalse(unquoted.chars().filter(c -> c == '"' || c == '\'' || c == '`').count() % 2 != 0, title + ": an open string in " + expr);
        StringBuilder open = new StringBuilder();
        for (char c : unquoted.toCharArray()) {
            int kind = "([{".indexOf(c);
            int close = ")]}".indexOf(c);
            if (kind >= 0) {
                open.append(c);
            } else if (close >= 0) {
                assertTrue(!open.isEmpty() && open.charAt(open.length() - 1) == "([{".charAt(close), title + ": unbalanced " + c + " in " + expr);
                open.setLength(open.length() - 1);
            }
        }
        assertTrue(open.isEmpty(), title + ": unclosed " + open + " in " + expr);
    }

    // ---- metric names in PromQL

    private static final Pattern STRING = Pattern.compile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`");
    private static final Pattern NAME_MATCHER = Pattern.compile("__name__\\s*(=~|=)\\s*\"((?:[^\"\\\\]|\\\\.)*)\"");
    private static final Pattern LABEL_VALUES = Pattern.compile("\\s*label_values\\(\\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\\s*,\\s*\\w+\\s*\\)\\s*");
    /** by/without/on/ignoring/group_left/group_right and their label lists. */
    private static final Pattern LABEL_LIST = Pattern.compile("\\b(by|without|on|ignoring|group_left|group_right)\\s*\\([^)]*\\)");
    /**
     * An identifier not inside a number, duration or Grafana variable; group 2 is what makes it a function or an
     * aggregation operator: an opening parenthesis, or the {@code by}/{@code without} of {@code sum by (…) (…)}.
     */
    private static final Pattern IDENTIFIER = Pattern.compile("(?<![\\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\\s*(\\(|\\b(?:by|without)\\b)?");
    private static final Set<String> KEYWORDS = Set.of("by", "without", "on", "ignoring", "group_left", "group_right", "bool",
            "and", "or", "unless", "offset", "atan2", "inf", "nan");
    private static final Set<String> FUNCTIONS = Set.of(
            // aggregation operators
            "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile",
            "limitk", "limit_ratio",
            // functions
            "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "day_of_month",
            "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "double_exponential_smoothing", "exp", "floor",
            "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile", "histogram_stddev",
            "histogram_stdvar", "histogram_sum", "holt_winters", "hour", "idelta", "increase", "irate", "label_join",
            "label_replace", "ln", "log2", "log10", "minute", "month", "predict_linear", "rate", "resets", "round", "scalar",
            "sgn", "sort", "sort_desc", "sort_by_label", "sort_by_label_desc", "sqrt", "time", "timestamp", "vector", "year",
            "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time", "quantile_over_time",
            "stddev_over_time", "stdvar_over_time", "last_over_time", "present_over_time", "mad_over_time",
            "acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh", "tan", "tanh", "deg", "rad", "pi",
            "start", "end");

    /**
     * The metrics a PromQL expression reads: names it selects ({@code name{…}}, {@code {__name__="name"}}) and the
     * {@code __name__=~} regexes it selects by. Label names, label values and other strings, ranges, functions,
     * aggregation operators and keywords are no metrics; a name followed by a parenthesis that is no PromQL function
     * is refused (a misspelt function must not pass as a metric that then is "missing").
     */
    record MetricNames(Set<String> exact, Set<String> regexes) {
        static MetricNames of(String expr) {
            Set<String> exact = new LinkedHashSet<>();
            Set<String> regexes = new LinkedHashSet<>();
            Matcher byName = NAME_MATCHER.matcher(expr);
            while (byName.find()) {
                (byName.group(1).equals("=") ? exact : regexes).add(byName.group(2).replace("\\\\", "\\"));
            }
            String s = STRING.matcher(expr).replaceAll("\"\"");
            s = s.replaceAll("\\{[^}]*}", " ");         // label matchers
            s = s.replaceAll("\\[[^\\]]*\\]", " ");         // ranges and subqueries, with their Grafana variables
            s = LABEL_LIST.matcher(s).replaceAll("$1 ");
            Matcher id = IDENTIFIER.matcher(s);
            while (id.find()) {
                String name = id.group(1);
                if (KEYWORDS.contains(name.toLowerCase(Locale.ROOT))) {
                    continue; // "by (…)" is left as "by (" before the aggregated expression
                }
                if (id.group(2) != null) {
                    if (!FUNCTIONS.contains(name)) {
                        throw new IllegalArgumentException("not a PromQL function: " + name + "( in " + expr);
                    }
                } else {
                    exact.add(name);
                }
            }
            return new MetricNames(exact, regexes);
        }
    }

    // ---- scrapes

    /** The sample names of a Prometheus text exposition (histogram and summary series with their suffixes). */
    private static Set<String> sampleNames(String exposition) {
        Set<String> names = new HashSet<>();
        for (String line : exposition.split("\n")) {
            if (!line.isBlank() && !line.startsWith("#")) {
                Matcher m = SAMPLE_NAME.matcher(line);
                if (m.lookingAt()) {
                    names.add(m.group());
                }
            }
        }
        assertFalse(names.isEmpty(), "an exposition without samples:\n" + exposition);
        return names;
    }

    private static final Pattern SAMPLE_NAME = Pattern.compile("[a-zA-Z_:][a-zA-Z0-9_:]*");

    private static String sourceOf(Map<String, Set<String>> exported, Predicate<String> matches) {
        for (Map.Entry<String, Set<String>> source : exported.entrySet()) {
            if (source.getValue().stream().anyMatch(matches)) {
                return source.getKey();
            }
        }
        return null;
    }

    /** A full GC in the JVM {@code pid}, by the jcmd next to the java that runs it. */
    private static void gcOnce(long pid) throws IOException, InterruptedException {
        Path javaBinary = Path.of(ProcessHandle.of(pid).flatMap(p -> p.info().command())
                .orElseThrow(() -> new IllegalStateException("no command line for pid " + pid)));
        Process jcmd = new ProcessBuilder(javaBinary.resolveSibling("jcmd").toString(), Long.toString(pid), "GC.run")
                .redirectErrorStream(true).start();
        String out = new String(jcmd.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertEquals(0, jcmd.waitFor(), "jcmd " + pid + " GC.run: " + out);
    }

    private static String scrape(int port, String path) {
        try {
            HttpResponse<String> response = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                    .timeout(TIMEOUT).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, response.statusCode(), port + path + ": " + response.body());
            return response.body();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}
