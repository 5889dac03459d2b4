package io.meshcrypt.e2e.replicas;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.e2e.support.Await;
import io.meshcrypt.e2e.support.Envelope;
import io.meshcrypt.e2e.support.FakeBroker;
import io.meshcrypt.e2e.support.RawPeer;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.message.ApiVersionsRequestData;
import org.apache.kafka.common.message.ApiVersionsResponseData;
import org.apache.kafka.common.message.FetchRequestData;
import org.apache.kafka.common.message.ResponseHeaderData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Several filter-service replicas behind one Envoy (the mesh file's {@code filterService} list; see
 * {@link ReplicaMesh}): streams spread over both, a replica killed under traffic resets only its own connections and
 * loses nothing, and a replica that never saw a Metadata response serves Produce and Fetch.
 */
class FilterServiceReplicasTest {
    private static final Duration TIMEOUT = ReplicaMesh.TIMEOUT;
    private static final Duration ANSWER = Duration.ofSeconds(20);
    private static final String STARTED = "meshcrypt_ext_proc_streams_started_total";

    private static ReplicaMesh mesh;
    private final List<RawPeer> peers = new ArrayList<>();
    /** The replica serving each of {@link #peers}, as {@link #openPeers} found out. */
    private final List<Integer> peerReplicas = new ArrayList<>();

    @BeforeAll
    static void up() throws Exception {
        mesh = ReplicaMesh.start();
    }

    @AfterAll
    static void down() throws Exception {
        if (mesh != null) {
            mesh.close();
        }
    }

    @AfterEach
    void closePeers() throws Exception {
        for (RawPeer peer : peers) {
            peer.close();
        }
    }

    /** Both replicas running and in Envoy's rotation again, whatever the last test killed. */
    private static void bothReplicasServing() throws Exception {
        for (int i = 0; i < ReplicaMesh.REPLICAS; i++) {
            if (!mesh.running(i)) {
                mesh.startReplicas(i);
            }
        }
        mesh.awaitHealthy(0);
        mesh.awaitHealthy(1);
    }

    /** Both replicas replaced by new processes, which have seen no Metadata response at all. */
    private static void freshReplicas() throws Exception {
        mesh.kill(0);
        mesh.kill(1);
        mesh.startReplicas(0, 1);
    }

    @Test
    void givenTwoReplicas_whenConnectionsOpenOneAfterAnother_thenTheirStreamsGoToBothReplicas() throws Exception {
        bothReplicasServing();

        Map<Integer, Integer> perReplica = openPeers(8);

        assertTrue(perReplica.getOrDefault(0, 0) > 0 && perReplica.getOrDefault(1, 0) > 0,
                "8 connections held open, streams per replica: " + perReplica);
    }

    @Test
    void givenTrafficThroughBothReplicas_whenOneIsKilled_thenOnlyItsConnectionsResetAndEveryAckedRecordIsConsumedOnce()
            throws Exception {
        bothReplicasServing();
        String topic = mesh.createTopic("replica-kill");
        // Given bystander connections whose replica is known, and an idempotent producer and a consumer streaming
        Map<Integer, Integer> perReplica = openPeers(6);
        for (int more = 0; more < 14 && perReplica.size() < ReplicaMesh.REPLICAS; more++) {
            // two random choices can put six in a row on one replica (about once in a thousand runs)
            openPeers(1).forEach((replica, n) -> perReplica.merge(replica, n, Integer::sum));
        }
        List<Integer> replicaOfPeer = List.copyOf(peerReplicas);
        Set<String> acked = ConcurrentHashMap.newKeySet();
        List<String> consumed = new CopyOnWriteArrayList<>();
        AtomicBoolean stop = new AtomicBoolean();
        AtomicBoolean stopConsuming = new AtomicBoolean();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread producing = Thread.ofPlatform().name("replicas-producer").start(() -> produce(topic, acked, stop, failure));
        Thread consuming = Thread.ofPlatform().name("replicas-consumer").start(() -> consume(topic, consumed, stopConsuming, failure));
        try {
            awaitCount(() -> acked.size(), 200, "records acknowledged before the kill");
            awaitCount(consumed::size, 100, "records consumed before the kill");

            // When replica 1 dies without a goodbye
            mesh.kill(1);
            int ackedAtKill = acked.size();

            // Then the bystanders it served are closed, those of replica 0 still answer on the same connection
            for (int p = 0; p < peers.size(); p++) {
                if (replicaOfPeer.get(p) == 1) {
                    assertNotNull(peers.get(p).awaitClosed(TIMEOUT), "connection " + p + " (replica 1) closed");
                } else {
                    assertNotNull(apiVersions(peers.get(p), 100 + p), "connection " + p + " (replica 0) still served");
                }
            }
            assertTrue(perReplica.getOrDefault(0, 0) > 0 && perReplica.getOrDefault(1, 0) > 0, "bystanders on both: " + perReplica);
            // ... Envoy takes the dead replica out of its rotation
            long killed = System.nanoTime();
            Await.until(TIMEOUT, () -> !health(1).equals("healthy"), () -> "Envoy marks replica 1 unhealthy: " + health(1));
            System.out.printf("replica 1 killed: Envoy health flags %s after %d ms; bystanders per replica %s%n", health(1),
                    (System.nanoTime() - killed) / 1_000_000, perReplica);
            // ... and the clients go on through replica 0
            awaitCount(() -> acked.size(), ackedAtKill + 200, "records acknowledged after the kill");
        } finally {
            stop.set(true);
            producing.join(TIMEOUT.toMillis());
            assertFalse(producing.isAlive(), "producer stopped");
        }
        assertNull(failure.get(), () -> "the producer failed: " + failure.get());
        List<byte[]> atRest = readDirect(topic, acked.size());
        Await.until(TIMEOUT, () -> failure.get() != null || consumed.size() >= atRest.size(),
                () -> consumed.size() + " of the " + atRest.size() + " records at rest consumed");
        stopConsuming.set(true);
        consuming.join(TIMEOUT.toMillis());
        assertNull(failure.get(), () -> "a client failed: " + failure.get());
        Set<String> distinct = new HashSet<>(consumed);
        assertEquals(consumed.size(), distinct.size(), "no record consumed twice (idempotent producer)");
        assertEquals(atRest.size(), consumed.size(), "every record at rest consumed, none twice");
        assertTrue(distinct.containsAll(acked), "every acknowledged record consumed");
        for (byte[] value : atRest) {
            Envelope.assertEnvelope(value, topic + " at rest");
            Envelope.assertNoPlaintext("replicated record".getBytes(StandardCharsets.UTF_8), value, topic + " at rest");
        }
    }

    @Test
    void givenClientsWhoseMetadataWentThroughOtherReplicas_whenOnlyFreshReplicasServe_thenProduceAndFetchWorkAndV13ByIdIsRefused()
            throws Exception {
        bothReplicasServing();
        String topic = mesh.createTopic("replica-fresh");
        Uuid id = mesh.admin().describeTopics(List.of(topic)).allTopicNames().get(30, TimeUnit.SECONDS).get(topic).topicId();
        try (KafkaProducer<byte[], byte[]> producer = producer(); KafkaConsumer<byte[], byte[]> consumer = consumer()) {
            // Given a producer and a consumer that learnt the topic (and its id) through the replicas running now
            consumer.assign(List.of(new TopicPartition(topic, 0)));
            consumer.seekToBeginning(consumer.assignment());
            sendAll(producer, topic, 0, 20);
            List<String> read = new ArrayList<>(poll(consumer, 20));

            // When both replicas are replaced by new processes, which have seen no Metadata response at all
            freshReplicas();
            // (a connection through them before any client's reconnection: its replica has seen no Metadata)
            RawPeer peer = peer();
            ApiVersionsResponseData versions = apiVersions(peer, 1);

            // Then the same clients produce and fetch through them, values encrypted at rest and decrypted back
            sendAll(producer, topic, 20, 40);
            read.addAll(poll(consumer, 20));
            List<String> expected = new ArrayList<>();
            for (int i = 0; i < 40; i++) {
                expected.add(value(i));
            }
            assertEquals(expected, read);
            // ... because Produce and Fetch are offered up to v12 only, the last versions that name topics: no
            // replica needs to have seen the Metadata that maps an id to its name
            assertNotNull(versions, "ApiVersions answered");
            assertEquals(12, versions.apiKeys().find(ApiKeys.PRODUCE.id).maxVersion(), "Produce");
            assertEquals(12, versions.apiKeys().find(ApiKeys.FETCH.id).maxVersion(), "Fetch");
            // ... and a Fetch v13 by topic id (not offered) closes the connection rather than answer it
            assertTrue(peer.send(FakeBroker.requestFrame(ApiKeys.FETCH, (short) 13, 2, new FetchRequestData()
                    .setReplicaId(-1).setMaxWaitMs(0).setMinBytes(1).setMaxBytes(1 << 20)
                    .setTopics(List.of(new FetchRequestData.FetchTopic().setTopicId(id).setPartitions(List.of(
                            new FetchRequestData.FetchPartition().setPartition(0).setFetchOffset(0).setPartitionMaxBytes(1 << 20))))))));
            assertNotNull(peer.awaitClosed(ANSWER), "Fetch v13 by topic id closes the connection");
        }
        readDirect(topic, 40).forEach(v -> Envelope.assertEnvelope(v, topic + " at rest"));
    }

    // ---- helpers

    /**
     * Opens {@code n} raw Kafka connections through Envoy one after another, each answering an ApiVersions request
     * (so its stream is open), and tells from the replicas' stream counters which replica serves each one.
     *
     * @return connections per replica
     */
    private Map<Integer, Integer> openPeers(int n) throws Exception {
        Map<Integer, Integer> perReplica = new HashMap<>();
        for (int p = 0; p < n; p++) {
            double[] before = started();
            RawPeer peer = peer();
            assertNotNull(apiVersions(peer, p), "connection " + p + " answered");
            int replica = -1;
            double[] after = started();
            for (int i = 0; i < ReplicaMesh.REPLICAS; i++) {
                if (after[i] - before[i] == 1) {
                    assertEquals(-1, replica, "one new stream per connection: " + List.of(before, after));
                    replica = i;
                }
            }
            assertTrue(replica >= 0, "connection " + p + "'s stream found on one replica");
            peerReplicas.add(replica);
            perReplica.merge(replica, 1, Integer::sum);
        }
        return perReplica;
    }

    private double[] started() throws Exception {
        double[] out = new double[ReplicaMesh.REPLICAS];
        for (int i = 0; i < out.length; i++) {
            out[i] = mesh.metric(i, STARTED);
        }
        return out;
    }

    private RawPeer peer() throws Exception {
        RawPeer peer = new RawPeer(mesh.bootstrapPort());
        peers.add(peer);
        return peer;
    }

    /** ApiVersions v3 on {@code peer}; null if the connection closed or gave no answer. */
    private static ApiVersionsResponseData apiVersions(RawPeer peer, int correlationId) throws Exception {
        if (!peer.send(FakeBroker.requestFrame(ApiKeys.API_VERSIONS, (short) 3, correlationId,
                new ApiVersionsRequestData().setClientSoftwareName("replicas-test").setClientSoftwareVersion("1")))) {
            return null;
        }
        ByteBuffer answer = peer.readFrame(ANSWER);
        if (answer == null) {
            return null;
        }
        ResponseHeaderData header = new ResponseHeaderData(new ByteBufferAccessor(answer), (short) 0);
        assertEquals(correlationId, header.correlationId());
        return new ApiVersionsResponseData(new ByteBufferAccessor(answer), (short) 3);
    }

    private static String health(int replica) {
        try {
            return mesh.envoyHealth(replica);
        } catch (Exception e) {
            return "(unknown: " + e + ")";
        }
    }

    private static String value(int i) {
        return "replicated record " + i;
    }

    private static KafkaProducer<byte[], byte[]> producer() {
        Properties p = ReplicaMesh.client(mesh.bootstrap());
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 120_000);
        return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }

    private static KafkaConsumer<byte[], byte[]> consumer() {
        return consumer(mesh.bootstrap());
    }

    private static KafkaConsumer<byte[], byte[]> consumer(String bootstrap) {
        Properties p = ReplicaMesh.client(bootstrap);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30_000);
        return new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    private static void sendAll(KafkaProducer<byte[], byte[]> producer, String topic, int from, int to) throws Exception {
        for (int i = from; i < to; i++) {
            producer.send(new ProducerRecord<>(topic, value(i).getBytes(StandardCharsets.UTF_8))).get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        }
    }

    private static List<String> poll(KafkaConsumer<byte[], byte[]> consumer, int n) {
        List<String> out = new ArrayList<>();
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (out.size() < n && System.nanoTime() < deadline) {
            for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                out.add(new String(r.value(), StandardCharsets.UTF_8));
            }
        }
        assertEquals(n, out.size(), "records fetched within " + TIMEOUT + ": " + out);
        return out;
    }

    /** Sends numbered records until {@code stop}, a few in flight; {@code acked} gets each one the broker acknowledged. */
    private static void produce(String topic, Set<String> acked, AtomicBoolean stop, AtomicReference<Throwable> failure) {
        try (KafkaProducer<byte[], byte[]> producer = producer()) {
            for (int i = 0; !stop.get(); i++) {
                String v = value(i);
                producer.send(new ProducerRecord<>(topic, v.getBytes(StandardCharsets.UTF_8)), (md, e) -> {
                    if (e == null) {
                        acked.add(v);
                    }
                });
                if (i % 20 == 19) {
                    Thread.sleep(20);
                }
            }
            producer.flush();
        } catch (Throwable e) {
            failure.compareAndSet(null, e);
        }
    }

    private static void consume(String topic, List<String> consumed, AtomicBoolean stop, AtomicReference<Throwable> failure) {
        try (KafkaConsumer<byte[], byte[]> consumer = consumer()) {
            consumer.assign(List.of(new TopicPartition(topic, 0)));
            consumer.seekToBeginning(consumer.assignment());
            while (!stop.get()) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    consumed.add(new String(r.value(), StandardCharsets.UTF_8));
                }
            }
        } catch (Throwable e) {
            failure.compareAndSet(null, e);
        }
    }

    /** The topic's values as the broker stores them (partition 0, from the start). */
    private static List<byte[]> readDirect(String topic, int atLeast) {
        List<byte[]> out = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> consumer = consumer(mesh.brokerDirect())) {
            TopicPartition tp = new TopicPartition(topic, 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            long end = consumer.endOffsets(List.of(tp)).get(tp);
            long deadline = System.nanoTime() + TIMEOUT.toNanos();
            while (consumer.position(tp) < end && System.nanoTime() < deadline) {
                consumer.poll(Duration.ofMillis(500)).forEach(r -> out.add(r.value()));
            }
        }
        assertTrue(out.size() >= atLeast, "at least " + atLeast + " records at rest, got " + out.size());
        return out;
    }

    private static void awaitCount(java.util.function.IntSupplier count, int atLeast, String what) {
        Await.until(TIMEOUT, () -> count.getAsInt() >= atLeast, () -> what + ": " + count.getAsInt() + " of " + atLeast);
    }
}
