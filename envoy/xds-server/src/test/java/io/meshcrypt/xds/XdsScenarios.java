package io.meshcrypt.xds;

import static io.meshcrypt.xds.XdsMeshHarness.await;
import static io.meshcrypt.xds.XdsMeshHarness.envoyVersion;
import static io.meshcrypt.xds.XdsMeshHarness.isEnvelope;
import static io.meshcrypt.xds.XdsMeshHarness.listeners;
import static io.meshcrypt.xds.XdsMeshHarness.producer;
import static io.meshcrypt.xds.XdsMeshHarness.readAll;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpServer;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.Node;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The xDS scenarios against real Envoy 1.40 sidecars, real filter-services and a real broker; run once per xDS mode
 * by the subclasses. Each test starts from the base mesh file (policy: encrypt enc-*, unmatched passthrough).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
abstract class XdsScenarios {

    private final String apiType;
    private final int portBase;
    private XdsMeshHarness mesh;

    XdsScenarios(String apiType, int portBase) {
        this.apiType = apiType;
        this.portBase = portBase;
    }

    @BeforeAll
    void start() throws Exception {
        mesh = new XdsMeshHarness(apiType, portBase);
    }

    @AfterAll
    void stop() {
        if (mesh != null) {
            mesh.close();
        }
    }

    @BeforeEach
    void baseMesh() throws Exception {
        String before = mesh.status().get("version").asText();
        String yaml = mesh.baseMesh(List.of("enc-*"));
        if (!yaml.equals(java.nio.file.Files.readString(mesh.mesh))) {
            mesh.writeMesh(yaml);
            mesh.awaitApplied(mesh.awaitNewVersion(before));
        }
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static void send(KafkaProducer<byte[], byte[]> producer, String topic, String value) throws Exception {
        producer.send(new ProducerRecord<>(topic, utf8(value))).get(30, TimeUnit.SECONDS);
    }

    @Test
    @Order(1)
    void givenOneMeshFile_whenTwoEnvoysConnect_thenEachGetsItsOwnListenersAndEncryptedTrafficFlowsThroughBoth() throws Exception {
        String listenersA = listeners(mesh.adminA);
        String listenersB = listeners(mesh.adminB);
        assertTrue(listenersA.contains("kafka_main_bootstrap::127.0.0.1:" + mesh.bootstrapA), listenersA);
        assertTrue(listenersA.contains("kafka_main_broker_1::127.0.0.1:" + mesh.brokerA), listenersA);
        assertFalse(listenersA.contains(":" + mesh.bootstrapB), listenersA);
        assertTrue(listenersB.contains("kafka_main_bootstrap::127.0.0.1:" + mesh.bootstrapB), listenersB);
        assertFalse(listenersB.contains(":" + mesh.bootstrapA), listenersB);
        assertEquals(apiType.equals("GRPC") ? "sotw" : "delta", mesh.envoyStatus("app-a").get("mode").asText());

        String topic = XdsMeshHarness.createTopic("enc-two");
        try (KafkaProducer<byte[], byte[]> viaA = producer(mesh.bootstrapA);
             KafkaProducer<byte[], byte[]> viaB = producer(mesh.bootstrapB)) {
            send(viaA, topic, "from-a");
            send(viaB, topic, "from-b");
        }

        List<ConsumerRecord<byte[], byte[]>> atRest = readAll(XdsMeshHarness.BROKER, topic);
        assertEquals(2, atRest.size());
        atRest.forEach(r -> assertTrue(isEnvelope(r.value()), "ciphertext at rest"));
        for (int bootstrap : List.of(mesh.bootstrapA, mesh.bootstrapB)) {
            List<ConsumerRecord<byte[], byte[]>> seen = readAll("127.0.0.1:" + bootstrap, topic);
            assertEquals(List.of("from-a", "from-b"), seen.stream().map(r -> new String(r.value(), StandardCharsets.UTF_8)).toList(),
                    "decrypted through the Envoy on " + bootstrap);
        }
    }

    @Test
    @Order(2)
    void givenPassthroughTopic_whenAddedToThePolicy_thenLaterRecordsAreCiphertextEarlierOnesUnchangedAndNoEnvoyRestarts() throws Exception {
        String topic = XdsMeshHarness.createTopic("late");
        String before = mesh.status().get("version").asText();
        long envoyPid = mesh.envoyA.pid();
        try (KafkaProducer<byte[], byte[]> viaA = producer(mesh.bootstrapA)) {
            send(viaA, topic, "plain-before");

            mesh.writeMesh(mesh.baseMesh(List.of("enc-*", "late-*")));
            String after = mesh.awaitNewVersion(before);
            mesh.awaitApplied(after);
            mesh.awaitFilterPolicy("filter-a", "EncryptionPolicy{encrypt=[enc-*, late-*], unmatched=passthrough}");

            send(viaA, topic, "secret-after");
        }

        List<ConsumerRecord<byte[], byte[]>> atRest = readAll(XdsMeshHarness.BROKER, topic);
        assertEquals(2, atRest.size());
        assertArrayEquals(utf8("plain-before"), atRest.get(0).value(), "the earlier record is unchanged");
        assertTrue(isEnvelope(atRest.get(1).value()), "the later record is ciphertext at rest");
        assertTrue(mesh.envoyA.isAlive());
        assertEquals(envoyPid, mesh.envoyA.pid());
        assertTrue(XdsMeshHarness.configDump(mesh.adminA).contains(mesh.status().get("version").asText()),
                "config_dump shows the new version");
    }

    @Test
    @Order(3)
    void givenOpenKafkaConnection_whenAListenerIsAddedAndRemoved_thenTheConnectionOnTheUnchangedListenerSurvives() throws Exception {
        String topic = XdsMeshHarness.createTopic("enc-keep");
        try (KafkaProducer<byte[], byte[]> viaA = producer(mesh.bootstrapA)) {
            send(viaA, topic, "one");
            double closesBefore = closes(viaA);

            String v1 = mesh.status().get("version").asText();
            mesh.writeMesh(mesh.mesh(List.of("enc-*"), true, "127.0.0.1:" + mesh.auditBootstrapA));
            String v2 = mesh.awaitNewVersion(v1);
            mesh.awaitApplied(v2);
            assertTrue(listeners(mesh.adminA).contains("kafka_audit_bootstrap::127.0.0.1:" + mesh.auditBootstrapA));
            assertFalse(listeners(mesh.adminB).contains("kafka_audit"), "B's listeners are its own");
            // the new listener is live and runs ext_proc: Metadata through it comes back rewritten to A's broker
            // listener of cluster audit (the listener map its stream carries), not to the filter config's brokers:
            assertEquals(List.of(mesh.auditBrokerA), brokerPorts(mesh.auditBootstrapA));

            mesh.writeMesh(mesh.baseMesh(List.of("enc-*")));
            mesh.awaitApplied(mesh.awaitNewVersion(v2));
            await(() -> !listeners(mesh.adminA).contains("kafka_audit"), "the audit listeners removed from A");

            send(viaA, topic, "two");
            assertEquals(closesBefore, closes(viaA), "no connection of the producer was closed by the pushes");
        }
        List<ConsumerRecord<byte[], byte[]>> atRest = readAll(XdsMeshHarness.BROKER, topic);
        assertEquals(2, atRest.size());
        atRest.forEach(r -> assertTrue(isEnvelope(r.value())));
    }

    @Test
    @Order(4)
    void givenMeshFileWithAnError_whenSaved_thenTheErrorNamesTheFieldAndEnvoysKeepTheOldConfig() throws Exception {
        String good = mesh.status().get("version").asText();

        mesh.writeMesh(mesh.baseMesh(List.of("enc-*")).replace("unmatched: passthrough", "unmatched: passthru"));

        await(() -> !mesh.status().get("lastMeshError").isNull(), () -> "the mesh error in /status");
        String error = mesh.status().get("lastMeshError").asText();
        assertEquals(mesh.mesh + ":25:3: policy.unmatched: must be one of passthrough, reject (got \"passthru\")", error);
        assertTrue(mesh.log("xds-server").contains("mesh file rejected, nothing pushed; Envoys keep version " + good + ": " + error));
        await(() -> mesh.log("filter-a").contains("policy and HTTP rules NOT reloaded"), "the filter-service's own rejection");
        assertEquals(good, mesh.status().get("version").asText());
        assertEquals(good, envoyVersion(mesh.adminA, "cds"));
        assertEquals(good, envoyVersion(mesh.adminB, "cds"));
        String topic = XdsMeshHarness.createTopic("enc-after-error");
        try (KafkaProducer<byte[], byte[]> viaB = producer(mesh.bootstrapB)) {
            send(viaB, topic, "still-flowing");
        }
        assertTrue(isEnvelope(readAll(XdsMeshHarness.BROKER, topic).get(0).value()));
    }

    @Test
    @Order(5)
    void givenListenerEnvoyCannotBind_whenPushed_thenTheNackIsReportedAndTheLastGoodConfigStays() throws Exception {
        String good = mesh.status().get("version").asText();
        long nacksBefore = mesh.envoyStatus("app-a").get("nacks").asLong();

        // valid as a file (a sidecar's listener IP need not be local to the xDS server), but not on A's host
        mesh.writeMesh(mesh.mesh(List.of("enc-*"), true, "192.0.2.1:" + mesh.auditBootstrapA));
        String rejected = mesh.awaitNewVersion(good);

        await(() -> mesh.envoyStatus("app-a").get("nacks").asLong() > nacksBefore, () -> "A's NACK in /status");
        JsonNode a = mesh.envoyStatus("app-a");
        assertEquals(rejected, a.at("/lastNack/version").asText());
        assertTrue(a.at("/lastNack/detail").asText().contains("cannot bind '192.0.2.1:" + mesh.auditBootstrapA + "'"), a.toString());
        // the callback counts the NACK (what /status shows) just before it logs it: wait for the line, too
        await(() -> mesh.log("xds-server").contains("Envoy app-a rejected"), "A's NACK in the xDS server's log");
        assertTrue(XdsMeshHarness.get("http://127.0.0.1:" + mesh.statusPort + "/metrics").contains("meshcrypt_xds_nacks_total{node=\"app-a\"} "));
        // B has no audit listener: it takes the new version; A is back on its last good clusters and listeners
        await(() -> rejected.equals(envoyVersion(mesh.adminB, "cds")), "B on " + rejected);
        await(() -> !XdsMeshHarness.get("http://127.0.0.1:" + mesh.adminA + "/clusters").contains("kafka_audit_"),
                "A without the audit clusters");
        assertFalse(listeners(mesh.adminA).contains("kafka_audit_bootstrap"), "the listener Envoy rejected is not there");
        if (apiType.equals("GRPC")) {
            // Envoy applied the audit broker listener of the rejected update; the full-state rollback removes it
            await(() -> !listeners(mesh.adminA).contains("kafka_audit"), "A without any audit listener");
        }
        String topic = XdsMeshHarness.createTopic("enc-after-nack");
        try (KafkaProducer<byte[], byte[]> viaA = producer(mesh.bootstrapA)) {
            send(viaA, topic, "still-flowing");
        }
        assertTrue(isEnvelope(readAll(XdsMeshHarness.BROKER, topic).get(0).value()));
        long nacksSettled = mesh.envoyStatus("app-a").get("nacks").asLong();
        assertTrue(nacksSettled - nacksBefore <= 2, "no NACK loop: " + (nacksSettled - nacksBefore) + " NACKs");
    }

    @Test
    @Order(6)
    void givenTrafficFlowing_whenTheXdsServerIsKilledAndRestarted_thenTrafficContinuesAndEnvoysResync() throws Exception {
        String topic = XdsMeshHarness.createTopic("enc-restart");
        AtomicInteger sent = new AtomicInteger();
        AtomicReference<Exception> failure = new AtomicReference<>();
        AtomicInteger running = new AtomicInteger(1);
        Thread traffic = new Thread(() -> {
            try (KafkaProducer<byte[], byte[]> viaA = producer(mesh.bootstrapA)) {
                while (running.get() == 1) {
                    send(viaA, topic, "record-" + sent.get());
                    sent.incrementAndGet();
                }
            } catch (Exception e) {
                failure.set(e);
            }
        }, "traffic");
        traffic.start();
        try {
            await(() -> sent.get() >= 10, "traffic before the kill");
            mesh.killXds();
            int atKill = sent.get();
            await(() -> sent.get() >= atKill + 20 || failure.get() != null, "traffic while the xDS server is down");
            assertEquals(null, failure.get());
            // a new sidecar configuration written while the server is down is picked up when it returns
            mesh.writeMesh(mesh.baseMesh(List.of("enc-*", "extra-*")));

            mesh.startXds();
            String version = mesh.status().get("version").asText();
            assertTrue(version.startsWith("1-"), "a fresh server process: " + version);
            mesh.awaitApplied(version);
            int atResync = sent.get();
            await(() -> sent.get() >= atResync + 10 || failure.get() != null, "traffic after the resync");
        } finally {
            running.set(0);
            traffic.join(30_000);
        }
        assertEquals(null, failure.get(), "no send failed");
        List<ConsumerRecord<byte[], byte[]>> atRest = readAll(XdsMeshHarness.BROKER, topic);
        assertEquals(sent.get(), atRest.size());
        atRest.forEach(r -> assertTrue(isEnvelope(r.value())));
    }

    private static final String ORDER = "{\"id\":7,\"card\":{\"number\":\"4111111111111111\",\"cvv\":\"123\"}}";
    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();

    @Test
    @Order(7)
    void givenOpenKafkaConnection_whenAnHttpListenerIsAdded_thenPostsReachTheAppRewrittenAndTheKafkaConnectionSurvives() throws Exception {
        BlockingQueue<byte[]> atApp = new LinkedBlockingQueue<>();
        HttpServer app = echoApp(atApp);
        String topic = XdsMeshHarness.createTopic("enc-http");
        try (KafkaProducer<byte[], byte[]> viaA = producer(mesh.bootstrapA)) {
            send(viaA, topic, "one");
            double closesBefore = closes(viaA);

            addHttpListener(app);
            assertTrue(listeners(mesh.adminA).contains("http_orders::127.0.0.1:" + mesh.httpA), listeners(mesh.adminA));
            assertFalse(listeners(mesh.adminB).contains("http_orders"), "B's listeners are its own");

            HttpResponse<String> response = postOrder();

            JsonNode seen = new ObjectMapper().readTree(atApp.poll(30, TimeUnit.SECONDS));
            assertEquals(7, seen.get("id").asInt());
            assertEquals("[redacted]", seen.at("/card/cvv").asText());
            byte[] envelope = Base64.getDecoder().decode(seen.at("/card/number").asText());
            ValueCipherV1 cipher = ValueCipherV1.fromKeysetFile(mesh.dir.resolve("keyset.json"));
            ByteBuffer plain = cipher.decrypt("orders", ByteBuffer.wrap(envelope));
            assertEquals("\"4111111111111111\"", StandardCharsets.UTF_8.decode(plain).toString());
            // the app echoes what it got; the response rule decrypts the number on the way back
            assertEquals(200, response.statusCode());
            assertEquals(ORDER.replace("\"123\"", "\"[redacted]\""), response.body());

            send(viaA, topic, "two");
            assertEquals(closesBefore, closes(viaA), "adding the HTTP listener closed no Kafka connection");
        } finally {
            app.stop(0);
        }
        assertEquals(2, readAll(XdsMeshHarness.BROKER, topic).size());
    }

    @Test
    @Order(8)
    void givenHttpListener_whenTheFilterServiceIsDown_thenRequestsFailWith5xxAndNeverReachTheApp() throws Exception {
        BlockingQueue<byte[]> atApp = new LinkedBlockingQueue<>();
        HttpServer app = echoApp(atApp);
        try {
            addHttpListener(app);
            assertEquals(200, postOrder().statusCode());
            assertNotNull(atApp.poll(30, TimeUnit.SECONDS));

            mesh.stopFilterA();
            try {
                int status = postOrder().statusCode();
                assertTrue(status >= 500 && status <= 599, "status " + status);
                // Envoy answers only after the app would have been called: nothing arrived means nothing was forwarded
                assertTrue(atApp.isEmpty(), "the app saw an unprocessed body");
            } finally {
                mesh.startFilterA();
                XdsMeshHarness.awaitPort(mesh.filterA);
            }
            await(() -> postOrder().statusCode() == 200, () -> "requests flowing again once the filter-service is back");
        } finally {
            app.stop(0);
        }
    }

    @Test
    @Order(9)
    void givenHttpListener_whenTheMeshFilesHttpRuleChanges_thenLaterRequestsFollowTheNewRuleWithoutAnyRestart() throws Exception {
        BlockingQueue<byte[]> atApp = new LinkedBlockingQueue<>();
        HttpServer app = echoApp(atApp);
        try {
            addHttpListener(app);
            assertEquals(200, postOrder().statusCode());
            assertEquals("[redacted]", new ObjectMapper().readTree(atApp.poll(30, TimeUnit.SECONDS)).at("/card/cvv").asText());
            long filterPid = mesh.filterAPid();
            String envoyListeners = listeners(mesh.adminA);

            // the rule now also masks the card's id field and redacts the CVV with another text
            String before = mesh.status().get("version").asText();
            String changed = mesh.withHttpListener(mesh.baseMesh(List.of("enc-*")), app.getAddress().getPort())
                    .replace("- redact: /card/cvv", "- {redact: /card/cvv, with: \"***\"}\n          - redact: /id");
            mesh.writeMesh(changed);
            mesh.awaitApplied(mesh.awaitNewVersion(before));

            await(() -> {
                atApp.clear();
                postOrder();
                JsonNode seen = new ObjectMapper().readTree(atApp.poll(30, TimeUnit.SECONDS));
                return "***".equals(seen.at("/card/cvv").asText()) && "[redacted]".equals(seen.at("/id").asText());
            }, () -> "filter-service A applying the mesh file's new HTTP rule");
            assertEquals(filterPid, mesh.filterAPid(), "the filter-service was not restarted");
            assertEquals(envoyListeners, listeners(mesh.adminA), "Envoy's listeners did not change");
        } finally {
            app.stop(0);
        }
    }

    @Test
    @Order(10)
    void givenSidecar_whenATransparentListenerIsAddedAndRemoved_thenEnvoyAcksTheOriginalDstListenerAndRefusesDirectConnections() throws Exception {
        String before = mesh.status().get("version").asText();
        mesh.writeMesh(mesh.withTransparent(mesh.baseMesh(List.of("enc-*"))));
        String version = mesh.awaitNewVersion(before);
        mesh.awaitApplied(version);
        await(() -> version.equals(mesh.envoyStatus("app-a").at("/acked/Listener").asText()), () -> "A's ACK of the listeners of " + version);
        assertTrue(listeners(mesh.adminA).contains("kafka_transparent::127.0.0.1:" + mesh.transparentA), listeners(mesh.adminA));
        assertFalse(listeners(mesh.adminB).contains("kafka_transparent"), "B's listeners are its own");

        JsonNode active = dynamicListener(mesh.adminA, "kafka_transparent").get("active_state");
        if (apiType.equals("GRPC")) {
            // with delta xDS a resource's version_info is the server's hash of that resource, not the mesh version
            assertEquals(version, active.get("version_info").asText());
        }
        JsonNode listener = active.get("listener");
        assertEquals("envoy.filters.listener.original_dst", listener.at("/listener_filters/0/name").asText());
        assertEquals("type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst",
                listener.at("/listener_filters/0/typed_config/@type").asText());
        assertEquals(1, listener.get("filter_chains").size(), listener.toString());
        JsonNode chain = listener.at("/filter_chains/0");
        assertEquals("remote.broker-1", chain.get("name").asText());
        assertEquals(9092, chain.at("/filter_chain_match/destination_port").asInt());
        assertEquals("192.0.2.10", chain.at("/filter_chain_match/prefix_ranges/0/address_prefix").asText());
        assertEquals(32, chain.at("/filter_chain_match/prefix_ranges/0/prefix_len").asInt());
        assertEquals("original_destination", chain.at("/filters/1/typed_config/cluster").asText());
        assertTrue(XdsMeshHarness.get("http://127.0.0.1:" + mesh.adminA + "/clusters").contains("original_destination::"),
                "the ORIGINAL_DST cluster");

        // fail closed: straight to the listener, the "original" destination is the listener itself; no chain, refused
        assertClosedWithoutAnswer(mesh.transparentA);
        await(() -> noChainMatches(mesh.adminA, mesh.transparentA) >= 1, "Envoy counting the connection without a filter chain");

        mesh.writeMesh(mesh.baseMesh(List.of("enc-*")));
        mesh.awaitApplied(mesh.awaitNewVersion(version));
        await(() -> !listeners(mesh.adminA).contains("kafka_transparent"), "the transparent listener removed from A");
        await(() -> !XdsMeshHarness.get("http://127.0.0.1:" + mesh.adminA + "/clusters").contains("original_destination::"),
                "the ORIGINAL_DST cluster removed from A");
    }

    @Test
    @Order(11)
    void givenTwoSidecarsSharingOneFilterService_whenClientsAskForMetadata_thenEachLearnsItsOwnSidecarsBrokerListener() throws Exception {
        String before = mesh.status().get("version").asText();
        // B's ext_proc streams now go to filter-service A too, whose own config names A's broker listener only
        String shared = mesh.baseMesh(List.of("enc-*")).replace("filterService: 127.0.0.1:" + mesh.filterB, "filterService: 127.0.0.1:" + mesh.filterA);
        assertFalse(shared.contains(":" + mesh.filterB), shared);
        mesh.writeMesh(shared);
        mesh.awaitApplied(mesh.awaitNewVersion(before));
        try {
            await(() -> XdsMeshHarness.get("http://127.0.0.1:" + mesh.adminB + "/clusters")
                    .contains("filter_service::127.0.0.1:" + mesh.filterA + "::"), "B's ext_proc cluster pointing at filter-service A");
            // each listener's stream carries its sidecar's listener map (x-meshcrypt-broker-listeners) from the mesh file
            assertEquals(List.of(mesh.brokerA), brokerPorts(mesh.bootstrapA));
            assertEquals(List.of(mesh.brokerB), brokerPorts(mesh.bootstrapB));
            String topic = XdsMeshHarness.createTopic("enc-shared");
            try (KafkaProducer<byte[], byte[]> viaB = producer(mesh.bootstrapB)) {
                send(viaB, topic, "via-b");
            }
            assertTrue(isEnvelope(readAll(XdsMeshHarness.BROKER, topic).getFirst().value()));
        } finally {
            String restoring = mesh.status().get("version").asText();
            mesh.writeMesh(mesh.baseMesh(List.of("enc-*")));
            mesh.awaitApplied(mesh.awaitNewVersion(restoring));
        }
    }

    /** The dynamic listener {@code name} of Envoy's /config_dump. */
    private static JsonNode dynamicListener(int adminPort, String name) throws Exception {
        JsonNode dump = new ObjectMapper().readTree(XdsMeshHarness.configDump(adminPort));
        for (JsonNode config : dump.get("configs")) {
            if (config.path("@type").asText().endsWith("ListenersConfigDump")) {
                for (JsonNode l : config.path("dynamic_listeners")) {
                    if (l.path("name").asText().equals(name)) {
                        return l;
                    }
                }
            }
        }
        throw new AssertionError("no dynamic listener " + name + " in /config_dump");
    }

    /** Envoy accepts, finds no filter chain and closes: end of stream (or a reset), never data and never a hang. */
    private static void assertClosedWithoutAnswer(int port) throws Exception {
        try (Socket socket = new Socket("127.0.0.1", port)) {
            socket.setSoTimeout(10_000);
            int read;
            try {
                socket.getOutputStream().write(utf8("not for anyone"));
                read = socket.getInputStream().read();
            } catch (SocketTimeoutException e) {
                throw new AssertionError("the connection to 127.0.0.1:" + port + " stayed open", e);
            } catch (SocketException e) {
                read = -1; // reset
            }
            assertEquals(-1, read, "no answer on a connection without a filter chain");
        }
    }

    private static long noChainMatches(int adminPort, int listenerPort) {
        String stat = "listener.127.0.0.1_" + listenerPort + ".no_filter_chain_match: ";
        for (String line : XdsMeshHarness.get("http://127.0.0.1:" + adminPort + "/stats?filter=no_filter_chain_match").lines().toList()) {
            if (line.startsWith(stat)) {
                return Long.parseLong(line.substring(stat.length()).strip());
            }
        }
        return 0;
    }

    /** Records every body it receives and echoes it as JSON. */
    private static HttpServer echoApp(BlockingQueue<byte[]> received) throws java.io.IOException {
        HttpServer app = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        app.createContext("/", exchange -> {
            byte[] body = exchange.getRequestBody().readAllBytes();
            received.add(body);
            exchange.getResponseHeaders().set("content-type", "application/json");
            exchange.sendResponseHeaders(200, body.length == 0 ? -1 : body.length);
            exchange.getResponseBody().write(body);
            exchange.close();
        });
        app.start();
        return app;
    }

    private void addHttpListener(HttpServer app) throws Exception {
        String before = mesh.status().get("version").asText();
        mesh.writeMesh(mesh.withHttpListener(mesh.baseMesh(List.of("enc-*")), app.getAddress().getPort()));
        mesh.awaitApplied(mesh.awaitNewVersion(before));
        await(() -> listeners(mesh.adminA).contains("http_orders::"), "A's HTTP listener");
    }

    private HttpResponse<String> postOrder() throws Exception {
        HttpRequest request = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + mesh.httpA + "/orders"))
                .timeout(Duration.ofSeconds(30))
                .header("content-type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(ORDER))
                .build();
        return HTTP.send(request, HttpResponse.BodyHandlers.ofString());
    }

    private static double closes(KafkaProducer<byte[], byte[]> producer) {
        for (java.util.Map.Entry<MetricName, ? extends Metric> m : producer.metrics().entrySet()) {
            if (m.getKey().name().equals("connection-close-total") && m.getKey().group().equals("producer-metrics")) {
                return (double) m.getValue().metricValue();
            }
        }
        throw new AssertionError("producer has no connection-close-total metric");
    }

    private static List<Integer> brokerPorts(int bootstrapPort) throws Exception {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + bootstrapPort);
        try (Admin admin = Admin.create(props)) {
            DescribeClusterResult cluster = admin.describeCluster();
            return cluster.nodes().get(30, TimeUnit.SECONDS).stream().map(Node::port).toList();
        }
    }
}
