package io.meshcrypt.e2e.bridge;

import static io.meshcrypt.e2e.support.Records.text;
import static io.meshcrypt.e2e.support.Records.utf8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.e2e.support.Await;
import io.meshcrypt.e2e.support.Envelope;
import io.meshcrypt.e2e.support.FakeBroker;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.e2e.support.RawPeer;
import io.meshcrypt.testsupport.EnvoyProcess;
import java.io.DataInputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.message.ApiVersionsRequestData;
import org.apache.kafka.common.message.ResponseHeaderData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer.OrderAnnotation;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The bridge under faults (issue 16's proof): the filter-service killed under a running producer, its answers held
 * past the message timeout, its connection reset; clients vanishing while their chunk is with the filter-service; a connection
 * next to all that losing and reordering nothing; and 10,000 connections leaving Envoy's memory, connections and the
 * filter-service's streams where they were. Its own {@link BridgeMesh}, plus an Envoy of its own
 * ({@link BridgeFaultSidecar}) whose bridge reaches the filter-service through a {@link BridgeFaultProxy}.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(OrderAnnotation.class)
class BridgeFaultTest {

    /** How long a close, an error or a recovery may take to show: generous, the machine is shared. */
    private static final Duration TIMEOUT = Duration.ofSeconds(60);
    private static final int CHURN_CONNECTIONS = 10_000;
    /** Envoy's allocated heap may grow this much over the churn: a leak of 2.5 KB per connection fails it. */
    private static final long MEMORY_GROWTH_BOUND = 24L << 20;

    // plaintext: its own sidecars dial the filter-service with an http:// bridge config (BridgeFaultSidecar)
    private final BridgeMesh mesh = BridgeMesh.plaintext();
    private final HttpClient http = HttpClient.newHttpClient();
    private BridgeFaultProxy proxy;
    private BridgeFaultSidecar sidecar;

    @BeforeAll
    void up() throws IOException {
        mesh.launcher("down");
        assertEquals(0, mesh.launcher("up", "--bridge"), "./meshcrypt up --bridge failed:\n" + mesh.launcherLogTail());
        proxy = new BridgeFaultProxy(mesh.ports.filterGrpc());
        sidecar = BridgeFaultSidecar.start(EnvoyProcess.binary(), moduleDir(mesh), proxy.port(), mesh.brokerDirect(),
                mesh.root.resolve("tests/target/bridge-fault-sidecar"));
    }

    @AfterAll
    void down() throws IOException {
        if (sidecar != null) {
            sidecar.close();
        }
        if (proxy != null) {
            proxy.close();
        }
        mesh.launcher("down");
    }

    /** The folder of the module the mesh's Envoys load (the launcher keeps it in its state dir). */
    static Path moduleDir(BridgeMesh mesh) throws IOException {
        return Path.of(Files.readString(mesh.home.resolve("bridge")).strip());
    }

    @Test
    @Order(1)
    void givenProducerRunning_whenFilterServiceIsKilled_thenConnectionsCloseTheProducerSeesErrorsAndNothingIsPlaintextAtRest()
            throws Exception {
        String topic = mesh.createTopic("bridge-fault-kill");
        Set<String> acked;
        try (RawPeer bystander = new RawPeer(mesh.ports.envoyBootstrap());
             Producing producing = new Producing(mesh.envoyBootstrap(), topic, "kill secret ")) {
            assertNotNull(apiVersions(bystander, 1), "a connection served before the kill");
            producing.awaitAcked(50);

            // When the filter-service dies (no shutdown, no drain)
            signal("KILL", mesh.pid("filter-service"));

            // Then every connection closes, and the producer is told
            assertNotNull(bystander.awaitClosed(TIMEOUT), "an idle connection closed when its stream broke");
            Await.until(TIMEOUT, () -> producing.errors.get() > 0, () -> "the producer saw an error; acked "
                    + producing.acked.size());
            producing.stop();
            acked = producing.acked;
        } finally {
            assertEquals(0, mesh.launcher("start", "filter-service"), mesh.launcherLogTail());
        }
        assertAckedAndEnvelopedAtRest(topic, "kill secret ", mesh.envoyBootstrap(), acked);
    }

    @Test
    @Order(2)
    void givenFilterServiceAnswersHeldBehindAProxy_whenAChunkWaitsPastTheTimeout_thenTheConnectionClosesAndTheLateAnswerReachesNoBroker()
            throws Exception {
        String topic = mesh.createTopic("bridge-fault-stall");
        roundTripThroughSidecar("before the stall");
        // a producer with its connection and metadata in place, so that its next Produce goes to the filter-service
        try (KafkaProducer<byte[], byte[]> producer = producer(sidecar.bootstrap(), Duration.ofSeconds(20))) {
            producer.send(new ProducerRecord<>(topic, utf8("warm secret"))).get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            proxy.stallAnswers(true);
            try {
                try (RawPeer probe = new RawPeer(sidecar.port)) {
                    assertTrue(probe.send(apiVersionsFrame(1)));
                    assertNotNull(probe.awaitClosed(TIMEOUT), "closed by the message timeout");
                }
                assertTrue(sidecar.log().contains("message timeout (5000 ms)"), "the bridge's message timeout closed it");
                ExecutionException e = assertThrows(ExecutionException.class,
                        () -> producer.send(new ProducerRecord<>(topic, utf8("stalled secret"))).get(TIMEOUT.toSeconds(),
                                TimeUnit.SECONDS));
                assertTrue(e.getCause() instanceof TimeoutException, e.toString());
            } finally {
                // the held answers, the encrypted Produce among them, reach the bridge after it closed their connections
                proxy.stallAnswers(false);
            }
        }
        roundTripThroughSidecar("after the stall");
        assertEquals(List.of("warm secret"), readThrough(sidecar.bootstrap(), topic), "the late answer reached no broker");
    }

    @Test
    @Order(3)
    void givenProducerRunning_whenTheGrpcConnectionIsReset_thenConnectionsCloseAndTheBridgeRedialsWithNothingPlaintextAtRest()
            throws Exception {
        String topic = mesh.createTopic("bridge-fault-reset");
        Set<String> acked;
        try (RawPeer bystander = new RawPeer(sidecar.port);
             Producing producing = new Producing(sidecar.bootstrap(), topic, "reset secret ")) {
            assertNotNull(apiVersions(bystander, 1), "a connection served before the reset");
            producing.awaitAcked(50);
            int dialled = proxy.accepted();

            // When the bridge's HTTP/2 connection to the filter-service is reset under it
            proxy.resetAll();

            // Then the connections whose streams it carried close, and the bridge dials again for the next ones
            assertNotNull(bystander.awaitClosed(TIMEOUT), "a connection whose stream was reset closed");
            int ackedAtReset = producing.acked.size();
            producing.awaitAcked(ackedAtReset + 50);
            assertTrue(proxy.accepted() > dialled, "the bridge dialled the filter-service again");
            producing.stop();
            acked = producing.acked;
        }
        assertAckedAndEnvelopedAtRest(topic, "reset secret ", sidecar.bootstrap(), acked);
    }

    @Test
    @Order(4)
    void givenChunksWithTheFilterService_whenTheirClientsVanish_thenEnvoyDropsThemAndGoesOnServing() throws Exception {
        proxy.stallAnswers(true);
        try {
            // clients that send a request and go at once, with a FIN or a reset, while the filter-service's answer is held
            for (int i = 0; i < 50; i++) {
                try (Socket s = new Socket(InetAddress.getLoopbackAddress(), sidecar.port)) {
                    s.getOutputStream().write(apiVersionsFrame(i));
                    if (i % 2 == 0) {
                        s.setSoLinger(true, 0);
                    }
                }
            }
        } finally {
            Thread.sleep(500); // the answers, let go now, come for connections already closed: dropped
            proxy.stallAnswers(false);
        }
        Await.until(TIMEOUT, () -> activeConnections(sidecar.admin("/stats"), sidecar.port) == 0,
                () -> "no connection left open: " + activeConnections(sidecar.admin("/stats"), sidecar.port));
        assertTrue(sidecar.alive(), "Envoy still running");
        roundTripThroughSidecar("after clients vanished");
    }

    @Test
    @Order(5)
    void givenConnectionsFailingAroundIt_whenOneConnectionProducesSequencedRecords_thenItLosesAndReordersNothing()
            throws Exception {
        String topic = mesh.createTopic("bridge-fault-survivor");
        int records = 10_000;
        AtomicBoolean stop = new AtomicBoolean();
        AtomicInteger churned = new AtomicInteger();
        AtomicReference<Throwable> churnFailure = new AtomicReference<>();
        Runnable neighbours = () -> {
            // neighbours on the same Envoy and module: half finish a round trip and reset, half vanish mid-frame
            try {
                while (!stop.get()) {
                    int i = churned.incrementAndGet();
                    try (RawPeer peer = new RawPeer(mesh.ports.envoyBootstrap())) {
                        byte[] frame = apiVersionsFrame(i);
                        if (i % 2 == 0) {
                            apiVersions(peer, i);
                        } else {
                            peer.send(Arrays.copyOf(frame, frame.length / 2));
                        }
                    }
                }
            } catch (Throwable t) {
                churnFailure.set(t);
            }
        };
        List<Thread> churn = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            churn.add(Thread.ofVirtual().start(neighbours));
        }
        List<String> sent = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = producer(mesh.envoyBootstrap(), TIMEOUT)) {
            for (int i = 0; i < records; i++) {
                sent.add("sequence " + i + " " + "s".repeat(i % 300));
                producer.send(new ProducerRecord<>(topic, utf8(sent.get(i))));
            }
            producer.flush();
        } finally {
            stop.set(true);
            for (Thread t : churn) {
                t.join(TIMEOUT.toMillis());
            }
        }
        assertNull(churnFailure.get(), () -> "the neighbours' client failed: " + churnFailure.get());
        assertTrue(churned.get() > 10, "neighbours churned meanwhile: " + churned.get());
        System.out.printf("bridge survivor: %d records in order while %d neighbour connections came and went%n", records,
                churned.get());
        assertEquals(sent, mesh.read(topic, true).stream().map(r -> text(r.value())).toList(),
                "every record back through Envoy, in order, once");
        List<ConsumerRecord<byte[], byte[]>> atRest = mesh.read(topic, false);
        assertEquals(records, atRest.size());
        for (int i = 0; i < records; i += 397) {
            Envelope.assertEnvelopeOf(utf8(sent.get(i)), atRest.get(i).value(), "record " + i);
        }
    }

    @Test
    @Order(6)
    void givenTenThousandConnections_whenEachDoesARoundTripOrVanishes_thenEnvoyMemoryConnectionsAndStreamsComeBack()
            throws Exception {
        int port = mesh.ports.envoyBootstrap();
        churn(port, 500); // warm: pools and lazily built state, not a leak
        Await.until(TIMEOUT, () -> quiet(port), () -> "quiet before: " + state(port));
        long before = allocated(mesh.envoyAdmin("/memory"));
        long streamsBefore = activeStreams();

        churn(port, CHURN_CONNECTIONS);

        Await.until(TIMEOUT, () -> quiet(port) && activeStreams() <= streamsBefore,
                () -> "connections and streams back to before (streams before " + streamsBefore + "): " + state(port));
        long after = allocated(mesh.envoyAdmin("/memory"));
        System.out.printf("bridge churn: %d connections, Envoy allocated %.2f MB before, %.2f MB after%n",
                CHURN_CONNECTIONS, before / 1e6, after / 1e6);
        assertTrue(after - before < MEMORY_GROWTH_BOUND, "Envoy's allocated memory grew from " + before + " to " + after
                + " bytes over " + CHURN_CONNECTIONS + " connections");
        assertTrue(mesh.log("envoy").lines().noneMatch(l -> l.contains("panic")), "the module never panicked");
    }

    // ---- the pieces

    /**
     * {@code connections} connections through Envoy, 8 at a time: each an ApiVersions round trip (checked), then a third
     * closes with a FIN, a third with a reset, and a third leaves half of a second request with the filter-service.
     */
    private static void churn(int port, int connections) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(8);
        try {
            List<Future<?>> done = new ArrayList<>();
            for (int i = 0; i < connections; i++) {
                int id = i;
                done.add(pool.submit(() -> {
                    try (Socket s = new Socket(InetAddress.getLoopbackAddress(), port)) {
                        s.setSoTimeout((int) TIMEOUT.toMillis());
                        s.getOutputStream().write(apiVersionsFrame(id));
                        DataInputStream in = new DataInputStream(s.getInputStream());
                        byte[] answer = new byte[in.readInt()];
                        in.readFully(answer);
                        assertEquals(id, new ResponseHeaderData(new ByteBufferAccessor(ByteBuffer.wrap(answer)), (short) 0)
                                .correlationId(), "connection " + id + " answered");
                        if (id % 3 == 1) {
                            byte[] frame = apiVersionsFrame(id + 1);
                            s.getOutputStream().write(frame, 0, frame.length - 3);
                        } else if (id % 3 == 2) {
                            s.setSoLinger(true, 0);
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) {
                f.get(10, TimeUnit.MINUTES);
            }
        } finally {
            pool.shutdownNow();
        }
    }

    private boolean quiet(int port) {
        try {
            return activeConnections(mesh.envoyAdmin("/stats"), port) == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    private String state(int port) {
        try {
            return "Envoy connections " + activeConnections(mesh.envoyAdmin("/stats"), port) + ", streams "
                    + activeStreams();
        } catch (Exception e) {
            return e.toString();
        }
    }

    /** Connections open now on the listener at 127.0.0.1:{@code port}, from Envoy's /stats. */
    static long activeConnections(String stats, int port) {
        Matcher m = Pattern.compile("(?m)^listener\\.127\\.0\\.0\\.1_" + port + "\\.downstream_cx_active: (\\d+)$")
                .matcher(stats);
        if (!m.find()) {
            throw new AssertionError("no downstream_cx_active of listener 127.0.0.1:" + port + " in /stats");
        }
        return Long.parseLong(m.group(1));
    }

    /** The filter-service's open ext_proc streams (its meshcrypt_ext_proc_streams_active gauge, summed). */
    private long activeStreams() {
        try {
            String metrics = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + mesh.ports.filterMetrics()
                    + "/metrics")).timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString()).body();
            Matcher m = Pattern.compile("(?m)^meshcrypt_ext_proc_streams_active(?:\\{[^}]*})? ([0-9.eE+-]+)$").matcher(metrics);
            double sum = 0;
            boolean found = false;
            while (m.find()) {
                sum += Double.parseDouble(m.group(1));
                found = true;
            }
            if (!found) {
                throw new AssertionError("no meshcrypt_ext_proc_streams_active in the filter-service's /metrics");
            }
            return (long) sum;
        } catch (IOException e) {
            throw new AssertionError("the filter-service's /metrics", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    /** {@code allocated} of Envoy's /memory (JSON). */
    private static long allocated(String memory) {
        Matcher m = Pattern.compile("\"allocated\"\\s*:\\s*\"?(\\d+)").matcher(memory);
        assertTrue(m.find(), memory);
        return Long.parseLong(m.group(1));
    }

    /** A few records produced and read back through the sidecar, enveloped at rest: it serves. */
    private void roundTripThroughSidecar(String when) throws Exception {
        String topic = mesh.createTopic("bridge-fault-sidecar");
        List<String> values = List.of("sidecar secret 1 " + when, "sidecar secret 2 " + "q".repeat(70_000));
        try (KafkaProducer<byte[], byte[]> producer = producer(sidecar.bootstrap(), TIMEOUT)) {
            for (String v : values) {
                producer.send(new ProducerRecord<>(topic, utf8(v))).get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            }
        }
        assertEquals(values, readThrough(sidecar.bootstrap(), topic), "read back through the sidecar " + when);
        List<ConsumerRecord<byte[], byte[]>> atRest = mesh.read(topic, false);
        for (int i = 0; i < values.size(); i++) {
            Envelope.assertEnvelopeOf(utf8(values.get(i)), atRest.get(i).value(), when + ", record " + i);
        }
    }

    /**
     * Every acknowledged record is at rest as an envelope and reads back through {@code bootstrap}; nothing is at rest
     * that was not sent (a record whose send failed may still have been written: the client was told it may have).
     */
    private void assertAckedAndEnvelopedAtRest(String topic, String prefix, String bootstrap, Set<String> acked)
            throws Exception {
        for (ConsumerRecord<byte[], byte[]> r : mesh.read(topic, false)) {
            Envelope.assertEnvelope(r.value(), "offset " + r.offset());
            assertTrue(Envelope.indexOf(r.value(), utf8(prefix)) < 0, "no plaintext at offset " + r.offset());
        }
        List<String> read = readThrough(bootstrap, topic);
        assertTrue(read.stream().allMatch(v -> v.startsWith(prefix)), "only what was sent: " + read.size());
        Set<String> readSet = Set.copyOf(read);
        List<String> lost = acked.stream().filter(v -> !readSet.contains(v)).toList();
        assertEquals(List.of(), lost, "acknowledged records missing");
    }

    /** The values of {@code topic} read through the Envoy at {@code bootstrap}, in offset order. */
    static List<String> readThrough(String bootstrap, String topic) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            return LocalMesh.drain(consumer, topic).stream().map(r -> text(r.value())).toList();
        }
    }

    static KafkaProducer<byte[], byte[]> producer(String bootstrap, Duration deliveryTimeout) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, (int) Math.min(deliveryTimeout.toMillis() / 2, 10_000));
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, (int) deliveryTimeout.toMillis());
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, (int) deliveryTimeout.toMillis());
        p.put(ProducerConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, 500);
        return new KafkaProducer<>(p);
    }

    static byte[] apiVersionsFrame(int correlationId) {
        return FakeBroker.requestFrame(ApiKeys.API_VERSIONS, (short) 3, correlationId,
                new ApiVersionsRequestData().setClientSoftwareName("bridge-fault").setClientSoftwareVersion("1"));
    }

    /** An ApiVersions round trip on {@code peer}; the response frame, or null if the connection closed first. */
    static ByteBuffer apiVersions(RawPeer peer, int correlationId) throws IOException {
        if (!peer.send(apiVersionsFrame(correlationId))) {
            return null;
        }
        ByteBuffer answer = peer.readFrame(TIMEOUT);
        if (answer != null) {
            assertEquals(correlationId, new ResponseHeaderData(new ByteBufferAccessor(answer), (short) 0).correlationId());
        }
        return answer;
    }

    private static void signal(String signal, long pid) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("kill", "-" + signal, Long.toString(pid)).inheritIO().start();
        assertEquals(0, p.waitFor(), "kill -" + signal + " " + pid);
    }

    /** A producer sending numbered records in the background until stopped: what it was told, record by record. */
    private final class Producing implements AutoCloseable {
        final Set<String> acked = ConcurrentHashMap.newKeySet();
        final AtomicInteger errors = new AtomicInteger();
        private final AtomicBoolean stop = new AtomicBoolean();
        private final Thread thread;

        Producing(String bootstrap, String topic, String prefix) {
            thread = Thread.ofVirtual().start(() -> {
                try (KafkaProducer<byte[], byte[]> producer = producer(bootstrap, Duration.ofSeconds(15))) {
                    for (int i = 0; !stop.get(); i++) {
                        String value = prefix + i;
                        producer.send(new ProducerRecord<>(topic, utf8(value)), (md, e) -> {
                            if (e == null) {
                                acked.add(value);
                            } else {
                                errors.incrementAndGet();
                            }
                        });
                        Thread.sleep(2);
                    }
                    producer.close(Duration.ofSeconds(20));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } catch (RuntimeException e) {
                    errors.incrementAndGet(); // send() itself refused (e.g. metadata timeout): an error the client sees
                }
            });
        }

        void awaitAcked(int n) {
            Await.until(TIMEOUT, () -> acked.size() >= n, () -> acked.size() + " of " + n + " records acknowledged");
        }

        void stop() throws InterruptedException {
            stop.set(true);
            thread.join(TIMEOUT.toMillis());
        }

        @Override
        public void close() {
            try {
                stop();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
