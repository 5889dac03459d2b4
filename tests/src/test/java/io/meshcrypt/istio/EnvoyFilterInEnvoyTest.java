package io.meshcrypt.istio;

import static io.meshcrypt.istio.IstioManifests.FILTER_CLUSTER;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpServer;
import io.meshcrypt.e2e.support.Envelope;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.filter.DataPathLimits;
import io.meshcrypt.filter.config.FilterConfig;
import io.meshcrypt.filter.config.Limits;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.http.HttpExtProcService;
import io.meshcrypt.filter.http.HttpProcessor;
import io.meshcrypt.filter.kafka.BrokerAddresses;
import io.meshcrypt.filter.kafka.KafkaProxy;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.transport.ExtProcServer;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.testsupport.EnvoyProcess;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CopyOnWriteArrayList;
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

    private static LocalMesh mesh;
    private static JsonNode kafkaFilter;
    private static JsonNode httpFilter;

    private final List<AutoCloseable> cleanup = new ArrayList<>();

    @TempDir
    Path dir;

    @BeforeAll
    static void manifestsAndEnvoy() {
        mesh = LocalMesh.shared();
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
        ObjectNode bootstrap = SidecarEnvoy.bootstrap(dir, SidecarEnvoy.freePort());
        bootstrap.withArray("/static_resources/listeners").add(kafkaListener());
        bootstrap.withArray("/static_resources/clusters").add(kafkaCluster());

        EnvoyProcess.Validation result = SidecarEnvoy.validate(dir, bootstrap);

        assertEquals(0, result.exitCode(), result.output());
    }

    @Test
    void givenKafkaListenerWithUnknownNetworkFilter_whenValidated_thenEnvoyRejectsIt() throws Exception {
        // what a stock istio-proxy does with the real patch: the validation above is therefore a real check
        ObjectNode listener = kafkaListener();
        // a message Envoy knows but has no network filter for: the same "Didn't find a registered
        // implementation" a proxy built without network ext_proc answers for NetworkExternalProcessor
        ((ObjectNode) listener.at("/filter_chains/0/filters/0")).putObject("typed_config")
                .put("@type", "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router");
        ObjectNode bootstrap = SidecarEnvoy.bootstrap(dir, SidecarEnvoy.freePort());
        bootstrap.withArray("/static_resources/listeners").add(listener);
        bootstrap.withArray("/static_resources/clusters").add(kafkaCluster());

        EnvoyProcess.Validation result = SidecarEnvoy.validate(dir, bootstrap);

        assertNotEquals(0, result.exitCode(), result.output());
        assertTrue(result.output().contains("Didn't find a registered implementation"), result.output());
    }

    @Test
    void givenKafkaEnvoyFilterListener_whenClientsProduceAndConsumeThroughIt_thenBrokerStoresOnlyEnvelopes()
            throws Exception {
        // Given: the EnvoyFilter's listener and cluster with the two changes a host without iptables and
        // without Istio's SDS needs: a bound port instead of the original_dst hand-off, the mesh broker as a
        // STATIC endpoint instead of ORIGINAL_DST over mTLS. The ext_proc and tcp_proxy configs are verbatim.
        int listenerPort = SidecarEnvoy.freePort();
        String[] broker = mesh.brokerDirect().split(":");
        Path keyset = dir.resolve("keyset.json");
        Keysets.create(keyset);
        // the filter-service advertises this listener as broker 1, so every connection stays on it
        KafkaProxy proxy = new KafkaProxy(EncryptionPolicy.encryptAll(), ValueCipherV1.fromKeysetFile(keyset), null,
                new BrokerAddresses(Map.of(1, new InetSocketAddress("127.0.0.1", listenerPort))),
                DataPathLimits.kafka(Limits.defaults()));
        ExtProcServer filterService = ExtProcServer.start(new InetSocketAddress("127.0.0.1", 0), proxy,
                DataPathLimits.extProc(Limits.defaults()));
        cleanup.add(filterService);

        ObjectNode listener = kafkaListener();
        listener.remove("bind_to_port");
        listener.set("address", IstioManifests.socketAddress("127.0.0.1", listenerPort));
        ObjectNode cluster = kafkaCluster();
        String clusterName = cluster.get("name").asText();
        ObjectNode staticCluster = IstioManifests.staticCluster(clusterName, broker[0], Integer.parseInt(broker[1]));
        int adminPort = SidecarEnvoy.freePort();
        ObjectNode bootstrap = SidecarEnvoy.bootstrap(dir, adminPort);
        bootstrap.withArray("/static_resources/listeners").add(listener);
        ArrayNode clusters = bootstrap.withArray("/static_resources/clusters");
        clusters.add(staticCluster);
        SidecarEnvoy.replaceCluster(bootstrap, IstioManifests.grpcCluster(FILTER_CLUSTER, "127.0.0.1", filterService.port()));
        SidecarEnvoy sidecar = SidecarEnvoy.start(dir, bootstrap, adminPort);
        cleanup.add(sidecar);
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
            seen = LocalMesh.drain(consumer, topic);
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
        long streams = sidecar.stat("network_ext_proc." + statPrefix + ".streams_started");
        assertTrue(streams > 0, "no ext_proc stream counted under " + statPrefix);
    }

    // ---- HTTP ext_proc

    @Test
    void givenHttpEnvoyFilter_whenInsertedBeforeRouterInInboundAndOutboundListeners_thenEnvoyAcceptsIt()
            throws Exception {
        ObjectNode bootstrap = SidecarEnvoy.bootstrap(dir, SidecarEnvoy.freePort());
        ArrayNode listeners = bootstrap.withArray("/static_resources/listeners");
        listeners.add(SidecarEnvoy.httpListener(httpFilter, "virtualInbound", 15006, true, "inbound|8080||", "SIDECAR_INBOUND"));
        listeners.add(SidecarEnvoy.httpListener(httpFilter, "0.0.0.0_8080", 8080, false, "outbound|8080||app.apps.svc.cluster.local",
                "SIDECAR_OUTBOUND"));
        ArrayNode clusters = bootstrap.withArray("/static_resources/clusters");
        clusters.add(IstioManifests.staticCluster("inbound|8080||", "127.0.0.1", 8080));
        clusters.add(IstioManifests.staticCluster("outbound|8080||app.apps.svc.cluster.local", "10.0.0.10", 8080));

        EnvoyProcess.Validation result = SidecarEnvoy.validate(dir, bootstrap);

        assertEquals(0, result.exitCode(), result.output());
    }

    @Test
    void givenHttpEnvoyFilterAndRedactRule_whenRequestPassesInboundListener_thenAppReceivesRewrittenBody()
            throws Exception {
        // Given: the inbound patch in front of an app, the filter-service (both gRPC services on one port)
        // with one HTTP rule, reached under Istio's cluster name
        List<String> appBodies = new CopyOnWriteArrayList<>();
        HttpServer app = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        app.createContext("/", exchange -> {
            appBodies.add(new String(exchange.getRequestBody().readAllBytes(), StandardCharsets.UTF_8));
            exchange.sendResponseHeaders(204, -1);
            exchange.close();
        });
        app.start();
        cleanup.add(() -> app.stop(0));
        Path keyset = dir.resolve("keyset.json");
        Keysets.create(keyset);
        Path filterYaml = dir.resolve("filter.yaml");
        Files.writeString(filterYaml, """
                keyset: %s
                http:
                  rules:
                    - name: orders
                      match: {methods: [POST], path: /orders, contentType: application/json}
                      request:
                        fields:
                          - redact: /card/cvv
                """.formatted(keyset));
        FilterConfig config = FilterConfig.load(filterYaml);
        ValueCipherV1 cipher = ValueCipherV1.fromKeysetFile(config.keyset());
        HttpProcessor http = new HttpProcessor(config.http(), cipher);
        ExtProcServer filterService = ExtProcServer.start(new InetSocketAddress("127.0.0.1", 0),
                new KafkaProxy(config.policy(), cipher, null, new BrokerAddresses(Map.of()), DataPathLimits.kafka(config.limits())),
                DataPathLimits.extProc(config.limits()), List.of(workers -> new HttpExtProcService(http, workers)));
        cleanup.add(filterService);
        int listenerPort = SidecarEnvoy.freePort();
        int adminPort = SidecarEnvoy.freePort();
        ObjectNode bootstrap = SidecarEnvoy.bootstrap(dir, adminPort);
        ObjectNode listener = SidecarEnvoy.httpListener(httpFilter, "virtualInbound", listenerPort, true, "inbound|8080||",
                "SIDECAR_INBOUND");
        listener.set("address", IstioManifests.socketAddress("127.0.0.1", listenerPort));
        bootstrap.withArray("/static_resources/listeners").add(listener);
        bootstrap.withArray("/static_resources/clusters")
                .add(IstioManifests.staticCluster("inbound|8080||", "127.0.0.1", app.getAddress().getPort()));
        SidecarEnvoy.replaceCluster(bootstrap, IstioManifests.grpcCluster(FILTER_CLUSTER, "127.0.0.1", filterService.port()));
        SidecarEnvoy sidecar = SidecarEnvoy.start(dir, bootstrap, adminPort);
        cleanup.add(sidecar);

        // When
        HttpResponse<String> response = HttpClient.newHttpClient().send(
                HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + listenerPort + "/orders"))
                        .header("content-type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString("{\"card\":{\"number\":\"4111\",\"cvv\":\"123\"}}"))
                        .build(),
                HttpResponse.BodyHandlers.ofString());

        // Then
        assertEquals(204, response.statusCode(), response.body());
        assertEquals(List.of("{\"card\":{\"number\":\"4111\",\"cvv\":\"[redacted]\"}}"), appBodies);
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
        int listenerPort = SidecarEnvoy.freePort();
        int adminPort = SidecarEnvoy.freePort();
        ObjectNode bootstrap = SidecarEnvoy.bootstrap(dir, adminPort);
        ObjectNode listener = SidecarEnvoy.httpListener(httpFilter, "virtualInbound", listenerPort, true, "inbound|8080||", "SIDECAR_INBOUND");
        listener.set("address", IstioManifests.socketAddress("127.0.0.1", listenerPort));
        listener.remove("listener_filters");
        bootstrap.withArray("/static_resources/listeners").add(listener);
        bootstrap.withArray("/static_resources/clusters")
                .add(IstioManifests.staticCluster("inbound|8080||", "127.0.0.1", app.getAddress().getPort()));
        SidecarEnvoy.replaceCluster(bootstrap,
                IstioManifests.grpcCluster(FILTER_CLUSTER, "127.0.0.1", SidecarEnvoy.freePort()));
        SidecarEnvoy sidecar = SidecarEnvoy.start(dir, bootstrap, adminPort);
        cleanup.add(sidecar);

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
