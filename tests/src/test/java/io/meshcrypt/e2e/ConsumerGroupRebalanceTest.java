package io.meshcrypt.e2e;

import static io.meshcrypt.e2e.support.Records.text;
import static io.meshcrypt.e2e.support.Records.utf8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.meshcrypt.e2e.support.Await;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.e2e.support.MeshExtension;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Group coordination (classic JoinGroup/SyncGroup and KIP-848 heartbeats) through Envoy, with a mid-way join. */
@ExtendWith(MeshExtension.class)
class ConsumerGroupRebalanceTest {

    private static final int PARTITIONS = 4;
    private static final int PER_BATCH = 100;
    private static final Duration GROUP_TIMEOUT = Duration.ofSeconds(60);

    private final LocalMesh mesh;

    ConsumerGroupRebalanceTest(LocalMesh mesh) {
        this.mesh = mesh;
    }

    @ParameterizedTest(name = "group.protocol={0}")
    @ValueSource(strings = {"classic", "consumer"})
    void givenConsumerGroupThroughEnvoy_whenSecondMemberJoinsMidway_thenEveryRecordIsConsumedExactlyOnce(String protocol) throws Exception {
        // Given a 4-partition topic holding a first batch and one member consuming it
        String topic = mesh.createTopic("group-" + protocol, PARTITIONS);
        String group = "e2e-group-" + UUID.randomUUID();
        Set<String> produced = new HashSet<>(produce(topic, 0));
        ConcurrentLinkedQueue<String> consumedByAll = new ConcurrentLinkedQueue<>();
        Map<String, Object> props = new HashMap<>(Map.of(ConsumerConfig.GROUP_ID_CONFIG, group,
                ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol));
        if (protocol.equals("classic")) {
            // members learn of a rebalance from heartbeats; the 3 s default would dominate the test's run time
            props.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 500);
        }
        try (Member first = new Member("first", topic, props, consumedByAll)) {
            Await.until(GROUP_TIMEOUT, () -> first.received() > 0 && first.assignment().size() == PARTITIONS,
                    () -> "first member owning all partitions and consuming; " + first);

            // When a second member joins mid-way and more records arrive after the rebalance
            try (Member second = new Member("second", topic, props, consumedByAll)) {
                Await.until(GROUP_TIMEOUT, () -> splitBetween(first.assignment(), second.assignment()),
                        () -> "partitions split between both members; " + first + ", " + second);
                produced.addAll(produce(topic, PER_BATCH));
                Await.until(GROUP_TIMEOUT, () -> consumedByAll.size() >= produced.size(),
                        () -> consumedByAll.size() + " of " + produced.size() + " consumed; " + first + ", " + second);
                // every offset committed: no member can be handed a record again, so the count below is final
                Await.until(GROUP_TIMEOUT, () -> committedToEnd(group, topic),
                        () -> "group " + group + " committed up to the end offsets");

                // Then every record was consumed once overall, and both members took part
                assertNull(first.failure(), () -> "first member failed: " + first.failure());
                assertNull(second.failure(), () -> "second member failed: " + second.failure());
                assertFalse(second.received() == 0, "second member consumed nothing after joining");
            }
        }
        List<String> consumed = new ArrayList<>(consumedByAll);
        assertEquals(produced.size(), consumed.size(), "records consumed overall (duplicates or losses)");
        assertEquals(produced, new HashSet<>(consumed), "consumed value set");
    }

    private List<String> produce(String topic, int from) throws Exception {
        List<String> values = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Map.of())) {
            for (int i = from; i < from + PER_BATCH; i++) {
                String value = "group secret " + i;
                values.add(value);
                producer.send(new ProducerRecord<>(topic, utf8("key-" + i), utf8(value)));
            }
            producer.flush();
        }
        return values;
    }

    private static boolean splitBetween(Set<TopicPartition> a, Set<TopicPartition> b) {
        Set<TopicPartition> union = new HashSet<>(a);
        union.addAll(b);
        return !a.isEmpty() && !b.isEmpty() && union.size() == PARTITIONS && a.size() + b.size() == PARTITIONS;
    }

    private boolean committedToEnd(String group, String topic) {
        try {
            Map<TopicPartition, OffsetAndMetadata> committed = mesh.admin().listConsumerGroupOffsets(group)
                    .partitionsToOffsetAndMetadata().get(10, TimeUnit.SECONDS);
            Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
            for (int p = 0; p < PARTITIONS; p++) {
                latest.put(new TopicPartition(topic, p), OffsetSpec.latest());
            }
            var ends = mesh.admin().listOffsets(latest).all().get(10, TimeUnit.SECONDS);
            return ends.entrySet().stream().allMatch(e -> committed.get(e.getKey()) != null
                    && committed.get(e.getKey()).offset() >= e.getValue().offset());
        } catch (Exception e) {
            throw new AssertionError("Cannot read offsets of group " + group, e);
        }
    }

    /**
     * One group member on its own thread (KafkaConsumer is single-threaded). It commits after every
     * poll and again when partitions are revoked, so a rebalance never hands out an uncommitted record.
     */
    private final class Member implements AutoCloseable {
        private final String name;
        private final Thread thread;
        private final ConcurrentLinkedQueue<String> sink;
        private volatile boolean running = true;
        private volatile Set<TopicPartition> assignment = Set.of();
        private volatile int received;
        private volatile Throwable failure;

        Member(String name, String topic, Map<String, Object> props, ConcurrentLinkedQueue<String> sink) {
            this.name = name;
            this.sink = sink;
            this.thread = new Thread(() -> run(topic, props), "e2e-member-" + name);
            thread.start();
        }

        private void run(String topic, Map<String, Object> props) {
            try (KafkaConsumer<byte[], byte[]> consumer = mesh.consumerThroughEnvoy(props)) {
                consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                    @Override
                    public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                        consumer.commitSync();
                    }

                    @Override
                    public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
                    }
                });
                while (running) {
                    var records = consumer.poll(Duration.ofMillis(100));
                    for (ConsumerRecord<byte[], byte[]> r : records) {
                        sink.add(text(r.value()));
                        received++;
                    }
                    if (!records.isEmpty()) {
                        try {
                            consumer.commitSync();
                        } catch (RebalanceInProgressException e) {
                            // the revocation callback of the next poll commits these offsets
                        }
                    }
                    assignment = Set.copyOf(consumer.assignment());
                }
                consumer.commitSync();
            } catch (Throwable t) {
                failure = t;
            }
        }

        Set<TopicPartition> assignment() {
            return assignment;
        }

        int received() {
            return received;
        }

        Throwable failure() {
            return failure;
        }

        @Override
        public void close() throws InterruptedException {
            running = false;
            thread.join(GROUP_TIMEOUT.toMillis());
        }

        @Override
        public String toString() {
            return name + "{assigned=" + assignment + ", received=" + received
                    + (failure == null ? "" : ", failed=" + failure) + "}";
        }
    }
}
