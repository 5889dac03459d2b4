package io.meshcrypt.filter.subjects;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The subject-key log as a compacted Kafka topic with one partition (one partition: one log order every replica
 * sees), read and written with kafka-clients straight to the brokers (not through Envoy: these records are already
 * encrypted, and the filter-service must not depend on its own data path). Created with
 * {@code cleanup.policy=compact} when missing. Appends are idempotent with {@code acks=all}. The follower is one
 * daemon thread, a consumer without a group that reads from the beginning; while the topic does not exist the log
 * counts as read (empty) and the follower checks again every second. Appends may block (topic creation, metadata):
 * only the store's own worker and the forget command call it.
 */
public final class KafkaSubjectKeyLog implements SubjectKeyLog {
    private static final Logger log = LoggerFactory.getLogger(KafkaSubjectKeyLog.class);
    private static final Duration POLL = Duration.ofMillis(500);

    /** Where the log is: the brokers (direct), the topic, and Kafka client properties for TLS/SASL. */
    public record Location(String bootstrap, String topic, short replicationFactor, Map<String, String> client) {
        /** The client properties' names only: their values may be passwords. */
        @Override
        public String toString() {
            return "Location{bootstrap=" + bootstrap + ", topic=" + topic + ", client properties=" + client.keySet() + "}";
        }
    }

    private final Location config;
    private final Duration timeout;
    private static final Duration MISSING_TOPIC_RECHECK = Duration.ofSeconds(1);
    private boolean topicReady;
    private final KafkaProducer<byte[], byte[]> producer;
    private final KafkaConsumer<byte[], byte[]> consumer;
    private volatile boolean closed;
    private Thread thread;

    /** Connects nothing yet: the follower thread and the first append do (never a caller of the data path). */
    public KafkaSubjectKeyLog(Location config, Duration timeout) {
        this.config = config;
        this.timeout = timeout;
        Map<String, Object> producerProps = common();
        producerProps.put(ProducerConfig.ACKS_CONFIG, "all");
        producerProps.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        producerProps.put(ProducerConfig.CLIENT_ID_CONFIG, "meshcrypt-subject-keys-writer");
        this.producer = new KafkaProducer<>(producerProps, new ByteArraySerializer(), new ByteArraySerializer());
        Map<String, Object> consumerProps = common();
        consumerProps.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        consumerProps.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        // A broker with auto.create.topics.enable would create it uncompacted: only createTopicIfMissing creates it.
        consumerProps.put(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, false);
        consumerProps.put(ConsumerConfig.CLIENT_ID_CONFIG, "meshcrypt-subject-keys-reader");
        this.consumer = new KafkaConsumer<>(consumerProps, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    private Map<String, Object> common() {
        Map<String, Object> props = new HashMap<>(config.client());
        props.put("bootstrap.servers", config.bootstrap());
        return props;
    }

    /** Before the first append: the producer's metadata request would make an auto-creating broker create it plain. */
    private synchronized void createTopicIfMissing() throws ExecutionException, InterruptedException,
            java.util.concurrent.TimeoutException {
        if (topicReady) {
            return;
        }
        try (Admin admin = Admin.create(common())) {
            NewTopic topic = new NewTopic(config.topic(), Optional.of(1),
                    config.replicationFactor() > 0 ? Optional.of(config.replicationFactor()) : Optional.empty())
                    .configs(Map.of("cleanup.policy", "compact"));
            try {
                admin.createTopics(List.of(topic)).all().get(timeout.toMillis(), TimeUnit.MILLISECONDS);
                log.info("created the subject-key topic {} (1 partition, cleanup.policy=compact)", config.topic());
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) {
                    throw e;
                }
            }
        }
        topicReady = true;
    }

    @Override
    public synchronized CompletableFuture<Void> follow(Follower follower) {
        CompletableFuture<Void> caughtUp = new CompletableFuture<>();
        thread = Thread.ofPlatform().daemon().name("meshcrypt-subject-keys-follower").start(() -> run(follower, caughtUp));
        return caughtUp;
    }

    private void run(Follower follower, CompletableFuture<Void> caughtUp) {
        try {
            List<TopicPartition> assigned = List.of();
            while (!closed && assigned.isEmpty()) {
                List<PartitionInfo> partitions;
                try {
                    partitions = consumer.partitionsFor(config.topic(), timeout);
                } catch (org.apache.kafka.common.errors.RetriableException e) {
                    log.warn("subject-key log {}: brokers {} not reachable yet ({}); subject keys wait", config.topic(),
                            config.bootstrap(), e.toString());
                    continue;
                }
                if (partitions == null || partitions.isEmpty()) {
                    // No topic yet: nothing to read; the first subject key creates it.
                    caughtUp.complete(null);
                    Thread.sleep(MISSING_TOPIC_RECHECK.toMillis());
                    continue;
                }
                assigned = partitions.stream().map(p -> new TopicPartition(p.topic(), p.partition())).toList();
            }
            if (assigned.size() != 1) {
                throw new IllegalStateException("the subject-key topic " + config.topic() + " has " + assigned.size()
                        + " partitions; it needs exactly 1 (one log order)");
            }
            consumer.assign(assigned);
            consumer.seekToBeginning(assigned);
            long end = -1;
            while (!closed) {
                try {
                    if (end < 0) {
                        end = consumer.endOffsets(assigned).get(assigned.get(0));
                    }
                    if (!caughtUp.isDone() && consumer.position(assigned.get(0)) >= end) {
                        caughtUp.complete(null);
                    }
                    for (ConsumerRecord<byte[], byte[]> r : consumer.poll(POLL)) {
                        follower.apply(r.key(), r.value());
                    }
                } catch (org.apache.kafka.common.errors.RetriableException e) {
                    // A broker away for a while: keep the position and try again.
                    log.warn("subject-key log {}: {}; retrying", config.topic(), e.toString());
                    Thread.sleep(MISSING_TOPIC_RECHECK.toMillis());
                }
            }
        } catch (WakeupException | InterruptedException e) {
            // closing
        } catch (RuntimeException e) {
            log.error("subject-key log {}: the follower stopped: {}", config.topic(), e.toString());
            caughtUp.completeExceptionally(e);
        } finally {
            consumer.close();
        }
    }

    @Override
    public CompletableFuture<Void> append(byte[] key, byte[] value) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        try {
            createTopicIfMissing();
        } catch (Exception e) {
            done.completeExceptionally(e);
            return done;
        }
        producer.send(new ProducerRecord<>(config.topic(), 0, key, value), (metadata, e) -> {
            if (e == null) {
                done.complete(null);
            } else {
                done.completeExceptionally(e);
            }
        });
        return done;
    }

    @Override
    public void close() {
        closed = true;
        consumer.wakeup();
        producer.close(Duration.ofSeconds(5));
        Thread t;
        synchronized (this) {
            t = thread;
        }
        if (t != null) {
            try {
                t.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
