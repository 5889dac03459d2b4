package io.meshcrypt.istio;

import static io.meshcrypt.istio.IstioManifests.FILTER_CLUSTER;
import static io.meshcrypt.istio.IstioManifests.JSON;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpServer;
import io.meshcrypt.e2e.support.Await;
import io.meshcrypt.e2e.support.Envelope;
import io.meshcrypt.e2e.support.Mesh;
import io.meshcrypt.filter.config.FilterConfig;
import io.meshcrypt.filter.crypto.Keysets;
import io.meshcrypt.filter.crypto.RecordCipher;
import io.meshcrypt.filter.policy.EncryptionPolicy;
import io.meshcrypt.filter.proxy.BrokerAddresses;
import io.meshcrypt.filter.proxy.KafkaProxy;
import io.meshcrypt.filter.transport.ExtProcServer;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The EnvoyFilter manifests under istio/ loaded by a real Envoy (the 1.40 build the project runs) in
 * listeners shaped like the ones istiod generates for a sidecar: the virtual outbound listener
 * (original_dst hand-off, REGISTRY_ONLY black hole), the Kafka listener the EnvoyFilter adds, and HTTP
 * connection managers on the inbound and outbound side with the HTTP ext_proc patch inserted before the
 * router. The filter-service's cluster carries Istio's outbound cluster name.
 */
class EnvoyFilterInEnvoyTest {

    private static final Duration READY = Duration.ofSeconds(30);

    private static Mesh mesh;
    private static Path envoy;
    private static JsonNode kafkaFilter;
    private static JsonNode httpFilter;

    private final List<AutoCloseable> cleanup = new ArrayList<>();

    @TempDir
    Path dir;

    @BeforeAll
    static void manifestsAndEnvoy() {
        mesh = Mesh.shared();
        envoy = Path.of(System.getProperty("meshcrypt.envoy",
                mesh.logs().getParent().resolve("venv/bin/envoy").toString()));
        assertTrue(Files.isExecutable(envoy), "no Envoy at " + envoy + " (set -Dmeshcrypt.envoy)");
        Path workloads = IstioManifests.istioDir(mesh.root()).resolve("base/workloads");
        kafkaFilter = IstioManifests.read(workloads.resolve("envoyfilter-kafka.yaml"));
        httpFilter = IstioManifests.read(workloads.resolve("envoyfilter-http.yaml"));
    }

    @AfterEach
    void closeAll() throws Exception {
        for (AutoCloseable c : cleanup.reversed()) {
            c.close();
        }
    }

    // ---- Kafka: network ext_proc

    @Test
    void givenKafkaEnvoyFilter_whenLoadedIntoIstioShapedSidecar_thenEnvoyAcceptsIt() throws Exception {
        ObjectNode bootstrap = sidecarBootstrap(freePort());
        bootstrap.withArray("/static_resources/listeners").add(kafkaListener());
        bootstrap.withArray("/static_resources/clusters").add(kafkaCluster());

        Validation result = validate(bootstrap);

        assertEquals(0, result.exitCode(), result.output());
    }

    @Test
    void givenKafkaListenerWithUnknownNetworkFilter_whenValidated_thenEnvoyRejectsIt() throws Exception {
        // what a stock istio-proxy does with the real patch: the validation above is therefore a real check
        ObjectNode listener = kafkaListener();
        ObjectNode extProc = (ObjectNode) listener.at("/filter_chains/0/filters/0");
        ((ObjectNode) extProc.get("typed_config"))
                .put("@type", "type.googleapis.com/envoy.extensions.filters.network.not_built_in.v3.Config");
        ObjectNode bootstrap = sidecarBootstrap(freePort());
        bootstrap.withArray("/static_resources/listeners").add(listener);
        bootstrap.withArray("/static_resources/clusters").add(kafkaCluster());

        Validation result = validate(bootstrap);

        assertNotEquals(0, result.exitCode(), result.output());
    }

    @Test
    void givenKafkaEnvoyFilterListener_whenClientsProduceAndConsumeThroughIt_thenBrokerStoresOnlyEnvelopes()
            throws Exception {
        // Given: the EnvoyFilter's listener and cluster with the two changes a host without iptables and
        // without Istio's SDS needs: a bound port instead of the original_dst hand-off, the mesh broker as a
        // STATIC endpoint instead of ORIGINAL_DST over mTLS. The ext_proc and tcp_proxy configs are verbatim.
        int listenerPort = freePort();
        String[] broker = mesh.brokerDirect().split(":");
        Path keyset = dir.resolve("keyset.json");
        Keysets.create(keyset);
        // the filter-service advertises this listener as broker 1, so every connection stays on it
        KafkaProxy proxy = new KafkaProxy(EncryptionPolicy.encryptAll(), RecordCipher.fromKeysetFile(keyset),
                new BrokerAddresses(Map.of(1, new InetSocketAddress("127.0.0.1", listenerPort))),
                FilterConfig.DEFAULT_MAX_FRAME_BYTES);
        ExtProcServer filterService = ExtProcServer.start(new InetSocketAddress("127.0.0.1", 0), proxy,
                ExtProcServer.Limits.defaults());
        cleanup.add(filterService);

        ObjectNode listener = kafkaListener();
        listener.remove("bind_to_port");
        listener.set("address", IstioManifests.socketAddress("127.0.0.1", listenerPort));
        ObjectNode cluster = kafkaCluster();
        String clusterName = cluster.get("name").asText();
        ObjectNode staticCluster = IstioManifests.staticCluster(clusterName, broker[0], Integer.parseInt(broker[1]));
        int adminPort = freePort();
        ObjectNode bootstrap = sidecarBootstrap(adminPort);
        bootstrap.withArray("/static_resources/listeners").add(listener);
        ArrayNode clusters = bootstrap.withArray("/static_resources/clusters");
        clusters.add(staticCluster);
        replaceCluster(clusters, IstioManifests.grpcCluster(FILTER_CLUSTER, "127.0.0.1", filterService.port()));
        startEnvoy(bootstrap, adminPort);
        String topic = mesh.createTopic("istio-envoyfilter", 1);
        List<byte[]> values = List.of("card 4111-1111-1111-1111".getBytes(StandardCharsets.UTF_8),
                "istio sidecar plaintext".getBytes(StandardCharsets.UTF_8));

        // When
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(producerProps("127.0.0.1:" + listenerPort))) {
            for (byte[] value : values) {
                producer.send(new ProducerRecord<>(topic, value)).get(30, TimeUnit.SECONDS);
            }
        }
        List<ConsumerRecord<byte[], byte[]>> atRest = mesh.readDirect(topic);
        List<ConsumerRecord<byte[], byte[]>> seen;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(consumerProps("127.0.0.1:" + listenerPort))) {
            seen = Mesh.drain(consumer, topic);
        }

        // Then
        assertEquals(values.size(), atRest.size());
        assertEquals(values.size(), seen.size());
        for (int i = 0; i < values.size(); i++) {
            Envelope.assertEnvelopeOf(values.get(i), atRest.get(i).value(), "record " + i + " at rest");
            assertEquals(new String(values.get(i), StandardCharsets.UTF_8),
                    new String(seen.get(i).value(), StandardCharsets.UTF_8));
        }
        String statPrefix = listener.at("/filter_chains/0/filters/0/typed_config/stat_prefix").asText();
        long streams = stat(adminPort, "network_ext_proc." + statPrefix + ".streams_started");
        assertTrue(streams > 0, "no ext_proc stream counted under " + statPrefix);
    }

    // ---- HTTP ext_proc

    @Test
    void givenHttpEnvoyFilter_whenInsertedBeforeRouterInInboundAndOutboundListeners_thenEnvoyAcceptsIt()
            throws Exception {
        ObjectNode bootstrap = sidecarBootstrap(freePort());
        ArrayNode listeners = bootstrap.withArray("/static_resources/listeners");
        listeners.add(httpListener("virtualInbound", 15006, true, "inbound|8080||", "SIDECAR_INBOUND"));
        listeners.add(httpListener("0.0.0.0_8080", 8080, false, "outbound|8080||app.apps.svc.cluster.local",
                "SIDECAR_OUTBOUND"));
        ArrayNode clusters = bootstrap.withArray("/static_resources/clusters");
        clusters.add(IstioManifests.staticCluster("inbound|8080||", "127.0.0.1", 8080));
        clusters.add(IstioManifests.staticCluster("outbound|8080||app.apps.svc.cluster.local", "10.0.0.10", 8080));

        Validation result = validate(bootstrap);

        assertEquals(0, result.exitCode(), result.output());
    }

    @Test
    void givenHttpEnvoyFilter_whenFilterServiceUnreachable_thenRequestFailsAndNeverReachesTheApp() throws Exception {
        // Given: the inbound patch in front of an app; Istio's filter-service cluster points at a closed port
        AtomicInteger appRequests = new AtomicInteger();
        HttpServer app = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        app.createContext("/", exchange -> {
            appRequests.incrementAndGet();
            exchange.sendResponseHeaders(200, -1);
            exchange.close();
        });
        app.start();
        cleanup.add(() -> app.stop(0));
        int listenerPort = freePort();
        int adminPort = freePort();
        ObjectNode bootstrap = sidecarBootstrap(adminPort);
        ObjectNode listener = httpListener("virtualInbound", listenerPort, true, "inbound|8080||", "SIDECAR_INBOUND");
        listener.set("address", IstioManifests.socketAddress("127.0.0.1", listenerPort));
        listener.remove("listener_filters");
        bootstrap.withArray("/static_resources/listeners").add(listener);
        bootstrap.withArray("/static_resources/clusters")
                .add(IstioManifests.staticCluster("inbound|8080||", "127.0.0.1", app.getAddress().getPort()));
        replaceCluster(bootstrap.withArray("/static_resources/clusters"),
                IstioManifests.grpcCluster(FILTER_CLUSTER, "127.0.0.1", freePort()));
        startEnvoy(bootstrap, adminPort);

        // When
        HttpResponse<String> response = HttpClient.newHttpClient().send(
                HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + listenerPort + "/orders"))
                        .POST(HttpRequest.BodyPublishers.ofString("{\"card\":\"4111\"}")).build(),
                HttpResponse.BodyHandlers.ofString());

        // Then
        assertEquals(500, response.statusCode(), response.body());
        assertEquals(0, appRequests.get(), "the request reached the app without ext_proc");
    }

    // ---- Istio-shaped configuration

    private static ObjectNode kafkaListener() {
        JsonNode patch = IstioManifests.onlyPatch(kafkaFilter, "LISTENER", "SIDECAR_OUTBOUND");
        assertEquals("ADD", patch.at("/patch/operation").asText());
        return (ObjectNode) patch.at("/patch/value").deepCopy();
    }

    private static ObjectNode kafkaCluster() {
        JsonNode patch = IstioManifests.onlyPatch(kafkaFilter, "CLUSTER", "SIDECAR_OUTBOUND");
        assertEquals("ADD", patch.at("/patch/operation").asText());
        return (ObjectNode) patch.at("/patch/value").deepCopy();
    }

    /**
     * What every sidecar has before any EnvoyFilter: the virtual outbound listener (original_dst hand-off to
     * the port listeners, REGISTRY_ONLY default chain into the BlackHoleCluster), Istio's SDS cluster, and
     * the filter-service's outbound cluster (HTTP/2 because its port is named grpc-*).
     */
    private ObjectNode sidecarBootstrap(int adminPort) {
        ObjectNode bootstrap = JSON.createObjectNode();
        // Istio's node identity; SDS refuses to start without one
        bootstrap.putObject("node").put("id", "sidecar~10.0.0.5~orders-7d9f.apps~apps.svc.cluster.local")
                .put("cluster", "orders.apps");
        bootstrap.putObject("admin").set("address", IstioManifests.socketAddress("127.0.0.1", adminPort));
        ObjectNode resources = bootstrap.putObject("static_resources");
        ObjectNode virtualOutbound = resources.putArray("listeners").addObject();
        virtualOutbound.put("name", "virtualOutbound").put("use_original_dst", true)
                .put("traffic_direction", "OUTBOUND")
                .set("address", IstioManifests.socketAddress("0.0.0.0", 15001));
        virtualOutbound.putObject("bind_to_port").put("value", false);
        virtualOutbound.putArray("listener_filters").addObject().put("name", "envoy.filters.listener.original_dst")
                .putObject("typed_config")
                .put("@type", "type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst");
        virtualOutbound.putArray("filter_chains").addObject().put("name", "BlackHoleCluster")
                .putArray("filters").add(tcpProxy("BlackHoleCluster", "BlackHoleCluster"));
        ArrayNode clusters = resources.putArray("clusters");
        clusters.add(IstioManifests.staticCluster("BlackHoleCluster", null, 0));
        ObjectNode sds = IstioManifests.grpcCluster("sds-grpc", "127.0.0.1", 1);
        sds.remove("load_assignment");
        sds.putObject("load_assignment").put("cluster_name", "sds-grpc").putArray("endpoints").addObject()
                .putArray("lb_endpoints").addObject().putObject("endpoint").putObject("address")
                .putObject("pipe").put("path", dir.resolve("workload-spiffe-uds.sock").toString());
        clusters.add(sds);
        clusters.add(IstioManifests.grpcCluster(FILTER_CLUSTER, "10.0.0.9", 9090));
        return bootstrap;
    }

    /** An HTTP connection manager listener as Istio builds it, with the manifest's patch for {@code context} applied. */
    private static ObjectNode httpListener(String name, int port, boolean bound, String routeCluster, String context) {
        ObjectNode listener = JSON.createObjectNode();
        listener.put("name", name).set("address", IstioManifests.socketAddress("0.0.0.0", port));
        if (!bound) {
            listener.putObject("bind_to_port").put("value", false);
        }
        ObjectNode hcm = JSON.createObjectNode();
        hcm.put("@type", "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager")
                .put("stat_prefix", name);
        ObjectNode virtualHost = hcm.putObject("route_config").put("name", name).putArray("virtual_hosts").addObject();
        virtualHost.put("name", "allow_any").putArray("domains").add("*");
        virtualHost.putArray("routes").addObject().<ObjectNode>set("match", JSON.createObjectNode().put("prefix", "/"))
                .putObject("route").put("cluster", routeCluster);
        ArrayNode httpFilters = hcm.putArray("http_filters");
        httpFilters.addObject().put("name", "envoy.filters.http.router").putObject("typed_config")
                .put("@type", "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router");
        JsonNode patch = IstioManifests.onlyPatch(httpFilter, "HTTP_FILTER", context);
        assertEquals("envoy.filters.network.http_connection_manager",
                patch.at("/match/listener/filterChain/filter/name").asText());
        IstioManifests.insertBefore(httpFilters, patch,
                patch.at("/match/listener/filterChain/filter/subFilter/name").asText());
        listener.putArray("filter_chains").addObject().putArray("filters").addObject()
                .put("name", "envoy.filters.network.http_connection_manager").set("typed_config", hcm);
        return listener;
    }

    private static ObjectNode tcpProxy(String statPrefix, String cluster) {
        ObjectNode filter = JSON.createObjectNode().put("name", "envoy.filters.network.tcp_proxy");
        filter.putObject("typed_config")
                .put("@type", "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy")
                .put("stat_prefix", statPrefix).put("cluster", cluster);
        return filter;
    }

    private static void replaceCluster(ArrayNode clusters, ObjectNode replacement) {
        for (int i = 0; i < clusters.size(); i++) {
            if (clusters.get(i).path("name").asText().equals(replacement.get("name").asText())) {
                clusters.set(i, replacement);
                return;
            }
        }
        throw new AssertionError("no cluster " + replacement.get("name"));
    }

    // ---- Envoy

    private record Validation(int exitCode, String output) {
    }

    private Validation validate(ObjectNode bootstrap) throws IOException, InterruptedException {
        Path config = write(bootstrap, "validate");
        Path log = dir.resolve("envoy-validate.log");
        Process p = new ProcessBuilder(envoy.toString(), "--mode", "validate", "-c", config.toString(),
                "--log-level", "warn").redirectErrorStream(true).redirectOutput(log.toFile()).start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "envoy --mode validate did not finish");
        return new Validation(p.exitValue(), config + "\n" + Files.readString(log));
    }

    private void startEnvoy(ObjectNode bootstrap, int adminPort) throws IOException {
        Path config = write(bootstrap, "run");
        Path log = dir.resolve("envoy.log");
        Process p = new ProcessBuilder(envoy.toString(), "-c", config.toString(), "--disable-hot-restart",
                "--log-level", "warn").redirectErrorStream(true).redirectOutput(log.toFile()).start();
        cleanup.add(() -> {
            p.destroy();
            if (!p.waitFor(10, TimeUnit.SECONDS)) {
                p.destroyForcibly();
            }
        });
        Await.until(READY, () -> {
            if (!p.isAlive()) {
                throw new AssertionError("Envoy exited: " + readQuietly(log));
            }
            return "LIVE".equals(admin(adminPort, "/ready").strip());
        }, () -> "Envoy ready on admin port " + adminPort + "; log: " + readQuietly(log));
    }

    private static long stat(int adminPort, String name) {
        for (String line : admin(adminPort, "/stats?filter="
                + URLEncoder.encode("^" + name.replace(".", "\\.") + "$", StandardCharsets.UTF_8)).split("\n")) {
            if (line.startsWith(name + ": ")) {
                return Long.parseLong(line.substring(name.length() + 2).strip());
            }
        }
        throw new AssertionError("no stat " + name);
    }

    private static String admin(int adminPort, String path) {
        try {
            return HttpClient.newHttpClient().send(
                    HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + adminPort + path))
                            .timeout(Duration.ofSeconds(2)).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
        } catch (IOException e) {
            return "";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private Path write(ObjectNode bootstrap, String name) throws IOException {
        Path config = dir.resolve("envoy-" + name + ".json");
        Files.writeString(config, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(bootstrap));
        return config;
    }

    private static String readQuietly(Path file) {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            return "(" + e + ")";
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0)) {
            return socket.getLocalPort();
        }
    }

    private static Properties producerProps(String bootstrap) {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 15_000);
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30_000);
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        return props;
    }

    private static Properties consumerProps(String bootstrap) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        props.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 100);
        props.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30_000);
        return props;
    }
}
