package io.meshcrypt.e2e.hostile;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.e2e.support.Envelope;
import io.meshcrypt.e2e.support.FakeBroker;
import io.meshcrypt.e2e.support.HostileMesh;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.e2e.support.MeshExtension;
import io.meshcrypt.e2e.support.RawPeer;
import io.meshcrypt.e2e.support.UnderAttack;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.message.ApiVersionsRequestData;
import org.apache.kafka.common.message.FetchRequestData;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.message.MetadataRequestData;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.message.ProduceResponseData;
import org.apache.kafka.common.message.ResponseHeaderData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.MemoryRecordsBuilder;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Issue 11, "hostile peers against the real Envoy + filter-service": a scripted fake broker and scripted raw clients
 * attack one filter-service (own Envoy 1.40 + filter-service from the tree, {@link HostileMesh}) while a healthy
 * producer and consumer on other connections through the same filter-service keep going. Every case asserts:
 * <ul>
 * <li>nothing the policy covers reaches a broker in plaintext (the fake broker records every byte it gets);</li>
 * <li>the attacked connection is closed within a bound, with a filter-service log line naming the cause;</li>
 * <li>the healthy clients kept at least {@link UnderAttack#MIN_RATE} records/s each, with no stall over {@link UnderAttack#MAX_STALL};</li>
 * <li>the filter-service is the same process afterwards and its resident memory under {@link UnderAttack#RSS_LIMIT}.</li>
 * </ul>
 * Envoy reaches the filter-service over TCP here; {@link HostilePeersOverUnixSocketTest} runs every case again with
 * that hop on a Unix domain socket.
 */
@ExtendWith(MeshExtension.class)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class HostilePeersTest {

    private static final Duration CLOSE_BOUND = Duration.ofSeconds(5);
    private static final Duration LOG_WAIT = Duration.ofSeconds(3);

    /** One filter-service and Envoy for the class's cases. */
    HostileMesh hostile;
    private final LocalMesh mesh;

    HostilePeersTest(LocalMesh mesh) {
        this.mesh = mesh;
    }

    /** The class's filter-service and Envoy; here Envoy reaches the filter-service over TCP. */
    HostileMesh startHostileMesh(LocalMesh mesh) throws IOException {
        return new HostileMesh(mesh);
    }

    @BeforeAll
    void up() throws IOException {
        hostile = startHostileMesh(mesh);
    }

    @AfterAll
    void down() throws IOException {
        if (hostile != null) {
            hostile.close();
        }
    }

    @BeforeEach
    void freshStart() throws IOException {
        hostile.ensureFilterServiceRunning();
        hostile.fakeBroker().clearRecorded();
        hostile.fakeBroker().produceMaxVersion(ApiKeys.PRODUCE.latestVersion());
    }

    // ---- defect 1: a broker steering Produce v13 to plaintext

    @Test
    void givenBrokerMapsSecretAndPublicToOneTopicIdOnTwoConnections_whenRealProducerSendsToSecret_thenProducedByNameAndEncrypted() throws Exception {
        // Given a broker whose Metadata maps an encrypted and a passthrough topic to one id, each answer naming one
        String suffix = suffix();
        String secret = "secret-" + suffix;
        String open = "public-" + suffix;
        Uuid shared = Uuid.randomUuid();
        FakeBroker fake = hostile.fakeBroker();
        fake.topics(List.of(new FakeBroker.Topic(secret, shared), new FakeBroker.Topic(open, shared)));
        byte[] plaintext = ("TOP SECRET " + suffix).getBytes(StandardCharsets.UTF_8);
        byte[] openValue = ("public value " + suffix).getBytes(StandardCharsets.UTF_8);
        byte[] warm = ("TOP SECRET warm-up " + suffix).getBytes(StandardCharsets.UTF_8);

        underAttack("a broker answering conflicting topic ids", () -> {
            // When a real producer (kafka-clients uses Produce v13, by topic id, when offered) sends to the secret
            // topic, and between two of its sends another connection is told the passthrough topic has the same id
            try (KafkaProducer<byte[], byte[]> victim = producer(hostile.fakeBootstrap(), Map.of(
                    ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, false, ProducerConfig.ACKS_CONFIG, "1"));
                    KafkaProducer<byte[], byte[]> poisoner = producer(hostile.fakeBootstrap(), Map.of(
                    ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, false, ProducerConfig.ACKS_CONFIG, "1"))) {
                victim.send(new ProducerRecord<>(secret, warm)).get(30, TimeUnit.SECONDS);
                poisoner.send(new ProducerRecord<>(open, openValue)).get(30, TimeUnit.SECONDS);
                victim.send(new ProducerRecord<>(secret, plaintext)).get(30, TimeUnit.SECONDS);
            }
            // Then the secret never reached the broker in plaintext, and it went by name in Produce <= v12
            assertNoPlaintextAtFakeBroker(warm, "the first Produce to " + secret);
            assertNoPlaintextAtFakeBroker(plaintext, "a Produce to " + secret + " after the conflicting mapping");
            List<FakeBroker.Request> produces = fake.requests().stream()
                    .filter(r -> r.apiKey() == ApiKeys.PRODUCE.id).toList();
            assertFalse(produces.isEmpty(), "the producer's Produce requests reached the broker");
            assertTrue(produces.stream().allMatch(r -> r.version() <= 12), () -> "Produce versions that reached the broker: "
                    + produces.stream().map(FakeBroker.Request::version).toList()
                    + " (the filter must offer at most v12, which names topics, so a broker cannot steer the policy by id)");
            List<FakeBroker.Produced> toSecret = fake.producedTo(secret, null);
            assertEquals(2, toSecret.size(), () -> "records produced by name to " + secret + ": " + fake.produced());
            toSecret.forEach(p -> assertEnvelope(p.value(), secret));
            // and the passthrough topic's value arrived byte for byte (a positive control)
            List<FakeBroker.Produced> toOpen = fake.producedTo(open, null);
            assertEquals(1, toOpen.size(), () -> "records produced by name to " + open + ": " + fake.produced());
            assertArrayEquals(openValue, toOpen.get(0).value(), "passthrough value at the broker");
        });
    }

    @Test
    void givenConflictingTopicIdsLearned_whenRawClientSendsProduceV13ById_thenConnectionClosedAndNothingReachesBroker() throws Exception {
        // Given a broker that offers Produce v13 and maps an encrypted and a passthrough topic to one id
        String suffix = suffix();
        Uuid shared = Uuid.randomUuid();
        FakeBroker fake = hostile.fakeBroker();
        fake.topics(List.of(new FakeBroker.Topic("secret-" + suffix, shared), new FakeBroker.Topic("public-" + suffix, shared)));
        byte[] plaintext = ("TOP SECRET raw " + suffix).getBytes(StandardCharsets.UTF_8);
        long mark = hostile.logMark();

        underAttack("a raw Produce v13 by topic id", () -> {
            try (RawPeer peer = new RawPeer(hostile.fakeBootstrapPort())) {
                // When a client asks ApiVersions and Metadata on its own connection (so it learns the ids itself) ...
                assertTrue(peer.send(FakeBroker.requestFrame(ApiKeys.API_VERSIONS, (short) 3, 1,
                        new ApiVersionsRequestData().setClientSoftwareName("hostile").setClientSoftwareVersion("1"))));
                assertNotNull(peer.readFrame(CLOSE_BOUND), "ApiVersions answered");
                assertTrue(peer.send(FakeBroker.requestFrame(ApiKeys.METADATA, (short) 12, 2,
                        new MetadataRequestData().setTopics(null).setAllowAutoTopicCreation(false))));
                if (peer.readFrame(CLOSE_BOUND) == null) {
                    // The one Metadata answer maps both names to one id: the filter refuses it and closes the
                    // connection before the client could learn any id.
                    assertNotNull(peer.awaitClosed(CLOSE_BOUND), "connection closed after a conflicting Metadata answer");
                    assertLogged(mark, "(?i)topic id \\S+ poisoned", "the conflicting topic id");
                } else {
                    // ... and then sends a Produce v13 naming the shared id
                    ProduceRequestData produce = new ProduceRequestData().setAcks((short) 1).setTimeoutMs(5_000)
                            .setTopicData(new ProduceRequestData.TopicProduceDataCollection(List.of(
                                    new ProduceRequestData.TopicProduceData().setTopicId(shared).setPartitionData(List.of(
                                            new ProduceRequestData.PartitionProduceData().setIndex(0)
                                                    .setRecords(MemoryRecords.withRecords(Compression.NONE, new SimpleRecord(plaintext))))))));
                    peer.send(FakeBroker.requestFrame(ApiKeys.PRODUCE, (short) 13, 3, produce));
                    // Then the connection is closed, the broker never saw a v13 Produce nor the plaintext
                    assertNotNull(peer.awaitClosed(CLOSE_BOUND), "connection closed after a Produce v13 (outside the offered versions)");
                    assertLogged(mark, "(?i)(produce|api key 0)\\D{0,60}13", "the refused Produce version");
                }
            }
            assertTrue(fake.requests().stream().noneMatch(r -> r.apiKey() == ApiKeys.PRODUCE.id && r.version() >= 13),
                    () -> "a Produce v13 reached the broker: " + fake.requests());
            assertNoPlaintextAtFakeBroker(plaintext, "a raw Produce v13 by id");
        });
    }

    // ---- defect 3 (and 8): a decompression bomb in a Fetch

    @Test
    void givenZstdBombServedInFetch_whenConsumerReadsThatPartition_thenNoRecordsOthersFlowAndServiceAlive() throws Exception {
        // Given a broker serving, for an encrypted topic, one zstd batch of 1 GiB of zeros (a few tens of KB compressed)
        String topic = "enc-bomb-" + suffix();
        FakeBroker fake = hostile.fakeBroker();
        fake.topics(List.of(new FakeBroker.Topic(topic, Uuid.randomUuid())));
        MemoryRecords bomb = zstdBomb();
        assertTrue(bomb.sizeInBytes() < 1 << 20, "the bomb is small on the wire: " + bomb.sizeInBytes() + " bytes");
        fake.fetchScript(topic, offset -> offset == 0 ? bomb : null);
        long mark = hostile.logMark();

        underAttack("a zstd bomb in a Fetch", () -> {
            // When a consumer reads that partition through the filter for a few seconds
            List<String> errors = new ArrayList<>();
            int records = 0;
            try (KafkaConsumer<byte[], byte[]> consumer = consumer(hostile.fakeBootstrap(), Map.of())) {
                TopicPartition tp = new TopicPartition(topic, 0);
                consumer.assign(List.of(tp));
                consumer.seek(tp, 0);
                long end = System.nanoTime() + Duration.ofSeconds(6).toNanos();
                while (System.nanoTime() < end) {
                    try {
                        records += consumer.poll(Duration.ofMillis(200)).count();
                    } catch (KafkaException e) {
                        errors.add(e.toString());
                        consumer.seek(tp, 0);
                    }
                }
            }
            // Then the consumer got none of the bomb, the filter fetched it (so it was really served) ...
            assertEquals(0, records, "records of the bomb delivered to the consumer");
            assertTrue(fake.requests().stream().anyMatch(r -> r.apiKey() == ApiKeys.FETCH.id), "the bomb was fetched");
            // ... and the filter-service says why it refused the batch
            assertLogged(mark, "(?i)(decompress|uncompress|inflat|compression ratio|bomb)", "the decompression limit");
        });
    }

    @Test
    void givenZstdBombOnPassthroughTopic_whenFetchedRaw_thenBatchPassesByteForByteAndServiceAlive() throws Exception {
        // Given a broker serving the same 1 GiB-of-zeros zstd batch for a topic the policy passes through
        String topic = "plain-bomb-" + suffix();
        FakeBroker fake = hostile.fakeBroker();
        fake.topics(List.of(new FakeBroker.Topic(topic, Uuid.randomUuid())));
        MemoryRecords bomb = zstdBomb();
        byte[] served = new byte[bomb.sizeInBytes()];
        bomb.buffer().duplicate().get(served);
        fake.fetchScript(topic, offset -> offset == 0 ? MemoryRecords.readableRecords(ByteBuffer.wrap(served)) : null);

        underAttack("a zstd bomb on a passthrough topic", () -> {
            try (RawPeer peer = new RawPeer(hostile.fakeBootstrapPort())) {
                // When a client fetches it (Fetch v12, by name; raw, so this JVM never inflates it either)
                assertTrue(peer.send(FakeBroker.requestFrame(ApiKeys.API_VERSIONS, (short) 3, 1,
                        new ApiVersionsRequestData().setClientSoftwareName("hostile").setClientSoftwareVersion("1"))));
                assertNotNull(peer.readFrame(CLOSE_BOUND), "ApiVersions answered");
                FetchRequestData fetch = new FetchRequestData().setReplicaId(-1).setMaxWaitMs(100).setMinBytes(1)
                        .setMaxBytes(50 << 20).setIsolationLevel((byte) 0).setSessionId(0).setSessionEpoch(-1)
                        .setTopics(List.of(new FetchRequestData.FetchTopic().setTopic(topic).setPartitions(List.of(
                                new FetchRequestData.FetchPartition().setPartition(0).setFetchOffset(0)
                                        .setPartitionMaxBytes(50 << 20).setLogStartOffset(-1).setCurrentLeaderEpoch(-1)))));
                assertTrue(peer.send(FakeBroker.requestFrame(ApiKeys.FETCH, (short) 12, 2, fetch)));
                ByteBuffer answer = peer.readFrame(Duration.ofSeconds(10));
                // Then it gets the batch exactly as the broker served it: passthrough Fetch is neither inflated nor rewritten
                assertNotNull(answer, "Fetch of a passthrough topic answered");
                ResponseHeaderData header = new ResponseHeaderData(new ByteBufferAccessor(answer),
                        ApiKeys.FETCH.responseHeaderVersion((short) 12));
                assertEquals(2, header.correlationId(), "correlation id of the answer");
                FetchResponseData r = new FetchResponseData(new ByteBufferAccessor(answer), (short) 12);
                FetchResponseData.PartitionData p = r.responses().get(0).partitions().get(0);
                assertEquals(Errors.NONE.code(), p.errorCode(), () -> "partition error " + Errors.forCode(p.errorCode()));
                MemoryRecords got = (MemoryRecords) p.records();
                byte[] bytes = new byte[got.sizeInBytes()];
                got.buffer().duplicate().get(bytes);
                assertArrayEquals(served, bytes, "the passthrough batch as the client received it");
            }
        });
    }

    // ---- defect 4 and framing: impossible and slow frames

    @Test
    void givenTwoGibLengthPrefix_whenSentThroughEnvoy_thenClosedAndNothingReachesBroker() throws Exception {
        long mark = hostile.logMark();
        underAttack("a 2 GiB length prefix", () -> {
            try (RawPeer peer = new RawPeer(hostile.fakeBootstrapPort())) {
                // When a client announces a 2 GiB - 1 frame (a Produce v12 header follows) and keeps sending
                ByteBuffer head = ByteBuffer.allocate(4 + 64).putInt(Integer.MAX_VALUE)
                        .putShort(ApiKeys.PRODUCE.id).putShort((short) 12).putInt(7).putShort((short) 4)
                        .put("evil".getBytes(StandardCharsets.US_ASCII));
                peer.send(head.array());
                peer.send(new byte[64 << 10]);
                // Then the connection is closed promptly and not one byte reached the broker
                assertNotNull(peer.awaitClosed(CLOSE_BOUND), "connection closed after a 2 GiB length prefix");
            }
            assertNothingReachedFakeBroker("a 2 GiB length prefix");
            assertLogged(mark, "(?i)(2147483647|2 ?GiB|too large|too big|exceeds|larger than|maxFrameBytes)", "the frame size");
        });
    }

    @Test
    void givenClientTricklesA100MibFrame_whenHeldPastTheDeadline_thenClosedWithinDeadlineAndNothingForwarded() throws Exception {
        long mark = hostile.logMark();
        Duration bound = HostileMesh.HELD_FRAME_TIMEOUT.plus(Duration.ofSeconds(4));
        underAttack("a trickled 100 MiB frame", () -> {
            Duration closedAfter;
            try (RawPeer peer = new RawPeer(hostile.fakeBootstrapPort())) {
                // When a client announces a Produce of just under 100 MiB (within maxFrameBytes) and sends 1 KiB per 250 ms
                ByteBuffer head = ByteBuffer.allocate(4 + 14).putInt((100 << 20) - 64)
                        .putShort(ApiKeys.PRODUCE.id).putShort((short) 12).putInt(9).putShort((short) 4)
                        .put("slow".getBytes(StandardCharsets.US_ASCII));
                closedAfter = peer.trickle(head.array(), new byte[1024], Duration.ofMillis(250), bound.plus(Duration.ofSeconds(3)));
            }
            // Then the filter-service closed it within its held-frame deadline (limits.heldFrameTimeout, 3 s here)
            assertTrue(hostile.limitsAccepted(), "the filter-service accepted limits: {heldFrameTimeout: 3s} in its config"
                    + " (it refused the key, so it runs without a held-frame deadline)");
            assertNotNull(closedAfter, "connection trickling a 100 MiB frame closed within " + bound);
            assertTrue(closedAfter.compareTo(bound) <= 0, "closed after " + closedAfter + ", bound " + bound);
            assertNothingReachedFakeBroker("a trickled frame");
            assertLogged(mark, "(?i)(held|deadline|timed? ?out|too slow|incomplete)", "the held-frame deadline");
        });
    }

    // ---- defect 2: non-Kafka bytes

    @Test
    void givenGarbageBytes_whenSentThroughEnvoy_thenClosedAndNothingReachesBroker() throws Exception {
        long mark = hostile.logMark();
        underAttack("garbage bytes", () -> {
            try (RawPeer peer = new RawPeer(hostile.fakeBootstrapPort())) {
                // When a client sends a plausible size (64 bytes) with an api key no Kafka has (0x7A7A)
                ByteBuffer garbage = ByteBuffer.allocate(4 + 64).putInt(64).putShort((short) 0x7A7A).putShort((short) 1)
                        .putInt(11);
                byte[] filler = new byte[56];
                Arrays.fill(filler, (byte) 'A');
                garbage.put(filler);
                peer.send(garbage.array());
                // Then the connection is closed and nothing reached the broker
                assertNotNull(peer.awaitClosed(CLOSE_BOUND), "connection closed after an unknown api key");
            }
            assertNothingReachedFakeBroker("garbage");
            assertLogged(mark, "(?i)(api key|unknown api|not kafka)", "the unknown api key");
        });
    }

    @Test
    void givenTlsClientHello_whenSentThroughEnvoy_thenClosedNothingReachesBrokerAndLogSaysTls() throws Exception {
        long mark = hostile.logMark();
        byte[] hello = clientHello();
        assertEquals(0x16, hello[0], "a TLS handshake record");
        underAttack("a TLS ClientHello", () -> {
            try (RawPeer peer = new RawPeer(hostile.fakeBootstrapPort())) {
                // When a client configured for SSL opens its session through the plaintext sidecar
                peer.send(hello);
                // Then the connection is closed and the ClientHello never reached the broker
                assertNotNull(peer.awaitClosed(CLOSE_BOUND), "connection closed after a TLS ClientHello");
            }
            assertNothingReachedFakeBroker("a TLS ClientHello");
            assertLogged(mark, "(?i)speaks TLS", "TLS (\"the client speaks TLS to the sidecar ...\")");
        });
    }

    // ---- defect 5: client-chosen topic names

    @Test
    void givenOneProduceNamingTenThousandTopics_whenSent_thenNoPlaintextAtBrokerAndANewTopicStillGetsItsKey() throws Exception {
        long mark = hostile.logMark();
        underAttack("one Produce naming 10,000 topics", () -> flood(hostile, 10_000, mark));
    }

    /**
     * One Produce naming {@code topics} new encrypted topics on one raw connection to the fake broker, while a producer
     * of a brand-new encrypted topic on another connection (real broker) must still get its data key within 10 s.
     * Then no flood value reached the broker in plaintext, the flood was answered or closed within 20 s, and the key
     * provider was not pushed into failure.
     */
    static void flood(HostileMesh hostile, int topics, long mark) throws Exception {
        String suffix = suffix();
        ProduceRequestData produce = new ProduceRequestData().setAcks((short) 1).setTimeoutMs(30_000);
        ProduceRequestData.TopicProduceDataCollection data = new ProduceRequestData.TopicProduceDataCollection(topics);
        for (int i = 0; i < topics; i++) {
            data.add(new ProduceRequestData.TopicProduceData().setName("enc-flood-" + suffix + "-" + i).setPartitionData(List.of(
                    new ProduceRequestData.PartitionProduceData().setIndex(0).setRecords(MemoryRecords.withRecords(Compression.NONE,
                            new SimpleRecord(("flood secret " + i).getBytes(StandardCharsets.UTF_8)))))));
        }
        produce.setTopicData(data);
        String fresh = hostile.mesh().createTopic("enc-fresh", 1);
        try (RawPeer peer = new RawPeer(hostile.fakeBootstrapPort())) {
            // When one client sends a single Produce naming many new encrypted topics
            assertTrue(peer.send(FakeBroker.requestFrame(ApiKeys.PRODUCE, (short) 12, 5, produce)));
            // Then a producer of a brand-new encrypted topic on another connection still gets its data key promptly
            long t0 = System.nanoTime();
            try (KafkaProducer<byte[], byte[]> producer = producer(hostile.realBootstrap(), Map.of())) {
                producer.send(new ProducerRecord<>(fresh, "fresh secret".getBytes(StandardCharsets.UTF_8))).get(15, TimeUnit.SECONDS);
            }
            Duration freshLatency = Duration.ofNanos(System.nanoTime() - t0);
            assertTrue(freshLatency.compareTo(Duration.ofSeconds(10)) <= 0, "a new topic's first record took " + freshLatency);
            // the flood gets an answer or is closed; either way, within a bound
            ByteBuffer answer = peer.readFrame(Duration.ofSeconds(20));
            if (answer == null) {
                assertNotNull(peer.awaitClosed(Duration.ofSeconds(1)), "the flooding connection neither answered nor closed within 20 s");
            }
        }
        // and no flood value reached the broker in plaintext
        for (FakeBroker.Produced p : hostile.fakeBroker().produced()) {
            UnderAttack.assertEnvelope(p.value(), "flood topic " + p.topicName());
            assertTrue(Envelope.indexOf(p.value(), "flood secret".getBytes(StandardCharsets.UTF_8)) < 0, "plaintext flood value at the broker");
        }
        for (ConsumerRecord<byte[], byte[]> r : hostile.mesh().readDirect(fresh)) {
            UnderAttack.assertEnvelope(r.value(), fresh);
        }
        String kms = hostile.awaitLogLine(mark, Pattern.compile("(?i)(backoff|kms.*(unavailable|timed out|failed))"), Duration.ZERO);
        assertTrue(kms == null, "the key provider was pushed into failure: " + kms);
    }

    @Test
    void givenIllegalTopicNameInProduce_whenSent_thenConnectionClosedAndNothingReachesBroker() throws Exception {
        long mark = hostile.logMark();
        underAttack("a Produce naming an illegal topic", () -> {
            // When a client produces to "enc-" + 300 characters including '/' (Kafka allows [a-zA-Z0-9._-], 249 bytes)
            String illegal = "enc-" + "a/".repeat(150);
            byte[] plaintext = "illegal-name secret".getBytes(StandardCharsets.UTF_8);
            ProduceRequestData produce = new ProduceRequestData().setAcks((short) 1).setTimeoutMs(5_000)
                    .setTopicData(new ProduceRequestData.TopicProduceDataCollection(List.of(
                            new ProduceRequestData.TopicProduceData().setName(illegal).setPartitionData(List.of(
                                    new ProduceRequestData.PartitionProduceData().setIndex(0)
                                            .setRecords(MemoryRecords.withRecords(Compression.NONE, new SimpleRecord(plaintext))))))));
            try (RawPeer peer = new RawPeer(hostile.fakeBootstrapPort())) {
                peer.send(FakeBroker.requestFrame(ApiKeys.PRODUCE, (short) 12, 6, produce));
                // Then the connection is closed (or the topic refused with INVALID_TOPIC_EXCEPTION, as Kafka does)
                // before a data key is made for it, and nothing reached the broker
                ByteBuffer answer = peer.readFrame(CLOSE_BOUND);
                if (answer == null) {
                    assertNotNull(peer.awaitClosed(Duration.ofSeconds(1)), "connection closed after a Produce to an illegal topic name");
                } else {
                    ResponseHeaderData header = new ResponseHeaderData(new ByteBufferAccessor(answer),
                            ApiKeys.PRODUCE.responseHeaderVersion((short) 12));
                    assertEquals(6, header.correlationId(), "correlation id of the answer");
                    ProduceResponseData r = new ProduceResponseData(new ByteBufferAccessor(answer), (short) 12);
                    short error = r.responses().iterator().next().partitionResponses().get(0).errorCode();
                    assertEquals(Errors.INVALID_TOPIC_EXCEPTION.code(), error, "the answer for an illegal topic name: " + Errors.forCode(error));
                }
            }
            assertNoPlaintextAtFakeBroker(plaintext, "an illegal topic name");
            assertTrue(hostile.fakeBroker().produced().isEmpty(), () -> "records reached the broker: " + hostile.fakeBroker().produced());
            assertLogged(mark, "(?i)(topic name|invalid topic|illegal)", "the illegal topic name");
        });
    }

    // ---- defect 6: envelopes on passthrough topics

    @Test
    void givenForgedEnvelopesOnPassthroughTopic_whenConsumedThroughEnvoy_thenBytesAsProducedAndForeignKeyIdNeverUsed() throws Exception {
        // Given values that look like envelopes, produced to a topic the policy passes through
        String topic = mesh.createTopic("plain-forged", 1);
        byte[] attackerKek = "attacker-kek-7f3a".getBytes(StandardCharsets.US_ASCII);
        List<byte[]> values = List.of(
                new byte[] {0x00, 0x4D, 0x43, 0x45, 0x02},
                concat(new byte[] {0x00, 0x4D, 0x43, 0x45, 0x01}, random(40)),
                concat(new byte[] {0x00, 0x4D, 0x43, 0x45, 0x02, (byte) attackerKek.length}, attackerKek, random(8), random(60)),
                "an ordinary value".getBytes(StandardCharsets.UTF_8));
        long mark = hostile.logMark();
        underAttack("forged envelopes on a passthrough topic", () -> {
            // When they are produced and consumed through the filter
            try (KafkaProducer<byte[], byte[]> producer = producer(hostile.realBootstrap(), Map.of())) {
                for (byte[] v : values) {
                    producer.send(new ProducerRecord<>(topic, v)).get(30, TimeUnit.SECONDS);
                }
            }
            List<ConsumerRecord<byte[], byte[]>> consumed;
            try (KafkaConsumer<byte[], byte[]> consumer = consumer(hostile.realBootstrap(), Map.of())) {
                consumed = LocalMesh.drain(consumer, topic);
            }
            // Then the consumer gets exactly the bytes produced, as they are stored
            List<ConsumerRecord<byte[], byte[]>> atRest = mesh.readDirect(topic);
            assertEquals(values.size(), atRest.size(), "records at rest");
            assertEquals(values.size(), consumed.size(), "records consumed through Envoy");
            for (int i = 0; i < values.size(); i++) {
                assertArrayEquals(values.get(i), atRest.get(i).value(), "record " + i + " at rest");
                assertArrayEquals(values.get(i), consumed.get(i).value(), "record " + i + " consumed through Envoy");
            }
            // and the key id the attacker chose never reached the key provider (nor the log)
            assertFalse(hostile.logSince(mark).contains("attacker-kek"), "the filter-service handled the attacker's key id");
        });
    }

    private void underAttack(String during, UnderAttack.Attack attack) throws Exception {
        UnderAttack.run(hostile, during, attack);
    }

    // ---- assertions

    private static void assertEnvelope(byte[] value, String where) {
        UnderAttack.assertEnvelope(value, where);
    }

    private void assertNoPlaintextAtFakeBroker(byte[] plaintext, String what) {
        for (FakeBroker.Produced p : hostile.fakeBroker().produced()) {
            if (p.value() != null) {
                assertTrue(Envelope.indexOf(p.value(), plaintext) < 0, () -> "plaintext of " + what + " reached the broker: "
                        + Envelope.preview(p.value()) + " (Produce v" + p.version() + ", topic " + p.topicName() + "/" + p.topicId() + ")");
            }
        }
    }

    /** Not one byte of the attacked connection reached the broker: Envoy may connect upstream, but sends nothing. */
    private void assertNothingReachedFakeBroker(String what) {
        for (FakeBroker.Connection c : hostile.fakeBroker().connections()) {
            assertEquals(0, c.bytes.get(), () -> what + ": bytes reached the broker on connection " + c.id + ", starting "
                    + HexFormat.ofDelimiter(" ").formatHex(c.head));
        }
        assertTrue(hostile.fakeBroker().requests().isEmpty(), () -> what + ": requests reached the broker: "
                + hostile.fakeBroker().requests());
    }

    private void assertLogged(long mark, String regex, String cause) {
        String line = hostile.awaitLogLine(mark, Pattern.compile(regex), LOG_WAIT);
        assertNotNull(line, () -> "no filter-service log line naming " + cause + " (/" + regex + "/); logged since the attack:\n"
                + tail(hostile.logSince(mark)));
    }

    private static String tail(String log) {
        String[] lines = log.split("\n");
        return String.join("\n", Arrays.copyOfRange(lines, Math.max(0, lines.length - 15), lines.length));
    }

    // ---- clients and payloads

    static KafkaProducer<byte[], byte[]> producer(String bootstrap, Map<String, Object> overrides) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        p.put(ProducerConfig.LINGER_MS_CONFIG, 0);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 20_000);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 15_000);
        p.putAll(overrides);
        return new KafkaProducer<>(p);
    }

    private static KafkaConsumer<byte[], byte[]> consumer(String bootstrap, Map<String, Object> overrides) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 100);
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30_000);
        p.putAll(overrides);
        return new KafkaConsumer<>(p);
    }

    private static byte[] bombBytes;

    /** 64 records of 16 MiB of zeros in one zstd batch (1 GiB inflated, tens of KB on the wire); built once. */
    private static synchronized MemoryRecords zstdBomb() {
        if (bombBytes == null) {
            MemoryRecords built = zstdBomb(64, 16 << 20);
            bombBytes = new byte[built.sizeInBytes()];
            built.buffer().duplicate().get(bombBytes);
        }
        return MemoryRecords.readableRecords(ByteBuffer.wrap(bombBytes.clone()));
    }

    /** {@code count} records of {@code valueBytes} zeros in one zstd batch: huge inflated, tiny on the wire. */
    private static MemoryRecords zstdBomb(int count, int valueBytes) {
        byte[] zeros = new byte[valueBytes];
        MemoryRecordsBuilder b = MemoryRecords.builder(ByteBuffer.allocate(1 << 20), Compression.zstd().build(),
                TimestampType.CREATE_TIME, 0L);
        for (int i = 0; i < count; i++) {
            b.append(System.currentTimeMillis(), null, zeros);
        }
        return b.build();
    }

    /** A real TLS ClientHello, as a Kafka client with security.protocol=SSL would send it first. */
    private static byte[] clientHello() throws Exception {
        SSLEngine engine = SSLContext.getDefault().createSSLEngine("kafka.example", 9093);
        engine.setUseClientMode(true);
        ByteBuffer out = ByteBuffer.allocate(engine.getSession().getPacketBufferSize());
        engine.wrap(ByteBuffer.allocate(0), out);
        out.flip();
        byte[] hello = new byte[out.remaining()];
        out.get(hello);
        return hello;
    }

    static String suffix() {
        return HexFormat.of().formatHex(random(4));
    }

    private static byte[] random(int n) {
        byte[] b = new byte[n];
        ThreadLocalRandom.current().nextBytes(b);
        return b;
    }

    private static byte[] concat(byte[]... parts) {
        int n = 0;
        for (byte[] p : parts) {
            n += p.length;
        }
        byte[] out = new byte[n];
        int at = 0;
        for (byte[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }
}
