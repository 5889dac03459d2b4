package io.meshcrypt.e2e.hostile;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;

import io.meshcrypt.e2e.support.FakeBroker;

/** The fake broker itself, with real kafka-clients and no proxy: a hostile test that fails must not be the harness. */
class FakeBrokerTest {

    @Test
    void givenConflictingTopicIds_whenRealProducerSendsDirect_thenBrokerRecordsValueByIdInV13() throws Exception {
        try (FakeBroker fake = new FakeBroker()) {
            Uuid shared = Uuid.randomUuid();
            fake.topics(List.of(new FakeBroker.Topic("secret-a", shared), new FakeBroker.Topic("public-a", shared)));
            try (KafkaProducer<byte[], byte[]> victim = producer(fake); KafkaProducer<byte[], byte[]> poisoner = producer(fake)) {
                victim.send(new ProducerRecord<>("secret-a", utf8("warm"))).get(20, TimeUnit.SECONDS);
                assertEquals(1, poisoner.partitionsFor("public-a").size());
                victim.send(new ProducerRecord<>("secret-a", utf8("s"))).get(20, TimeUnit.SECONDS);
            }
            List<FakeBroker.Produced> produced = fake.produced();
            assertEquals(2, produced.size(), produced.toString());
            assertEquals(ApiKeys.PRODUCE.latestVersion(), produced.get(1).version(), "kafka-clients produces by id when offered");
            assertEquals(shared, produced.get(1).topicId());
            assertArrayEquals(utf8("s"), produced.get(1).value());
        }
    }

    @Test
    void givenScriptedFetch_whenRealConsumerReadsDirect_thenGetsTheScriptedRecords() throws Exception {
        try (FakeBroker fake = new FakeBroker()) {
            fake.topics(List.of(new FakeBroker.Topic("t", Uuid.randomUuid())));
            MemoryRecords batch = MemoryRecords.withRecords(Compression.zstd().build(), new SimpleRecord(utf8("one")), new SimpleRecord(utf8("two")));
            fake.fetchScript("t", offset -> offset == 0 ? batch : null);
            Properties p = new Properties();
            p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + fake.port());
            p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
            p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
            p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
            List<String> got = new ArrayList<>();
            try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
                TopicPartition tp = new TopicPartition("t", 0);
                consumer.assign(List.of(tp));
                consumer.seek(tp, 0);
                long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
                while (got.size() < 2 && System.nanoTime() < end) {
                    for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                        got.add(new String(r.value(), StandardCharsets.UTF_8));
                    }
                }
            }
            assertEquals(List.of("one", "two"), got);
        }
    }

    private static KafkaProducer<byte[], byte[]> producer(FakeBroker fake) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + fake.port());
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, false);
        p.put(ProducerConfig.ACKS_CONFIG, "1");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 10_000);
        return new KafkaProducer<>(p);
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
