package io.meshcrypt.istio;

import static io.meshcrypt.istio.IstioManifests.JSON;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.meshcrypt.e2e.support.Envelope;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.filter.DataPathLimits;
import io.meshcrypt.filter.config.Limits;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.kafka.BrokerAddresses;
import io.meshcrypt.filter.kafka.KafkaProxy;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.transport.ExtProcServer;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.pki.LocalCa;
import io.meshcrypt.testsupport.EnvoyProcess;
import io.meshcrypt.testsupport.RepoRoot;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

/**
 * istio/istiod-config-check (its own Go module) runs istiod's real config generation, in-process, on every built
 * overlay and checks what a labelled client's, the filter-service's and a broker's sidecar would receive; it writes
 * those listeners and clusters as JSON, which this test then loads into a real Envoy 1.40 and pushes Kafka through
 * (the generated listener and clusters, a real broker, the filter-service's ext_proc server). Go and the Go module proxy
 * are required: without them this fails, it never skips. Cost: see docs/istio-config-check.md (download and first
 * compile of istio.io/istio take minutes on 2 cores; later runs use Go's build cache).
 */
class IstiodConfigCheckTest {

    /** Loopback addresses standing for the broker's and the filter-service's pods. */
    private static final String BROKER_POD = "127.0.0.10";
    private static final String FILTER_SERVICE_POD = "127.0.0.9";

    /** The meshcrypt resources that must reach Envoy exactly as istiod generated them. */
    private static final String MESHCRYPT_PREFIX = "meshcrypt-kafka-";
    /** The dynamic-module overlay's loopback listener, through which the bridge module calls the filter-service. */
    private static final String BRIDGE_LOOPBACK_PREFIX = "meshcrypt-filter-service-";

    private static Path generated;
    private static Path log;
    private static String goTestOutput;
    private static int goTestExit;

    // kept when a test fails: the Envoy configs, logs and stats say where the path broke
    @TempDir(cleanup = CleanupMode.ON_SUCCESS)
    Path dir;

    @BeforeAll
    static void runIstiodConfigCheck() throws IOException, InterruptedException {
        Path root = RepoRoot.find();
        generated = root.resolve("tests/target/istiod-config");
        log = root.resolve("tests/target/istiod-config-check.log");
        // only this run's output: a removed overlay must not be checked from an earlier run's files
        if (Files.exists(generated)) {
            try (Stream<Path> old = Files.walk(generated)) {
                for (Path p : old.sorted(Comparator.reverseOrder()).toList()) {
                    Files.delete(p);
                }
            }
        }
        Files.createDirectories(generated);
        ProcessBuilder pb = new ProcessBuilder("go", "test", "-count=1", "-v", "./...")
                .directory(root.resolve("istio/istiod-config-check").toFile())
                .redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("MESHCRYPT_ISTIOD_CONFIG_DIR", generated.toString());
        Process go;
        try {
            go = pb.start();
        } catch (IOException e) {
            throw new AssertionError("Go is required to check the manifests against istiod (./meshcrypt setup "
                    + "--for-tests installs it): " + e.getMessage(), e);
        }
        // a fresh machine downloads and compiles istio.io/istio first
        boolean done = go.waitFor(30, TimeUnit.MINUTES);
        if (!done) {
            go.destroyForcibly();
        }
        goTestOutput = Files.readString(log);
        assertTrue(done, "go test in istio/istiod-config-check did not finish in 30 minutes; see " + log);
        goTestExit = go.exitValue();
    }

    @Test
    void givenEveryOverlay_whenIstiodGeneratesItsSidecarsConfig_thenEveryPatchIsAppliedAsWrittenAndFailsClosed() {
        assertEquals(0, goTestExit, "istiod-config-check failed (so does a module proxy that cannot be reached); see "
                + log + "\n" + tail(goTestOutput));
        assertTrue(goTestOutput.contains("--- PASS: TestIstiodGeneratedSidecarConfig"), goTestOutput);
    }

    /**
     * Every sidecar's listeners and clusters, as istiod generated them, in Istio's bootstrap shape (ADS for RDS/EDS,
     * the SDS cluster of pilot-agent). Istio-proxy's own extensions (metadata exchange, peer metadata, istio.alpn;
     * telemetry that stock Envoy does not have) are removed; nothing meshcrypt added is.
     */
    @Test
    void givenIstiodsConfigForEverySidecar_whenLoadedIntoEnvoy_thenEnvoyAcceptsIt() throws Exception {
        assertEquals(0, goTestExit, "istiod-config-check failed; see " + log);
        List<Path> sidecars;
        try (Stream<Path> files = Files.walk(generated)) {
            sidecars = files.filter(f -> f.getFileName().toString().endsWith("-listeners.json")).sorted().toList();
        }
        assertTrue(sidecars.size() >= 3, "generated sidecar configs in " + generated + ": " + sidecars);
        int meshcryptListeners = 0;
        int bridgeSidecars = 0;
        for (Path listenersFile : sidecars) {
            String sidecar = generated.relativize(listenersFile).toString().replace("-listeners.json", "");
            Path clustersFile = listenersFile.resolveSibling(
                    listenersFile.getFileName().toString().replace("-listeners.json", "-clusters.json"));
            ArrayNode listeners = (ArrayNode) JSON.readTree(listenersFile.toFile());
            ArrayNode clusters = (ArrayNode) JSON.readTree(clustersFile.toFile());
            List<JsonNode> meshcrypt = new ArrayList<>();
            for (JsonNode resource : concat(listeners, clusters)) {
                String name = resource.path("name").asText();
                if (name.startsWith(MESHCRYPT_PREFIX) || name.startsWith(BRIDGE_LOOPBACK_PREFIX)) {
                    meshcrypt.add(resource.deepCopy());
                }
            }
            TreeSet<String> removed = new TreeSet<>();
            removeIstioProxyExtensions(listeners, removed);
            removeIstioProxyExtensions(clusters, removed);
            for (JsonNode resource : meshcrypt) {
                JsonNode after = findByName(resource.has("filter_chains") ? listeners : clusters, resource.get("name").asText());
                assertEquals(resource, after, sidecar + ": removing istio-proxy extensions changed " + resource.get("name"));
                meshcryptListeners += resource.get("name").asText().startsWith(MESHCRYPT_PREFIX) && resource.has("filter_chains") ? 1 : 0;
            }

            ObjectNode bootstrap = istioBootstrap(SidecarEnvoy.freePort());
            addAds(bootstrap);
            bootstrap.withObject("/static_resources").set("listeners", listeners);
            clusters.add(IstioManifests.grpcCluster("xds-grpc", "127.0.0.1", 15010));
            clusters.add(pipeCluster("sds-grpc", dir.resolve("workload-spiffe-uds.sock")));
            bootstrap.withObject("/static_resources").set("clusters", clusters);

            EnvoyProcess.Validation result = SidecarEnvoy.validate(dir, bootstrap);

            assertEquals(0, result.exitCode(), sidecar + " (removed " + removed + "):\n" + result.output());
            if (SidecarEnvoy.loadsModule(listeners)) {
                bridgeSidecars++;
                assertTrue(result.output().contains("ABI version"), sidecar + ": Envoy did not load the bridge module:\n"
                        + result.output());
            }
        }
        assertTrue(meshcryptListeners > 0, "no sidecar had a " + MESHCRYPT_PREFIX + "* listener");
        assertTrue(bridgeSidecars > 0, "no sidecar ran the bridge module (the dynamic-module overlay)");
    }

    /**
     * Kafka through the Kafka listener, its cluster and the filter-service's cluster exactly as istiod generated them
     * for a client of the brokers-outside-mesh overlay, changed only where a host without a pod differs: the listener
     * is bound to a local port (no iptables hands it connections), the Kafka cluster is STATIC to the broker
     * (ORIGINAL_DST would dial the listener itself), and the filter-service's EDS cluster gets the endpoint EDS
     * would send for a pod without a sidecar (Istio's own transport socket match then picks plaintext).
     */
    @Test
    void givenIstiodsKafkaPathToBrokersOutsideTheMesh_whenClientsProduceAndConsume_thenBrokerStoresOnlyEnvelopes()
            throws Exception {
        kafkaThroughGeneratedConfig("brokers-outside-mesh", false);
    }

    /**
     * The same for the sample overlay, all in the mesh: the client's Kafka cluster speaks Istio mTLS (its ALPN, SAN
     * check and certificate as generated) to the broker's sidecar, whose inbound chains for the Kafka port are istiod's;
     * the filter-service's cluster picks Istio's mTLS socket (the endpoint carries {@code tlsMode: istio}, as EDS sends
     * it for a pod with a sidecar) to the filter-service's sidecar, whose inbound chains (STRICT mTLS, the
     * AuthorizationPolicy's RBAC) are istiod's. Certificates come from a test CA, with the SPIFFE ids Istio gives the
     * three pods.
     */
    @Test
    void givenIstiodsKafkaPathInsideTheMesh_whenClientsProduceAndConsume_thenBrokerStoresOnlyEnvelopes() throws Exception {
        kafkaThroughGeneratedConfig("sample", true);
    }

    /**
     * The same for the dynamic-module overlay (stock istio-proxy): the Kafka listener runs the ext_proc bridge module
     * (the build in {@value SidecarEnvoy#BRIDGE_BUILD}, found through ENVOY_DYNAMIC_MODULES_SEARCH_PATH as istio-proxy
     * finds it), which calls the filter-service through the generated loopback listener and the filter-service's mTLS
     * cluster: the filter-service's sidecar (STRICT mTLS, RBAC admitting the client's namespace only) must see the
     * client pod's identity through that hop, or Kafka fails closed. The loopback listener moves to a free port (and
     * the module's filter_service with it): a host shares one loopback among all tests, a pod has its own.
     */
    @Test
    void givenIstiodsKafkaPathThroughTheBridgeModule_whenClientsProduceAndConsume_thenBrokerStoresOnlyEnvelopes() throws Exception {
        kafkaThroughGeneratedConfig("dynamic-module", true);
    }

    /**
     * The loopback listener the bridge module's filter_service names, moved to a free port, the module's config
     * following it.
     */
    private static ObjectNode rebindBridgeLoopback(ObjectNode kafkaListener, ArrayNode listeners) throws IOException {
        ObjectNode filterConfig = (ObjectNode) kafkaListener.at("/filter_chains/0/filters/0/typed_config/filter_config");
        ObjectNode moduleConfig = (ObjectNode) JSON.readTree(filterConfig.get("value").asText());
        String address = moduleConfig.get("filter_service").asText().replaceFirst("^http://", "");
        ObjectNode loopback = null;
        for (JsonNode l : listeners) {
            JsonNode at = l.at("/address/socket_address");
            if ((at.path("address").asText() + ":" + at.path("port_value").asText()).equals(address)) {
                loopback = (ObjectNode) l;
            }
        }
        assertTrue(loopback != null && address.startsWith("127.0.0.1:"), "no loopback listener on " + address);
        int port = SidecarEnvoy.freePort();
        loopback.set("address", IstioManifests.socketAddress("127.0.0.1", port));
        moduleConfig.put("filter_service", "http://127.0.0.1:" + port);
        filterConfig.put("value", JSON.writeValueAsString(moduleConfig));
        return loopback;
    }

    private void kafkaThroughGeneratedConfig(String overlay, boolean brokersInMesh) throws Exception {
        assertEquals(0, goTestExit, "istiod-config-check failed; see " + log);
        LocalMesh mesh = LocalMesh.shared();
        Path sidecars = generated.resolve(overlay);
        ArrayNode listeners = (ArrayNode) JSON.readTree(sidecars.resolve("client-apps-listeners.json").toFile());
        ArrayNode clusters = (ArrayNode) JSON.readTree(sidecars.resolve("client-apps-clusters.json").toFile());
        boolean bridge = SidecarEnvoy.loadsModule(listeners);
        ObjectNode listener = (ObjectNode) findByName(listeners, MESHCRYPT_PREFIX + "9092");
        ObjectNode kafkaCluster = (ObjectNode) findByName(clusters, listener.at("/filter_chains/0/filters/1/typed_config/cluster").asText());
        ArrayNode clientListeners = JSON.createArrayNode().add(listener);
        ObjectNode bridgeLoopback = bridge ? rebindBridgeLoopback(listener, listeners) : null;
        String filterClusterName = bridge
                ? bridgeLoopback.at("/filter_chains/0/filters/0/typed_config/cluster").asText()
                : listener.at("/filter_chains/0/filters/0/typed_config/grpc_service/envoy_grpc/cluster_name").asText();
        ObjectNode filterCluster = (ObjectNode) findByName(clusters, filterClusterName);
        if (bridge) {
            clientListeners.add(bridgeLoopback);
        }
        int listenerPort = SidecarEnvoy.freePort();
        listener.remove("bind_to_port");
        listener.set("address", IstioManifests.socketAddress("127.0.0.1", listenerPort));
        String[] broker = mesh.brokerDirect().split(":");
        LocalCa ca = LocalCa.openOrCreate(dir.resolve("istio-ca"));

        Path keyset = dir.resolve("keyset.json");
        Keysets.create(keyset);
        // the filter-service advertises the listener as broker 1, so every connection stays on it
        KafkaProxy proxy = new KafkaProxy(EncryptionPolicy.encryptAll(), ValueCipherV1.fromKeysetFile(keyset), null,
                new BrokerAddresses(Map.of(1, new InetSocketAddress("127.0.0.1", listenerPort))),
                DataPathLimits.kafka(Limits.defaults()));
        List<AutoCloseable> running = new ArrayList<>();
        try {
            ExtProcServer filterService = ExtProcServer.start(new InetSocketAddress("127.0.0.1", 0), proxy,
                    DataPathLimits.extProc(Limits.defaults()));
            running.add(filterService);
            assertEquals("ORIGINAL_DST", kafkaCluster.path("type").asText());
            assertEquals("EDS", filterCluster.path("type").asText());
            if (brokersInMesh) {
                // the broker's and the filter-service's sidecars, their inbound chains as istiod generated them, each on
                // a loopback address of its own with the real port (RBAC and chain matches see the port the pod would)
                ArrayNode serverListeners = JSON.createArrayNode();
                ArrayNode serverClusters = JSON.createArrayNode();
                serverSide(sidecars.resolve("broker"), BROKER_POD, 9092, broker[0], Integer.parseInt(broker[1]),
                        IstioWorkloadCertificates.issue(ca, "kafka", IstioMutualTls.workloadId("kafka", "kafka"),
                                Duration.ofHours(1)), ca.caCertificate(), serverListeners, serverClusters);
                serverSide(sidecars.resolve("filter-service"), FILTER_SERVICE_POD, 9090, "127.0.0.1", filterService.port(),
                        IstioWorkloadCertificates.issue(ca, "meshcrypt-filter-service", IstioMutualTls.FILTER_SERVICE_ID,
                                Duration.ofHours(1)), ca.caCertificate(), serverListeners, serverClusters);
                int serverAdmin = SidecarEnvoy.freePort();
                ObjectNode serverBootstrap = istioBootstrap(serverAdmin);
                serverBootstrap.withObject("/static_resources").set("listeners", serverListeners);
                serverBootstrap.withObject("/static_resources").set("clusters", serverClusters);
                Path serverDir = Files.createDirectories(dir.resolve("server-sidecars"));
                running.add(SidecarEnvoy.start(serverDir, serverBootstrap, serverAdmin));
                staticTo(kafkaCluster, BROKER_POD, 9092);
                staticTo(filterCluster, FILTER_SERVICE_POD, 9090);
                // what EDS sends for an endpoint whose pod has a sidecar: Istio's mTLS socket match applies
                ((ObjectNode) filterCluster.at("/load_assignment/endpoints/0/lb_endpoints/0")).putObject("metadata")
                        .putObject("filter_metadata").putObject("envoy.transport_socket_match").put("tlsMode", "istio");
            } else {
                staticTo(kafkaCluster, broker[0], Integer.parseInt(broker[1]));
                staticTo(filterCluster, "127.0.0.1", filterService.port());
            }
            ArrayNode used = JSON.createArrayNode().add(kafkaCluster).add(filterCluster);
            removeIstioProxyExtensions(used, new TreeSet<>());
            // Envoy waits for every SDS secret a cluster names before it is ready, even for a socket no endpoint uses
            sdsToFiles(used, IstioWorkloadCertificates.issue(ca, "kafka-client",
                    IstioMutualTls.workloadId("apps", "kafka-client"), Duration.ofHours(1)), ca.caCertificate());
            int adminPort = SidecarEnvoy.freePort();
            ObjectNode bootstrap = istioBootstrap(adminPort);
            bootstrap.withObject("/static_resources").set("listeners", clientListeners);
            bootstrap.withObject("/static_resources").set("clusters", used);
            SidecarEnvoy client = SidecarEnvoy.start(dir, bootstrap, adminPort);
            running.add(client);
            String topic = mesh.createTopic("istiod-" + overlay, 1);
            List<byte[]> values = List.of("card 4111-1111-1111-1111".getBytes(StandardCharsets.UTF_8),
                    ("istiod generated this path, " + overlay).getBytes(StandardCharsets.UTF_8));
            Map<String, Object> viaListener = Map.of(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + listenerPort);

            try (KafkaProducer<byte[], byte[]> producer = mesh.producerDirect(viaListener)) {
                for (byte[] value : values) {
                    producer.send(new ProducerRecord<>(topic, value)).get(30, TimeUnit.SECONDS);
                }
            }
            List<ConsumerRecord<byte[], byte[]>> atRest = mesh.readDirect(topic);
            List<ConsumerRecord<byte[], byte[]>> seen;
            try (KafkaConsumer<byte[], byte[]> consumer = mesh.consumerDirect(viaListener)) {
                seen = LocalMesh.drain(consumer, topic);
            }

            assertEquals(values.stream().map(v -> new String(v, StandardCharsets.UTF_8)).toList(),
                    seen.stream().map(r -> new String(r.value(), StandardCharsets.UTF_8)).toList(), "what the consumer read");
            assertEquals(values.size(), atRest.size(), "records at rest");
            for (ConsumerRecord<byte[], byte[]> stored : atRest) {
                Envelope.assertEnvelopeOf(values.get((int) stored.offset()), stored.value(), "offset " + stored.offset() + " at rest");
            }
            if (bridge) {
                // the module's HTTP/2 connection to the filter-service went through the loopback listener
                String statPrefix = bridgeLoopback.at("/filter_chains/0/filters/0/typed_config/stat_prefix").asText();
                assertTrue(client.stat("tcp." + statPrefix + ".downstream_cx_total") > 0,
                        "the bridge module never connected through its loopback listener " + statPrefix);
            } else {
                String statPrefix = listener.at("/filter_chains/0/filters/0/typed_config/stat_prefix").asText();
                assertTrue(client.stat("network_ext_proc." + statPrefix + ".streams_started") > 0,
                        "no ext_proc stream counted under " + statPrefix);
            }
            if (brokersInMesh) {
                assertTrue(client.stat("cluster." + statName(kafkaCluster) + ".ssl.handshake") > 0,
                        "the Kafka cluster did not speak mTLS to the broker's sidecar");
                assertTrue(client.stat("cluster." + statName(filterCluster) + ".ssl.handshake") > 0,
                        "ext_proc did not reach the filter-service over mTLS");
            }
        } finally {
            for (AutoCloseable c : running) {
                if (c instanceof SidecarEnvoy envoy) {
                    Files.writeString(dir.resolve("stats-" + envoy.adminPort() + ".txt"), envoy.admin("/stats"));
                }
            }
            for (AutoCloseable c : running.reversed()) {
                c.close();
            }
        }
    }

    /**
     * One server-side sidecar: the virtualInbound chains istiod generated for {@code port}, on a listener of its own at
     * {@code podAddress:port} (no iptables), with the inbound cluster they forward to made STATIC to the
     * application, and {@code workload}'s certificate in place of SDS.
     */
    private static void serverSide(Path sidecar, String podAddress, int port, String appHost, int appPort,
            LocalCa.Issued workload, Path trustedCa, ArrayNode listenersOut, ArrayNode clustersOut) throws IOException {
        ArrayNode listeners = (ArrayNode) JSON.readTree(sidecar.resolveSibling(sidecar.getFileName() + "-listeners.json").toFile());
        ArrayNode clusters = (ArrayNode) JSON.readTree(sidecar.resolveSibling(sidecar.getFileName() + "-clusters.json").toFile());
        ObjectNode inbound = ((ObjectNode) findByName(listeners, "virtualInbound")).deepCopy();
        ArrayNode chains = JSON.createArrayNode();
        for (JsonNode chain : inbound.path("filter_chains")) {
            if (chain.at("/filter_chain_match/destination_port").asInt() == port) {
                chains.add(chain);
            }
        }
        assertFalse(chains.isEmpty(), sidecar + ": no inbound chain for port " + port);
        inbound.set("filter_chains", chains);
        inbound.put("name", sidecar.getFileName() + "-virtualInbound");
        inbound.set("address", IstioManifests.socketAddress(podAddress, port));
        removeIstioProxyExtensions(inbound, new TreeSet<>());
        sdsToFiles(inbound, workload, trustedCa);
        listenersOut.add(inbound);
        TreeSet<String> targets = new TreeSet<>();
        inbound.findValues("cluster").forEach(c -> targets.add(c.asText()));
        for (String target : targets) {
            ObjectNode cluster = ((ObjectNode) findByName(clusters, target)).deepCopy();
            staticTo(cluster, appHost, appPort);
            removeIstioProxyExtensions(cluster, new TreeSet<>());
            clustersOut.add(cluster);
        }
    }

    /** The name a cluster's stats carry (Istio sets alt_stat_name). */
    private static String statName(JsonNode cluster) {
        return cluster.path("alt_stat_name").asText(cluster.get("name").asText());
    }

    /** Makes an ORIGINAL_DST or EDS cluster STATIC to one endpoint, every other field as generated. */
    private static void staticTo(ObjectNode cluster, String host, int port) {
        cluster.put("type", "STATIC");
        cluster.remove("eds_cluster_config");
        if ("CLUSTER_PROVIDED".equals(cluster.path("lb_policy").asText())) {
            cluster.remove("lb_policy");
        }
        cluster.set("load_assignment", IstioManifests.staticCluster(cluster.get("name").asText(), host, port)
                .get("load_assignment"));
    }

    /** Istio's bootstrap, reduced: node identity and admin. */
    private static ObjectNode istioBootstrap(int adminPort) {
        ObjectNode bootstrap = JSON.createObjectNode();
        bootstrap.putObject("node").put("id", "sidecar~10.0.0.5~kafka-client-0.apps~apps.svc.cluster.local")
                .put("cluster", "kafka-client.apps");
        bootstrap.putObject("admin").set("address", IstioManifests.socketAddress("127.0.0.1", adminPort));
        return bootstrap;
    }

    /** ADS over the xds-grpc cluster, where istiod's routes and endpoints would come from. */
    private static void addAds(ObjectNode bootstrap) {
        ObjectNode ads = bootstrap.putObject("dynamic_resources").putObject("ads_config");
        ads.put("api_type", "GRPC").put("transport_api_version", "V3");
        ads.putArray("grpc_services").addObject().putObject("envoy_grpc").put("cluster_name", "xds-grpc");
    }

    private static ObjectNode pipeCluster(String name, Path socket) {
        ObjectNode cluster = IstioManifests.grpcCluster(name, "127.0.0.1", 1);
        cluster.putObject("load_assignment").put("cluster_name", name).putArray("endpoints").addObject()
                .putArray("lb_endpoints").addObject().putObject("endpoint").putObject("address")
                .putObject("pipe").put("path", socket.toString());
        return cluster;
    }

    /**
     * Removes every filter whose config is an istio-proxy extension (a TypedStruct or an istio.* type) from the
     * filter lists below {@code node}, recording their names.
     */
    private static void removeIstioProxyExtensions(JsonNode node, TreeSet<String> removed) {
        if (node.isArray()) {
            ArrayNode list = (ArrayNode) node;
            for (int i = list.size() - 1; i >= 0; i--) {
                JsonNode item = list.get(i);
                String type = item.path("typed_config").path("@type").asText();
                if (item.has("name") && (type.endsWith("udpa.type.v1.TypedStruct") || type.startsWith("type.googleapis.com/istio."))) {
                    removed.add(item.get("name").asText());
                    list.remove(i);
                } else {
                    removeIstioProxyExtensions(item, removed);
                }
            }
        } else if (node.isObject()) {
            node.forEach(child -> removeIstioProxyExtensions(child, removed));
        }
    }

    /**
     * Replaces Istio's SDS references (the workload certificate "default", the root "ROOTCA") below {@code node} with
     * files, as pilot-agent would serve them.
     */
    private static void sdsToFiles(JsonNode node, LocalCa.Issued workload, Path trustedCa) {
        if (node instanceof ObjectNode object) {
            if (object.remove("tls_certificate_sds_secret_configs") != null) {
                ObjectNode certificate = object.putArray("tls_certificates").addObject();
                certificate.putObject("certificate_chain").put("filename", workload.certificate().toString());
                certificate.putObject("private_key").put("filename", workload.privateKey().toString());
            }
            JsonNode combined = object.remove("combined_validation_context");
            if (combined != null) {
                ObjectNode validation = combined.path("default_validation_context").deepCopy();
                validation.putObject("trusted_ca").put("filename", trustedCa.toString());
                object.set("validation_context", validation);
            }
        }
        node.forEach(child -> sdsToFiles(child, workload, trustedCa));
    }

    private static List<JsonNode> concat(ArrayNode a, ArrayNode b) {
        List<JsonNode> out = new ArrayList<>();
        a.forEach(out::add);
        b.forEach(out::add);
        return out;
    }

    private static JsonNode findByName(ArrayNode resources, String name) {
        for (JsonNode r : resources) {
            if (r.path("name").asText().equals(name)) {
                return r;
            }
        }
        throw new AssertionError("no " + name);
    }

    private static String tail(String output) {
        return output.length() <= 20_000 ? output : output.substring(output.length() - 20_000);
    }
}
