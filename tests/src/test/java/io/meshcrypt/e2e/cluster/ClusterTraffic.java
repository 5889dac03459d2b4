package io.meshcrypt.e2e.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.e2e.support.Envelope;
import io.meshcrypt.e2e.support.LocalMesh;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Traffic through the cluster's sidecar while brokers fail: an idempotent producer (acks=all) numbering its records
 * (key {@code seq-00000042}, the number in the value too) and a consumer group member committing after every poll, each
 * on its own thread with the Java client. {@link #assertExactlyOnce} then checks what was acknowledged against what the
 * group consumed and what the brokers store.
 */
final class ClusterTraffic implements AutoCloseable {

    /** Records sent but not yet acknowledged: bounds the producer's buffer while a partition has no leader. */
    private static final int MAX_OUTSTANDING = 1000;
    /** A pause between sends: about a hundred records a second, a few thousand per test. */
    private static final long SEND_PAUSE_MILLIS = 10;

    private final ClusterMesh mesh;
    private final String topic;
    private final Set<Integer> acked = ConcurrentHashMap.newKeySet();
    /** Acknowledged records per partition: a partition's count grows only while the producer reaches its leader. */
    private final Map<Integer, AtomicInteger> ackedByPartition = new ConcurrentHashMap<>();
    private final AtomicInteger sent = new AtomicInteger();
    private final AtomicInteger failed = new AtomicInteger();
    private final AtomicReference<Exception> firstFailure = new AtomicReference<>();
    /** seq -> the positions (partition:offset) the group consumed it at: two positions are a duplicate stored. */
    private final Map<Integer, Set<String>> consumed = new ConcurrentHashMap<>();
    private final AtomicInteger redeliveries = new AtomicInteger();
    private final List<String> wrongValues = java.util.Collections.synchronizedList(new ArrayList<>());
    private final AtomicInteger consumerErrors = new AtomicInteger();
    private volatile boolean producing = true;
    private volatile boolean consuming = true;
    private final KafkaProducer<byte[], byte[]> producer;
    private final Thread producerThread;
    private final Thread consumerThread;
    private final long startNanos = System.nanoTime();

    ClusterTraffic(ClusterMesh mesh, String topic) {
        this.mesh = mesh;
        this.topic = topic;
        producer = new KafkaProducer<>(producerProps());
        KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(consumerProps(mesh.kafkaBootstrap(), "cluster-group-" + topic));
        producerThread = Thread.ofPlatform().name("traffic-producer-" + topic).start(this::produce);
        consumerThread = Thread.ofPlatform().name("traffic-consumer-" + topic).start(() -> consume(consumer));
    }

    static String key(int seq) {
        return String.format("seq-%08d", seq);
    }

    static byte[] value(int seq) {
        return ("cluster record " + seq + ": card 4111-1111-1111-" + String.format("%04d", seq % 10_000)).getBytes(StandardCharsets.UTF_8);
    }

    private Properties producerProps() {
        Properties props = new Properties();
        props.putAll(Map.ofEntries(
                Map.entry(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, mesh.kafkaBootstrap()),
                Map.entry(ProducerConfig.CLIENT_ID_CONFIG, "cluster-producer-" + topic),
                Map.entry(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class),
                Map.entry(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class),
                Map.entry(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true),
                Map.entry(ProducerConfig.ACKS_CONFIG, "all"),
                Map.entry(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 5),
                Map.entry(ProducerConfig.LINGER_MS_CONFIG, 5),
                // long enough to outlive a leader election (the dead node is fenced 3 s after its last heartbeat)
                Map.entry(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 120_000),
                Map.entry(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000),
                Map.entry(ProducerConfig.MAX_BLOCK_MS_CONFIG, 60_000)));
        props.putAll(BACKOFF);
        return props;
    }

    /** Retries and reconnects quickly, but not in a tight loop while a broker is down. */
    private static final Map<String, Object> BACKOFF = Map.of(CommonClientConfigs.RETRY_BACKOFF_MS_CONFIG, 100,
            CommonClientConfigs.RECONNECT_BACKOFF_MS_CONFIG, 50, CommonClientConfigs.RECONNECT_BACKOFF_MAX_MS_CONFIG, 1000);

    /** A consumer of {@code bootstrap}, in {@code group} (null: none, to assign partitions), bytes in and out. */
    static Properties consumerProps(String bootstrap, String group) {
        Properties props = new Properties();
        props.putAll(Map.of(
                ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class,
                ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class,
                ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest",
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false,
                ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 100,
                ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000,
                ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) ClusterMesh.CLIENT_TIMEOUT.toMillis()));
        props.putAll(BACKOFF);
        if (group != null) {
            props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            props.put(ConsumerConfig.CLIENT_ID_CONFIG, group + "-member");
        }
        return props;
    }

    private void produce() {
        Semaphore outstanding = new Semaphore(MAX_OUTSTANDING);
        try {
            for (int seq = 0; producing; seq++) {
                outstanding.acquire();
                int n = seq;
                try {
                    producer.send(new ProducerRecord<>(topic, key(n).getBytes(StandardCharsets.UTF_8), value(n)), (metadata, e) -> {
                        outstanding.release();
                        if (e == null) {
                            acked.add(n);
                            ackedByPartition.computeIfAbsent(metadata.partition(), p -> new AtomicInteger()).incrementAndGet();
                        } else {
                            failed(e);
                        }
                    });
                    sent.incrementAndGet();
                } catch (RuntimeException e) {
                    outstanding.release();
                    failed(e);
                }
                Thread.sleep(SEND_PAUSE_MILLIS);
            }
            producer.flush();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void failed(Exception e) {
        failed.incrementAndGet();
        firstFailure.compareAndSet(null, e);
    }

    private void consume(KafkaConsumer<byte[], byte[]> consumer) {
        try (consumer) {
            consumer.subscribe(List.of(topic));
            while (consuming) {
                try {
                    for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                        int seq = Integer.parseInt(new String(r.key(), StandardCharsets.UTF_8).substring(4));
                        if (!java.util.Arrays.equals(value(seq), r.value())) {
                            wrongValues.add(r.partition() + ":" + r.offset());
                        }
                        if (!consumed.computeIfAbsent(seq, s -> ConcurrentHashMap.newKeySet()).add(r.partition() + ":" + r.offset())) {
                            redeliveries.incrementAndGet();
                        }
                    }
                    consumer.commitSync();
                } catch (org.apache.kafka.common.KafkaException e) {
                    // a commit or poll during a coordinator move: consumed again from the last commit (counted)
                    consumerErrors.incrementAndGet();
                }
            }
        }
    }

    /** The leader of {@code partition} as the producer's metadata has it now (host:port it sends to). */
    String producerLeader(int partition) {
        return producer.partitionsFor(topic).stream().filter(p -> p.partition() == partition).findFirst()
                .map(p -> p.leader() == null ? "none" : p.leader().host() + ":" + p.leader().port()).orElse("unknown");
    }

    int acked() {
        return acked.size();
    }

    /** Waits until {@code more} records beyond those acknowledged now are acknowledged: the producer got through. */
    void awaitMoreAcked(int more) {
        awaitMore(more, "", this::acked);
    }

    /** {@link #awaitMoreAcked} for the records of one partition: the producer reaches that partition's leader. */
    void awaitMoreAckedOn(int partition, int more) {
        awaitMore(more, " on partition " + partition, () -> ackedByPartition.computeIfAbsent(partition, p -> new AtomicInteger()).get());
    }

    private void awaitMore(int more, String where, java.util.function.IntSupplier count) {
        int target = count.getAsInt() + more;
        long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
        while (count.getAsInt() < target) {
            if (System.nanoTime() - deadline > 0 || !producerThread.isAlive()) {
                throw new AssertionError("the producer got " + count.getAsInt() + " of " + target + " records acknowledged" + where
                        + " within 2 min (" + failed.get() + " failed, first: " + firstFailure.get() + ")");
            }
            ClusterMesh.sleep(50);
        }
    }

    /**
     * Stops the producer (every send answered), waits for the group to consume every acknowledged record, stops it,
     * then asserts: nothing acknowledged lost, no record stored twice (the idempotent producer's retries), the group
     * read the plaintext, and the brokers hold an envelope of that plaintext for each record.
     *
     * @return a one-line summary of the figures
     */
    String assertExactlyOnce() throws InterruptedException {
        producing = false;
        producerThread.join(Duration.ofMinutes(3));
        assertTrue(!producerThread.isAlive(), "the producer did not finish its sends within 3 min");
        long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
        while (!consumed.keySet().containsAll(acked) && System.nanoTime() - deadline < 0) {
            ClusterMesh.sleep(100);
        }
        consuming = false;
        consumerThread.join(Duration.ofMinutes(1));
        Set<Integer> lost = new TreeSet<>(acked);
        lost.removeAll(consumed.keySet());
        assertEquals(Set.of(), lost, "acknowledged records the consumer group never got");
        Map<Integer, Set<String>> twice = new HashMap<>();
        consumed.forEach((seq, positions) -> {
            if (positions.size() > 1) {
                twice.put(seq, positions);
            }
        });
        assertEquals(Map.of(), twice, "records stored at two offsets (producer duplicates)");
        assertEquals(List.of(), wrongValues, "records the group did not get as plaintext");

        // the brokers themselves: each record once, as an envelope of its plaintext
        List<ConsumerRecord<byte[], byte[]>> atRest;
        try (KafkaConsumer<byte[], byte[]> direct = new KafkaConsumer<>(consumerProps(mesh.brokerDirect(), null))) {
            atRest = LocalMesh.drain(direct, topic);
        }
        Map<Integer, String> stored = new HashMap<>();
        for (ConsumerRecord<byte[], byte[]> r : atRest) {
            int seq = Integer.parseInt(new String(r.key(), StandardCharsets.UTF_8).substring(4));
            String at = r.partition() + ":" + r.offset();
            String before = stored.put(seq, at);
            assertEquals(null, before, "seq " + seq + " stored at " + before + " and " + at);
            Envelope.assertEnvelopeOf(value(seq), r.value(), topic + "@" + at);
        }
        assertTrue(stored.keySet().containsAll(acked), "acknowledged records missing at rest");
        assertTrue(stored.keySet().containsAll(consumed.keySet()), "the group consumed records that are not stored");
        return String.format("%d sent, %d acknowledged, %d failed sends, %d stored, %d consumed by the group (%d redelivered after"
                + " a failed commit, %d poll/commit errors) in %.1f s", sent.get(), acked.size(), failed.get(), stored.size(),
                consumed.size(), redeliveries.get(), consumerErrors.get(), (System.nanoTime() - startNanos) / 1e9);
    }

    @Override
    public void close() throws InterruptedException {
        producing = false;
        consuming = false;
        producerThread.join(Duration.ofMinutes(3));
        consumerThread.join(Duration.ofMinutes(1));
        producer.close(Duration.ofSeconds(10));
    }
}
