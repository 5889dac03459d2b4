package io.meshcrypt.istio;

import static io.meshcrypt.e2e.support.Records.text;
import static io.meshcrypt.e2e.support.Records.utf8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.meshcrypt.e2e.support.Await;
import io.meshcrypt.e2e.support.Envelope;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.meshconfig.BrokerListenersHeader;
import io.meshcrypt.meshconfig.mesh.Mesh;
import io.meshcrypt.pki.LocalCa;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Workload identity in Istio (docs/istio.md, "Workload identity"), with real Envoys configured as istiod configures
 * them, the filter-service's own jar with {@code tls: mesh-sidecar}, and the shared broker:
 * <pre>
 * Kafka client ─▶ app sidecar (Envoy: the EnvoyFilter's listener, network ext_proc)
 *                   │ gRPC over Istio mTLS, the workload's certificate spiffe://cluster.local/ns/apps/sa/NAME
 *                   ▼
 *                 filter-service's sidecar (Envoy: inbound TLS listener, client certificate required,
 *                   │                        HCM with forward_client_cert_details APPEND_FORWARD, uri: true)
 *                   │ plaintext HTTP/2 from 127.0.0.6, x-forwarded-client-cert: ...;URI=spiffe://...
 *                   ▼
 *                 filter-service (tls: mesh-sidecar): identity = URI of the header's last element
 * </pre>
 * Three application workloads: billing (a reader), other (not), and sidecars of "other" that add a forged
 * {@code x-forwarded-client-cert} claiming billing to their ext_proc streams ({@code initial_metadata}), as a caller
 * that controls its own request headers can.
 */
class IstioWorkloadIdentityTest {

    private static final URI BILLING = IstioMutualTls.workloadId("apps", "billing");
    private static final URI OTHER = IstioMutualTls.workloadId("apps", "other");
    private static final String XFCC = "x-forwarded-client-cert";

    /** A whole element claiming billing, as the filter-service's sidecar would write it. */
    private static final String FORGED_ELEMENT = "By=" + IstioMutualTls.FILTER_SERVICE_ID + ";URI=" + BILLING;
    /**
     * An element claiming billing left with an open quote: a parser that honours quotes and does not check they close
     * reads the element the sidecar appends as the rest of this one, and this one's URI as the last.
     */
    private static final String FORGED_OPEN_QUOTE = "URI=" + BILLING + ";Subject=\"";

    private static final String BILLING_APP = "billing";
    private static final String OTHER_APP = "other";
    private static final String FORGER_APP = "forger";
    private static final String OPEN_QUOTE_FORGER_APP = "forger-open-quote";
    /** What each forger's sidecar puts into x-forwarded-client-cert. */
    private static final Map<String, String> FORGED = Map.of(FORGER_APP, FORGED_ELEMENT, OPEN_QUOTE_FORGER_APP, FORGED_OPEN_QUOTE);

    private static final String POLICY = """
            policy:
              encrypt:
                - {topic: "payments.*", readers: ["%1$s"], others: ciphertext}
                - {topic: "ledger.*", readers: ["%1$s"], others: deny}
              unmatched: passthrough
            """.formatted(BILLING);

    @TempDir
    static Path dir;

    private static LocalMesh mesh;
    private static Path inboundAccessLog;
    /** Application name → the Kafka bootstrap address of its sidecar. */
    private static final Map<String, String> APPS = new HashMap<>();
    private static final List<AutoCloseable> RUNNING = new ArrayList<>();

    @BeforeAll
    static void filterServiceAndSidecars() throws Exception {
        mesh = LocalMesh.shared();
        LocalCa ca = LocalCa.openOrCreate(dir.resolve("istio-ca"));
        Path root = ca.caCertificate();

        // the filter-service, plaintext on loopback behind its sidecar
        int filterPort = SidecarEnvoy.freePort();
        Path keyset = dir.resolve("keyset.json");
        Keysets.create(keyset);
        Path filterYaml = dir.resolve("filter.yaml");
        Files.writeString(filterYaml, "listen: 127.0.0.1:" + filterPort + "\ntls: mesh-sidecar\nkeyset: keyset.json\n" + POLICY);
        RUNNING.add(FilterServiceProcess.start(mesh.root(), filterYaml, filterPort, dir.resolve("filter-service.log")));

        // its sidecar: mutual TLS in, the caller's certificate appended to x-forwarded-client-cert, plaintext out
        LocalCa.Issued filterWorkload = IstioWorkloadCertificates.issue(ca, "meshcrypt-filter-service",
                IstioMutualTls.FILTER_SERVICE_ID, Duration.ofHours(1));
        int inboundPort = SidecarEnvoy.freePort();
        inboundAccessLog = dir.resolve("filter-sidecar-xfcc.log");
        Path sidecarDir = Files.createDirectories(dir.resolve("filter-sidecar"));
        int sidecarAdmin = SidecarEnvoy.freePort();
        ObjectNode sidecar = SidecarEnvoy.bootstrap(sidecarDir, sidecarAdmin);
        sidecar.withArray("/static_resources/listeners")
                .add(IstioMutualTls.inboundListener(inboundPort, filterWorkload, root, inboundAccessLog));
        sidecar.withArray("/static_resources/clusters").add(IstioMutualTls.inboundCluster(filterPort));
        RUNNING.add(SidecarEnvoy.start(sidecarDir, sidecar, sidecarAdmin));

        // the application workloads' sidecars
        LocalCa.Issued billing = IstioWorkloadCertificates.issue(ca, BILLING_APP, BILLING, Duration.ofHours(1));
        LocalCa.Issued other = IstioWorkloadCertificates.issue(ca, OTHER_APP, OTHER, Duration.ofHours(1));
        startApplicationSidecar(BILLING_APP, billing, root, inboundPort, null);
        startApplicationSidecar(OTHER_APP, other, root, inboundPort, null);
        for (Map.Entry<String, String> forger : FORGED.entrySet()) {
            startApplicationSidecar(forger.getKey(), other, root, inboundPort, forger.getValue());
        }
    }

    @AfterAll
    static void stopAll() throws Exception {
        for (AutoCloseable c : RUNNING.reversed()) {
            c.close();
        }
        RUNNING.clear();
        APPS.clear();
    }

    /**
     * An application's sidecar: the Kafka listener and ext_proc filter of the EnvoyFilter meshcrypt-kafka, bound to a
     * port of its own (no iptables here) and forwarding to the shared broker; the ext_proc stream says which port
     * stands for the broker (what interception makes unnecessary in a pod), and carries {@code forgedXfcc} if not null.
     */
    private static void startApplicationSidecar(String name, LocalCa.Issued workload, Path root, int filterSidecarPort,
            String forgedXfcc) throws IOException {
        JsonNode kafkaFilter = IstioManifests.read(IstioManifests.istioDir(mesh.root()).resolve("base/workloads/envoyfilter-kafka.yaml"));
        ObjectNode listener = (ObjectNode) IstioManifests.onlyPatch(kafkaFilter, "LISTENER", "SIDECAR_OUTBOUND").at("/patch/value").deepCopy();
        String brokerCluster = IstioManifests.onlyPatch(kafkaFilter, "CLUSTER", "SIDECAR_OUTBOUND").at("/patch/value/name").asText();
        int port = SidecarEnvoy.freePort();
        listener.remove("bind_to_port");
        listener.set("address", IstioManifests.socketAddress("127.0.0.1", port));
        ObjectNode grpcService = (ObjectNode) listener.at("/filter_chains/0/filters/0/typed_config/grpc_service");
        ObjectNode envoyGrpc = (ObjectNode) grpcService.get("envoy_grpc");
        if (!envoyGrpc.has("authority")) {
            // Envoy's gRPC client sends the cluster name as :authority unless told otherwise, and the '|' of Istio's
            // outbound cluster names is refused by the HTTP/2 codec of the filter-service's sidecar (the stream is
            // reset: http2.invalid.header.field). The manifests need envoy_grpc.authority (docs/istio.md).
            envoyGrpc.put("authority", IstioMutualTls.FILTER_SERVICE_HOST);
        }
        ArrayNode metadata = grpcService.putArray("initial_metadata");
        metadata.addObject().put("key", BrokerListenersHeader.NAME)
                .put("value", BrokerListenersHeader.write(Map.of(1, new Mesh.Address("127.0.0.1", port))));
        if (forgedXfcc != null) {
            metadata.addObject().put("key", XFCC).put("value", forgedXfcc);
        }
        String[] broker = mesh.brokerDirect().split(":");
        Path appDir = Files.createDirectories(dir.resolve("sidecar-" + name));
        int adminPort = SidecarEnvoy.freePort();
        ObjectNode bootstrap = SidecarEnvoy.bootstrap(appDir, adminPort);
        bootstrap.withArray("/static_resources/listeners").add(listener);
        bootstrap.withArray("/static_resources/clusters")
                .add(IstioManifests.staticCluster(brokerCluster, broker[0], Integer.parseInt(broker[1])));
        SidecarEnvoy.replaceCluster(bootstrap, IstioMutualTls.filterServiceCluster(filterSidecarPort, workload, root));
        RUNNING.add(SidecarEnvoy.start(appDir, bootstrap, adminPort));
        APPS.put(name, "127.0.0.1:" + port);
    }

    // ---- readers get plaintext, others the envelope

    @Test
    void givenBillingIsAReader_whenBillingProducesAndConsumesThroughItsSidecar_thenItReadsPlaintextAndTheBrokerStoresEnvelopes() {
        String topic = mesh.createTopic("payments.billing", 1);
        byte[] value = utf8("invoice 2026-0042 card 4111 1111 1111 1111");

        produce(BILLING_APP, topic, value);
        List<ConsumerRecord<byte[], byte[]>> atRest = mesh.readDirect(topic);
        List<ConsumerRecord<byte[], byte[]>> seen = consume(BILLING_APP, topic);

        assertEquals(1, atRest.size());
        Envelope.assertEnvelopeOf(value, atRest.get(0).value(), topic + " at rest");
        assertEquals(List.of(text(value)), seen.stream().map(r -> text(r.value())).toList());
    }

    @Test
    void givenOthersDeny_whenOtherConsumes_thenItsClientReportsTopicAuthorizationFailedWhileBillingReadsPlaintext() {
        String topic = mesh.createTopic("ledger.other", 1);
        byte[] value = utf8("ledger entry 7: 1200.00 EUR");
        produce(BILLING_APP, topic, value);

        TopicAuthorizationException refused = assertThrows(TopicAuthorizationException.class, () -> consume(OTHER_APP, topic));

        assertTrue(refused.unauthorizedTopics().contains(topic), refused.toString());
        assertEquals(List.of(text(value)), consume(BILLING_APP, topic).stream().map(r -> text(r.value())).toList());
    }

    /** other as it is, and other's sidecar that claims billing in a forged x-forwarded-client-cert element. */
    @ParameterizedTest
    @ValueSource(strings = {OTHER_APP, FORGER_APP})
    void givenOthersCiphertext_whenANonReaderConsumes_thenItGetsTheEnvelopeAsStored(String nonReader) {
        assertConsumerGetsTheStoredEnvelope(nonReader);
    }

    @Test
    void givenOthersCiphertext_whenANonReaderClaimsBillingInAnXfccWithAnOpenQuote_thenItGetsTheEnvelopeAsStored() {
        assertConsumerGetsTheStoredEnvelope(OPEN_QUOTE_FORGER_APP);
    }

    /** Given a record billing produced to a topic with others: ciphertext, when nonReader consumes it, then it gets the envelope. */
    private static void assertConsumerGetsTheStoredEnvelope(String nonReader) {
        String topic = mesh.createTopic("payments." + nonReader, 1);
        byte[] value = utf8("invoice 2026-0043 card 5500 0000 0000 0004");
        produce(BILLING_APP, topic, value);

        List<ConsumerRecord<byte[], byte[]>> seen = consume(nonReader, topic);

        byte[] atRest = mesh.readDirect(topic).get(0).value();
        Envelope.assertEnvelopeOf(value, atRest, topic + " at rest");
        assertEquals(1, seen.size());
        assertArrayEquals(atRest, seen.get(0).value(), nonReader + " must get the stored envelope, byte for byte");
    }

    // ---- what a forged x-forwarded-client-cert turns into on the way

    @ParameterizedTest
    @ValueSource(strings = {FORGER_APP, OPEN_QUOTE_FORGER_APP})
    void givenAForgedXfcc_whenTheFilterServicesSidecarForwardsTheStream_thenItAppendsTheCallersVerifiedIdentityLast(String forger) {
        // the Envoy half of the contract, as Istio configures it: what the filter-service receives from a forger
        String topic = mesh.createTopic("payments.xfcc", 1);
        String forged = FORGED.get(forger);

        consume(forger, topic);

        // one access log line per ext_proc stream, written when the stream ends (the consumer closed its connections)
        String appended = ";URI=" + OTHER;
        Await.until(Duration.ofSeconds(10), () -> xfccLines().stream().anyMatch(l -> l.startsWith(forged + ",") && l.endsWith(appended)),
                () -> "no stream from " + forger + " whose header is the forged value, then an element ending " + appended
                        + "; the sidecar forwarded " + xfccLines());
        assertTrue(xfccLines().stream().filter(l -> l.startsWith(forged + ",")).allMatch(l -> l.endsWith(appended)),
                () -> "a forged stream arrived without the caller's identity last: " + xfccLines());
    }

    // ---- clients and the sidecar's log

    private static void produce(String app, String topic, byte[] value) {
        try (KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, APPS.get(app)))) {
            producer.send(new ProducerRecord<>(topic, value)).get(LocalMesh.CLIENT_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new AssertionError(app + " could not produce to " + topic, e);
        }
    }

    private static List<ConsumerRecord<byte[], byte[]>> consume(String app, String topic) {
        try (KafkaConsumer<byte[], byte[]> consumer = mesh.consumerThroughEnvoy(Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, APPS.get(app)))) {
            return LocalMesh.drain(consumer, topic);
        }
    }

    /** The {@code x-forwarded-client-cert} of each stream the filter-service's sidecar forwarded. */
    private static List<String> xfccLines() {
        try {
            return Files.exists(inboundAccessLog) ? Files.readAllLines(inboundAccessLog) : List.of();
        } catch (IOException e) {
            throw new AssertionError("cannot read " + inboundAccessLog, e);
        }
    }
}
