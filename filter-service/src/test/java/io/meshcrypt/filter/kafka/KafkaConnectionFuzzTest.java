package io.meshcrypt.filter.kafka;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.code_intelligence.jazzer.junit.FuzzTest;
import com.google.protobuf.ByteString;
import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.crypto.ValueEnvelope;
import io.meshcrypt.filter.framing.KafkaFrameException;
import io.meshcrypt.filter.fuzz.FuzzSupport;
import io.meshcrypt.filter.transport.ConnectionHandler;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import java.io.ByteArrayOutputStream;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.message.ApiVersionsRequestData;
import org.apache.kafka.common.message.ApiVersionsResponseData;
import org.apache.kafka.common.message.DescribeClusterResponseData;
import org.apache.kafka.common.message.FetchRequestData;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.message.FindCoordinatorResponseData;
import org.apache.kafka.common.message.HeartbeatRequestData;
import org.apache.kafka.common.message.MetadataRequestData;
import org.apache.kafka.common.message.MetadataResponseData;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.message.ProduceResponseData;
import org.apache.kafka.common.message.RequestHeaderData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.Record;
import org.apache.kafka.common.record.internal.RecordBatch;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A whole Kafka connection (framing, codec, policy, batch rewriting, crypto) fed hostile bytes in random chunks, in
 * each direction. Package-private code, hence this package.
 *
 * <p>Invariants: nothing but KafkaFrameException escapes (no RuntimeException, no Error: a hostile peer may close
 * its own connection, never more); with an encrypt-everything policy, every Produce frame the filter forwards
 * carries only envelopes as record values.
 */
class KafkaConnectionFuzzTest {
    static {
        FuzzSupport.quietLogs();
    }

    private static final ValueCipherV1 CIPHER = FuzzSupport.recordCipher();
    /** The response direction tracks requests of these APIs (the ones whose responses the filter decodes). */
    static final List<ApiKeys> TRACKED = List.of(ApiKeys.FETCH, ApiKeys.METADATA, ApiKeys.API_VERSIONS, ApiKeys.PRODUCE,
            ApiKeys.FIND_COORDINATOR, ApiKeys.DESCRIBE_CLUSTER, ApiKeys.SHARE_FETCH, ApiKeys.SHARE_ACKNOWLEDGE);

    private static KafkaProxy proxy() {
        // A fresh proxy per input: the topic-id cache must not carry state from one input to the next.
        return new KafkaProxy(EncryptionPolicy.encryptAll(), CIPHER, null,
                new BrokerAddresses(Map.of(1, new InetSocketAddress("127.0.0.1", 19093))), TestLimits.kafka(1 << 20));
    }

    /** Input: byte 0 = chunking seed, the rest = what a client sends. */
    @FuzzTest(maxDuration = "60s")
    void givenHostileClientBytes_whenForwarded_thenOnlyKafkaFrameExceptionAndNoPlaintextProduce(byte[] input)
            throws Exception {
        if (input.length < 1) {
            return;
        }
        ConnectionHandler connection = proxy().open();
        ByteArrayOutputStream forwarded = new ByteArrayOutputStream();
        try {
            for (ByteString chunk : FuzzSupport.chunks(input, 1, input[0])) {
                connection.onRead(chunk, false).writeTo(forwarded);
            }
        } catch (KafkaFrameException expected) {
            // The connection is closed; what it forwarded before must still be safe.
        } finally {
            connection.onClose();
        }
        assertNoPlaintextProduce(forwarded.toByteArray());
    }

    /**
     * Input: byte 0 = chunking seed, byte 1 = number of requests (0-7) the client sent first, 4 bytes per request
     * (index into {@link #TRACKED}, version, correlation id as 2 bytes), then what the broker answers.
     */
    @FuzzTest(maxDuration = "60s")
    void givenHostileBrokerBytes_whenForwarded_thenOnlyKafkaFrameException(byte[] input) throws Exception {
        if (input.length < 2) {
            return;
        }
        ConnectionHandler connection = proxy().open();
        int requests = input[1] & 0x07;
        int at = 2;
        try {
            for (int i = 0; i < requests && at + 4 <= input.length; i++, at += 4) {
                ApiKeys api = TRACKED.get((input[at] & 0xFF) % TRACKED.size());
                short version = (short) (api.oldestVersion()
                        + (input[at + 1] & 0xFF) % (api.latestVersion(true) - api.oldestVersion() + 1));
                int correlationId = ((input[at + 2] & 0xFF) << 8) | (input[at + 3] & 0xFF);
                byte[] request = trackedRequest(api, version, correlationId);
                if (request == null) {
                    continue;
                }
                try {
                    connection.onRead(ByteString.copyFrom(request), false);
                } catch (KafkaFrameException e) {
                    break; // the request direction is closed; the responses are still fed below
                }
            }
            for (ByteString chunk : FuzzSupport.chunks(input, Math.min(at, input.length), input[0])) {
                connection.onWrite(chunk, false);
            }
        } catch (KafkaFrameException expected) {
            // closed
        } finally {
            connection.onClose();
        }
    }

    /** A request the client could send so that the response is decoded; null when kafka-clients cannot write it. */
    static byte[] trackedRequest(ApiKeys api, short version, int correlationId) {
        ApiMessage body = api == ApiKeys.PRODUCE
                ? new ProduceRequestData().setAcks((short) -1).setTimeoutMs(1000)
                : api.messageType.newRequest();
        try {
            return requestFrame(correlationId, api, version, body);
        } catch (RuntimeException e) {
            return null; // a field default this version cannot carry: not something the filter sees
        }
    }

    static byte[] requestFrame(int correlationId, ApiKeys api, short version, ApiMessage body) {
        RequestHeaderData header = new RequestHeaderData().setRequestApiKey(api.id).setRequestApiVersion(version)
                .setCorrelationId(correlationId).setClientId("fuzz");
        return frame(header, api.requestHeaderVersion(version), body, version);
    }

    static byte[] responseFrame(int correlationId, ApiKeys api, short version, ApiMessage body) {
        return frame(new org.apache.kafka.common.message.ResponseHeaderData().setCorrelationId(correlationId),
                api.responseHeaderVersion(version), body, version);
    }

    private static byte[] frame(ApiMessage header, short headerVersion, ApiMessage body, short version) {
        org.apache.kafka.common.protocol.ObjectSerializationCache cache = new org.apache.kafka.common.protocol.ObjectSerializationCache();
        int size = header.size(cache, headerVersion) + body.size(cache, version);
        ByteBuffer buf = ByteBuffer.allocate(4 + size).putInt(size);
        ByteBufferAccessor out = new ByteBufferAccessor(buf);
        header.write(out, cache, headerVersion);
        body.write(out, cache, version);
        return buf.array();
    }

    /**
     * Every complete Produce frame in {@code forwarded} must decode, and every record value in it must be an envelope:
     * the policy encrypts every topic, so anything else is plaintext reaching the broker.
     */
    private static void assertNoPlaintextProduce(byte[] forwarded) {
        ByteBuffer all = ByteBuffer.wrap(forwarded);
        while (all.remaining() >= 4) {
            int size = all.getInt(all.position());
            if (size < 0 || size > all.remaining() - 4) {
                return; // a pass-through frame cut short by the close
            }
            ByteBuffer frame = all.slice(all.position() + 4, size);
            all.position(all.position() + 4 + size);
            if (size < 4 || frame.getShort(0) != ApiKeys.PRODUCE.id) {
                continue;
            }
            short version = frame.getShort(2);
            ProduceRequestData produce;
            try {
                ByteBufferAccessor in = new ByteBufferAccessor(frame.duplicate());
                new RequestHeaderData(in, ApiKeys.PRODUCE.requestHeaderVersion(version));
                produce = new ProduceRequestData(in, version);
            } catch (RuntimeException e) {
                fail("a forwarded Produce frame (v" + version + ", " + size + " bytes) does not decode: " + e, e);
                return;
            }
            for (ProduceRequestData.TopicProduceData topic : produce.topicData()) {
                for (ProduceRequestData.PartitionProduceData partition : topic.partitionData()) {
                    if (!(partition.records() instanceof MemoryRecords records)) {
                        continue;
                    }
                    for (RecordBatch batch : records.batches()) {
                        if (batch.isControlBatch()) {
                            continue;
                        }
                        for (Record record : batch) {
                            assertTrue(!record.hasValue() || ValueEnvelope.isEnvelope(record.value()),
                                    "plaintext value forwarded in a Produce to " + topic.name() + topic.topicId());
                        }
                    }
                }
            }
        }
    }

    // ---- seed inputs ----

    @Test
    void writeSeeds(@TempDir Path scratch) throws Exception {
        Path root = FuzzSupport.seedRoot(scratch);
        String client = "givenHostileClientBytes_whenForwarded_thenOnlyKafkaFrameExceptionAndNoPlaintextProduce";
        String broker = "givenHostileBrokerBytes_whenForwarded_thenOnlyKafkaFrameException";

        byte[] produce = requestFrame(1, ApiKeys.PRODUCE, (short) 12, produce("orders", null, Compression.NONE, "alpha", "beta"));
        byte[] produceGzip = requestFrame(2, ApiKeys.PRODUCE, (short) 11, produce("orders", null, Compression.gzip().build(), "one"));
        byte[] produceZstd = requestFrame(3, ApiKeys.PRODUCE, (short) 9, produce("logs", null, Compression.zstd().build(), "zz", "zz"));
        byte[] produceById = requestFrame(4, ApiKeys.PRODUCE, (short) 13, produce(null, new Uuid(1, 2), Compression.NONE, "secret"));
        byte[] heartbeat = requestFrame(5, ApiKeys.HEARTBEAT, (short) 4, new HeartbeatRequestData().setGroupId("g").setMemberId("m"));
        byte[] apiVersions = requestFrame(6, ApiKeys.API_VERSIONS, (short) 3,
                new ApiVersionsRequestData().setClientSoftwareName("fuzz").setClientSoftwareVersion("1"));
        byte[] metadata = requestFrame(7, ApiKeys.METADATA, (short) 12, new MetadataRequestData());
        byte[] fetch = requestFrame(8, ApiKeys.FETCH, (short) 12, new FetchRequestData().setMaxWaitMs(100));
        // The first bytes of a TLS ClientHello: a client configured for SSL talking to the plaintext sidecar.
        byte[] tls = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, (byte) 0xfc, 0x03, 0x03, 1, 2, 3, 4, 5, 6, 7, 8};
        FuzzSupport.seed(root, getClass(), client, "produce-v12", FuzzSupport.concat(new byte[] {1}, produce));
        FuzzSupport.seed(root, getClass(), client, "session", FuzzSupport.concat(new byte[] {2}, apiVersions, metadata,
                produceGzip, heartbeat, fetch, produceZstd));
        FuzzSupport.seed(root, getClass(), client, "produce-by-topic-id", FuzzSupport.concat(new byte[] {3}, produceById));
        FuzzSupport.seed(root, getClass(), client, "tls-client-hello", FuzzSupport.concat(new byte[] {4}, tls));

        MemoryRecords encrypted = encrypted("orders", Compression.NONE, "one", "two");
        MemoryRecords encryptedLz4 = encrypted("orders", Compression.lz4().build(), "three");
        FuzzSupport.seed(root, getClass(), broker, "fetch-v12", FuzzSupport.concat(tracked(0, 12, 7),
                responseFrame(7, ApiKeys.FETCH, (short) 12, fetchResponse("orders", null, encrypted, false))));
        FuzzSupport.seed(root, getClass(), broker, "metadata-then-fetch-by-id", FuzzSupport.concat(
                new byte[] {2, 2}, request(1, 12, 9), request(0, 17, 10),
                responseFrame(9, ApiKeys.METADATA, (short) 12, metadata(new Uuid(5, 6), "orders", 1)),
                responseFrame(10, ApiKeys.FETCH, (short) 17, fetchResponse(null, new Uuid(5, 6), encryptedLz4, true))));
        FuzzSupport.seed(root, getClass(), broker, "api-versions", FuzzSupport.concat(tracked(2, 3, 11),
                responseFrame(11, ApiKeys.API_VERSIONS, (short) 3, apiVersionsResponse())));
        FuzzSupport.seed(root, getClass(), broker, "produce-response-endpoints", FuzzSupport.concat(tracked(3, 11, 12),
                responseFrame(12, ApiKeys.PRODUCE, (short) 11, produceResponse())));
        FuzzSupport.seed(root, getClass(), broker, "find-coordinator", FuzzSupport.concat(tracked(4, 4, 13),
                responseFrame(13, ApiKeys.FIND_COORDINATOR, (short) 4, new FindCoordinatorResponseData().setCoordinators(
                        new ArrayList<>(List.of(new FindCoordinatorResponseData.Coordinator().setKey("g").setNodeId(1)
                                .setHost("10.0.0.1").setPort(9092)))))));
        FuzzSupport.seed(root, getClass(), broker, "describe-cluster", FuzzSupport.concat(tracked(5, 0, 14),
                responseFrame(14, ApiKeys.DESCRIBE_CLUSTER, (short) 0, describeCluster())));
        FuzzSupport.seed(root, getClass(), broker, "untracked-passthrough", FuzzSupport.concat(new byte[] {6, 0},
                responseFrame(99, ApiKeys.HEARTBEAT, (short) 4, new org.apache.kafka.common.message.HeartbeatResponseData())));
        FuzzSupport.requireSeeds(root, getClass());
    }

    private static byte[] tracked(int api, int version, int correlationId) {
        return FuzzSupport.concat(new byte[] {(byte) (api + version), 1}, request(api, version, correlationId));
    }

    /** One request entry of the broker-direction input; the version byte is chosen so that it maps to {@code version}. */
    private static byte[] request(int api, int version, int correlationId) {
        ApiKeys key = TRACKED.get(api);
        return new byte[] {(byte) api, (byte) (version - key.oldestVersion()), (byte) (correlationId >> 8), (byte) correlationId};
    }

    private static ProduceRequestData produce(String topic, Uuid id, Compression compression, String... values) {
        SimpleRecord[] records = new SimpleRecord[values.length];
        for (int i = 0; i < values.length; i++) {
            records[i] = new SimpleRecord(("k" + i).getBytes(StandardCharsets.UTF_8), values[i].getBytes(StandardCharsets.UTF_8));
        }
        ProduceRequestData.TopicProduceDataCollection topics = new ProduceRequestData.TopicProduceDataCollection();
        ProduceRequestData.TopicProduceData t = new ProduceRequestData.TopicProduceData()
                .setPartitionData(new ArrayList<>(List.of(new ProduceRequestData.PartitionProduceData().setIndex(0)
                        .setRecords(MemoryRecords.withRecords(compression, records)))));
        if (topic != null) {
            t.setName(topic);
        } else {
            t.setTopicId(id);
        }
        topics.add(t);
        return new ProduceRequestData().setAcks((short) -1).setTimeoutMs(30_000).setTopicData(topics);
    }

    private static MemoryRecords encrypted(String topic, Compression compression, String... values) throws Exception {
        SimpleRecord[] records = new SimpleRecord[values.length];
        for (int i = 0; i < values.length; i++) {
            ByteBuffer env = CIPHER.encrypt(topic, ByteBuffer.wrap(values[i].getBytes(StandardCharsets.UTF_8)));
            byte[] bytes = new byte[env.remaining()];
            env.get(bytes);
            records[i] = new SimpleRecord(null, bytes);
        }
        return MemoryRecords.withRecords(compression, records);
    }

    /** @param endpoints KIP-951 node endpoints, which only Fetch v16+ carries */
    private static FetchResponseData fetchResponse(String topic, Uuid id, MemoryRecords records, boolean endpoints) {
        FetchResponseData.FetchableTopicResponse t = new FetchResponseData.FetchableTopicResponse()
                .setPartitions(new ArrayList<>(List.of(new FetchResponseData.PartitionData().setPartitionIndex(0)
                        .setHighWatermark(10).setRecords(records))));
        if (topic != null) {
            t.setTopic(topic);
        } else {
            t.setTopicId(id);
        }
        FetchResponseData r = new FetchResponseData().setResponses(new ArrayList<>(List.of(t)));
        if (endpoints) {
            r.nodeEndpoints().add(new FetchResponseData.NodeEndpoint().setNodeId(1).setHost("10.0.0.1").setPort(9092));
        }
        return r;
    }

    private static MetadataResponseData metadata(Uuid id, String topic, int nodeId) {
        MetadataResponseData m = new MetadataResponseData();
        m.brokers().add(new MetadataResponseData.MetadataResponseBroker().setNodeId(nodeId).setHost("10.1.2.3").setPort(9092));
        m.topics().add(new MetadataResponseData.MetadataResponseTopic().setName(topic).setTopicId(id));
        return m;
    }

    private static ApiVersionsResponseData apiVersionsResponse() {
        ApiVersionsResponseData r = new ApiVersionsResponseData();
        for (ApiKeys api : List.of(ApiKeys.PRODUCE, ApiKeys.FETCH, ApiKeys.METADATA, ApiKeys.API_VERSIONS, ApiKeys.HEARTBEAT)) {
            r.apiKeys().add(new ApiVersionsResponseData.ApiVersion().setApiKey(api.id)
                    .setMinVersion(api.oldestVersion()).setMaxVersion((short) (api.latestVersion(true) + 3)));
        }
        return r;
    }

    private static ProduceResponseData produceResponse() {
        ProduceResponseData r = new ProduceResponseData();
        r.nodeEndpoints().add(new ProduceResponseData.NodeEndpoint().setNodeId(1).setHost("10.0.0.1").setPort(9092));
        return r;
    }

    private static DescribeClusterResponseData describeCluster() {
        DescribeClusterResponseData r = new DescribeClusterResponseData().setClusterId("c").setControllerId(1);
        r.brokers().add(new DescribeClusterResponseData.DescribeClusterBroker().setBrokerId(1).setHost("10.0.0.1").setPort(9092));
        return r;
    }
}
