package io.meshcrypt.filter.kafka;

import static io.meshcrypt.filter.kafka.KafkaFrames.decodeRequest;
import static io.meshcrypt.filter.kafka.KafkaFrames.decodeResponse;
import static io.meshcrypt.filter.kafka.KafkaFrames.records;
import static io.meshcrypt.filter.kafka.KafkaFrames.requestFrame;
import static io.meshcrypt.filter.kafka.KafkaFrames.responseFrame;
import static io.meshcrypt.filter.kafka.KafkaFrames.utf8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.crypto.ValueEnvelope;
import io.meshcrypt.filter.framing.KafkaFrameException;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.transport.ConnectionHandler;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.message.ApiVersionsResponseData;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.message.HeartbeatRequestData;
import org.apache.kafka.common.message.HeartbeatResponseData;
import org.apache.kafka.common.message.MetadataResponseData;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.message.ProduceResponseData;
import org.apache.kafka.common.message.ShareFetchResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.Record;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The whole per-connection pipeline at byte level: framing, codec, policy, batch rewriting and crypto. */
class KafkaConnectionTest {
    private static final short PRODUCE_V = 12;
    private static final short PRODUCE_V_IDS = 13;
    private static final short FETCH_V = 12;
    private static final short FETCH_V_IDS = 17;
    private static final short METADATA_V = 12;
    private static final short SHARE_FETCH_V = 1;

    @TempDir
    Path dir;
    private ValueCipherV1 cipher;
    private KafkaProxy proxy;
    private ConnectionHandler connection;
    private int correlation;

    @BeforeEach
    void setUp() throws Exception {
        Path keyset = dir.resolve("keyset.json");
        Keysets.create(keyset);
        cipher = ValueCipherV1.fromKeysetFile(keyset);
        proxy = new KafkaProxy(EncryptionPolicy.encryptAll(), cipher, null,
                new BrokerAddresses(Map.of(1, new InetSocketAddress("127.0.0.1", 19093))), TestLimits.kafka(1 << 20));
        connection = proxy.open();
    }

    @Test
    void givenProduceSplitIntoOneByteChunks_whenForwarded_thenEveryValueIsAnEnvelopeBoundToItsTopic() throws Exception {
        byte[] frame = request(ApiKeys.PRODUCE, PRODUCE_V, produce("orders", null, "alpha", "beta"));

        ByteString out = feedInChunks(frame, 1, true);

        ProduceRequestData sent = (ProduceRequestData) decodeRequest(out, ApiKeys.PRODUCE);
        List<Record> records = records(sent.topicData().iterator().next().partitionData().get(0).records());
        assertEquals(2, records.size());
        for (int i = 0; i < 2; i++) {
            ByteBuffer value = records.get(i).value();
            assertTrue(ValueEnvelope.isEnvelope(value));
            assertEquals(List.of("alpha", "beta").get(i), utf8(cipher.decrypt("orders", value)));
        }
    }

    @Test
    void givenHeartbeatRequest_whenForwarded_thenBytesAreUnchanged() throws Exception {
        byte[] frame = request(ApiKeys.HEARTBEAT, (short) 4, new HeartbeatRequestData().setGroupId("g").setMemberId("m"));

        ByteString out = feedInChunks(frame, 3, true);

        assertArrayEquals(frame, out.toByteArray());
    }

    @Test
    void givenMetadataResponse_whenForwarded_thenBrokerAddressIsTheEnvoyListenerAndTopicIdIsLearnt() throws Exception {
        Uuid id = Uuid.randomUuid();
        int corr = trackRequest(ApiKeys.METADATA, METADATA_V);
        MetadataResponseData metadata = metadata(id, "orders", 1);

        ByteString out = connection.onWrite(ByteString.copyFrom(responseFrame(corr, ApiKeys.METADATA, METADATA_V, metadata)), false);

        MetadataResponseData seen = (MetadataResponseData) decodeResponse(out, ApiKeys.METADATA, METADATA_V);
        MetadataResponseData.MetadataResponseBroker broker = seen.brokers().iterator().next();
        assertEquals("127.0.0.1", broker.host());
        assertEquals(19093, broker.port());
        assertEquals("orders", proxy.topicNames().nameOf(id));
    }

    @Test
    void givenStreamHeaderWithItsListenerMap_whenMetadataIsForwarded_thenTheBrokerAddressIsThatListenersNotTheConfigs() throws Exception {
        ConnectionHandler sidecarB = proxy.open(name -> name.equals(KafkaProxy.BROKER_LISTENERS_HEADER) ? "1=127.0.0.1:29093" : null);
        int corr = trackRequest(sidecarB, ApiKeys.METADATA, METADATA_V);

        ByteString out = sidecarB.onWrite(ByteString.copyFrom(
                responseFrame(corr, ApiKeys.METADATA, METADATA_V, metadata(Uuid.randomUuid(), "orders", 1))), false);

        MetadataResponseData.MetadataResponseBroker broker =
                ((MetadataResponseData) decodeResponse(out, ApiKeys.METADATA, METADATA_V)).brokers().iterator().next();
        assertEquals("127.0.0.1:29093", broker.host() + ":" + broker.port());
    }

    @Test
    void givenStreamHeaderNone_whenMetadataIsForwarded_thenTheBrokersRealAddressPasses() throws Exception {
        ConnectionHandler transparent = proxy.open(name -> name.equals(KafkaProxy.BROKER_LISTENERS_HEADER) ? "none" : null);
        int corr = trackRequest(transparent, ApiKeys.METADATA, METADATA_V);
        byte[] frame = responseFrame(corr, ApiKeys.METADATA, METADATA_V, metadata(Uuid.randomUuid(), "orders", 1));

        ByteString out = transparent.onWrite(ByteString.copyFrom(frame), false);

        MetadataResponseData.MetadataResponseBroker broker =
                ((MetadataResponseData) decodeResponse(out, ApiKeys.METADATA, METADATA_V)).brokers().iterator().next();
        assertEquals("10.1.2.3:9092", broker.host() + ":" + broker.port());
    }

    @Test
    void givenMalformedListenerMapHeader_whenTheStreamOpens_thenItIsRefused() throws Exception {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> proxy.open(name -> name.equals(KafkaProxy.BROKER_LISTENERS_HEADER) ? "1=127.0.0.1" : null));
        assertTrue(e.getMessage().contains("\"1=127.0.0.1\""), e.getMessage());
    }

    @Test
    void givenMetadataNamingAnUnmappedBroker_whenForwarded_thenTheConnectionFails() throws Exception {
        int corr = trackRequest(ApiKeys.METADATA, METADATA_V);
        byte[] frame = responseFrame(corr, ApiKeys.METADATA, METADATA_V, metadata(Uuid.randomUuid(), "orders", 7));

        KafkaFrameException e = assertThrows(KafkaFrameException.class,
                () -> connection.onWrite(ByteString.copyFrom(frame), false));
        assertTrue(e.getMessage().contains("broker node 7"), e.getMessage());
    }

    @Test
    void givenProduceV13ByAKnownTopicId_whenSent_thenTheConnectionIsClosedBeforeAnyByteIsForwarded() throws Exception {
        Uuid id = Uuid.randomUuid();
        proxy.topicNames().learn(id, "orders");
        byte[] frame = request(ApiKeys.PRODUCE, PRODUCE_V_IDS, produce(null, id, "secret"));

        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> connection.onRead(ByteString.copyFrom(frame), false));

        assertTrue(e.getMessage().contains("PRODUCE v13 is outside v3..v12"), e.getMessage());
        assertTrue(e.getMessage().contains("Produce and Fetch stop at v12"), e.getMessage());
    }

    @Test
    void givenProduceV10ResponseWithNodeEndpoints_whenForwarded_thenTheyNameTheEnvoyListener() throws Exception {
        int corr = ++correlation;
        connection.onRead(ByteString.copyFrom(requestFrame(corr, ApiKeys.PRODUCE, PRODUCE_V,
                new ProduceRequestData().setAcks((short) 1))), false);
        ProduceResponseData response = new ProduceResponseData();
        response.nodeEndpoints().add(new ProduceResponseData.NodeEndpoint().setNodeId(1).setHost("10.0.0.1").setPort(9092));

        ByteString out = connection.onWrite(ByteString.copyFrom(responseFrame(corr, ApiKeys.PRODUCE, PRODUCE_V, response)), false);

        ProduceResponseData.NodeEndpoint endpoint = ((ProduceResponseData) decodeResponse(out, ApiKeys.PRODUCE, PRODUCE_V))
                .nodeEndpoints().iterator().next();
        assertEquals("127.0.0.1:19093", endpoint.host() + ":" + endpoint.port());
    }

    @Test
    void givenProduceWithAcksZero_whenTheBrokerAnswersIt_thenTheConnectionIsClosed() throws Exception {
        int corr = ++correlation;
        connection.onRead(ByteString.copyFrom(requestFrame(corr, ApiKeys.PRODUCE, PRODUCE_V,
                new ProduceRequestData().setAcks((short) 0))), false);
        byte[] answer = responseFrame(corr, ApiKeys.PRODUCE, PRODUCE_V, new ProduceResponseData());

        KafkaFrameException e = assertThrows(KafkaFrameException.class,
                () -> connection.onWrite(ByteString.copyFrom(answer), false));

        assertTrue(e.getMessage().contains("while no request is outstanding"), e.getMessage());
    }

    @Test
    void givenFetchResponseWithEnvelopes_whenForwarded_thenValuesAreDecrypted() throws Exception {
        int corr = trackRequest(ApiKeys.FETCH, FETCH_V);
        byte[] frame = responseFrame(corr, ApiKeys.FETCH, FETCH_V, fetch("orders", null, encrypted("orders", "one", "two")));

        ByteString out = feedResponseInChunks(frame, 5);

        FetchResponseData.PartitionData p = fetchPartition(out, FETCH_V);
        assertEquals(Errors.NONE.code(), p.errorCode());
        List<Record> records = records(p.records());
        assertEquals(List.of("one", "two"), records.stream().map(r -> utf8(r.value())).toList());
    }

    @Test
    void givenShareFetchByTopicIdOfKnownTopic_whenForwarded_thenValuesAreDecrypted() throws Exception {
        Uuid id = Uuid.randomUuid();
        proxy.topicNames().learn(id, "orders");
        int corr = trackRequest(ApiKeys.SHARE_FETCH, SHARE_FETCH_V);
        byte[] frame = responseFrame(corr, ApiKeys.SHARE_FETCH, SHARE_FETCH_V, shareFetch(id, encrypted("orders", "one")));

        ShareFetchResponseData seen = (ShareFetchResponseData) decodeResponse(
                connection.onWrite(ByteString.copyFrom(frame), false), ApiKeys.SHARE_FETCH, SHARE_FETCH_V);

        ShareFetchResponseData.PartitionData p = seen.responses().iterator().next().partitions().iterator().next();
        assertEquals(Errors.NONE.code(), p.errorCode());
        assertEquals("one", utf8(records(p.records()).get(0).value()));
    }

    @Test
    void givenFetchV13_whenSent_thenTheConnectionIsClosed() throws Exception {
        byte[] frame = request(ApiKeys.FETCH, FETCH_V_IDS, ApiKeys.FETCH.messageType.newRequest());

        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> connection.onRead(ByteString.copyFrom(frame), false));

        assertTrue(e.getMessage().contains("FETCH v" + FETCH_V_IDS + " is outside v4..v12"), e.getMessage());
    }

    @Test
    void givenCiphertextOfAnotherTopic_whenFetched_thenThePartitionFailsWithCorruptMessage() throws Exception {
        int corr = trackRequest(ApiKeys.FETCH, FETCH_V);
        byte[] frame = responseFrame(corr, ApiKeys.FETCH, FETCH_V, fetch("copy", null, encrypted("orders", "one")));

        FetchResponseData.PartitionData p = fetchPartition(connection.onWrite(ByteString.copyFrom(frame), false), FETCH_V);

        assertEquals(Errors.CORRUPT_MESSAGE.code(), p.errorCode());
        assertEquals(0, ((MemoryRecords) p.records()).sizeInBytes());
    }

    @Test
    void givenPlaintextOnAnEncryptedTopic_whenFetched_thenThePartitionFailsWithCorruptMessage() throws Exception {
        int corr = trackRequest(ApiKeys.FETCH, FETCH_V);
        MemoryRecords plain = MemoryRecords.withRecords(Compression.NONE, new SimpleRecord("x".getBytes(StandardCharsets.UTF_8)));
        byte[] frame = responseFrame(corr, ApiKeys.FETCH, FETCH_V, fetch("orders", null, plain));

        FetchResponseData.PartitionData p = fetchPartition(connection.onWrite(ByteString.copyFrom(frame), false), FETCH_V);

        assertEquals(Errors.CORRUPT_MESSAGE.code(), p.errorCode());
    }

    @Test
    void givenApiVersionsResponse_whenForwarded_thenProduceIsCappedAtV12AndOthersAtWhatKafkaClientsKnows() throws Exception {
        int corr = trackRequest(ApiKeys.API_VERSIONS, (short) 3);
        ApiVersionsResponseData versions = new ApiVersionsResponseData();
        versions.apiKeys().add(new ApiVersionsResponseData.ApiVersion().setApiKey(ApiKeys.PRODUCE.id)
                .setMinVersion((short) 3).setMaxVersion((short) 99));
        versions.apiKeys().add(new ApiVersionsResponseData.ApiVersion().setApiKey(ApiKeys.HEARTBEAT.id)
                .setMinVersion((short) 0).setMaxVersion((short) 77));

        ByteString out = connection.onWrite(ByteString.copyFrom(
                responseFrame(corr, ApiKeys.API_VERSIONS, (short) 3, versions)), false);

        ApiVersionsResponseData seen = (ApiVersionsResponseData) decodeResponse(out, ApiKeys.API_VERSIONS, (short) 3);
        assertEquals(3, seen.apiKeys().find(ApiKeys.PRODUCE.id).minVersion());
        assertEquals(12, seen.apiKeys().find(ApiKeys.PRODUCE.id).maxVersion());
        assertEquals(0, seen.apiKeys().find(ApiKeys.HEARTBEAT.id).minVersion());
        assertEquals(ApiKeys.HEARTBEAT.latestVersion(true), seen.apiKeys().find(ApiKeys.HEARTBEAT.id).maxVersion());
    }

    @Test
    void givenNoRequestOutstanding_whenAResponseArrives_thenTheConnectionIsClosed() throws Exception {
        byte[] frame = responseFrame(4242, ApiKeys.METADATA, METADATA_V, metadata(Uuid.randomUuid(), "orders", 7));

        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> connection.onWrite(ByteString.copyFrom(frame), false));

        assertEquals("broker answered correlation id 4242 while no request is outstanding on this connection", e.getMessage());
    }

    @Test
    void givenRejectPolicy_whenProducingToAnUnmatchedTopic_thenTheConnectionFails() throws Exception {
        KafkaProxy strict = new KafkaProxy(EncryptionPolicy.of(List.of("orders*"), EncryptionPolicy.Unmatched.REJECT),
                cipher, null, new BrokerAddresses(Map.of()), TestLimits.kafka(1 << 20));
        byte[] frame = request(ApiKeys.PRODUCE, PRODUCE_V, produce("audit", null, "x"));

        assertThrows(KafkaFrameException.class, () -> strict.open().onRead(ByteString.copyFrom(frame), false));
    }

    @Test
    void givenPassthroughPolicy_whenProducingToAnUnmatchedTopic_thenBytesAreUnchanged() throws Exception {
        KafkaProxy lenient = new KafkaProxy(EncryptionPolicy.of(List.of("orders*"), EncryptionPolicy.Unmatched.PASSTHROUGH),
                cipher, null, new BrokerAddresses(Map.of()), TestLimits.kafka(1 << 20));
        byte[] frame = request(ApiKeys.PRODUCE, PRODUCE_V, produce("audit", null, "x"));

        assertArrayEquals(frame, lenient.open().onRead(ByteString.copyFrom(frame), false).toByteArray());
    }

    @Test
    void givenOpenConnection_whenThePolicyIsReplaced_thenTheNextProduceFollowsTheNewPolicy() throws Exception {
        KafkaProxy proxy = new KafkaProxy(EncryptionPolicy.of(List.of("orders*"), EncryptionPolicy.Unmatched.PASSTHROUGH),
                cipher, null, new BrokerAddresses(Map.of()), TestLimits.kafka(1 << 20));
        ConnectionHandler open = proxy.open();
        byte[] before = request(ApiKeys.PRODUCE, PRODUCE_V, produce("audit", null, "x"));
        assertArrayEquals(before, open.onRead(ByteString.copyFrom(before), false).toByteArray());

        proxy.policy(EncryptionPolicy.of(List.of("orders*", "audit"), EncryptionPolicy.Unmatched.PASSTHROUGH));

        byte[] after = request(ApiKeys.PRODUCE, PRODUCE_V, produce("audit", null, "x"));
        ProduceRequestData sent = (ProduceRequestData) decodeRequest(open.onRead(ByteString.copyFrom(after), false), ApiKeys.PRODUCE);
        ByteBuffer value = records(sent.topicData().iterator().next().partitionData().get(0).records()).get(0).value();
        assertTrue(ValueEnvelope.isEnvelope(value), "the value of audit is encrypted after the policy change");
        assertEquals("x", utf8(cipher.decrypt("audit", value)));
    }

    // ---- helpers ----

    private ByteString feedInChunks(byte[] frame, int chunk, boolean read) throws Exception {
        ByteString out = ByteString.EMPTY;
        for (int i = 0; i < frame.length; i += chunk) {
            ByteString part = ByteString.copyFrom(frame, i, Math.min(chunk, frame.length - i));
            out = out.concat(read ? connection.onRead(part, false) : connection.onWrite(part, false));
        }
        return out;
    }

    private ByteString feedResponseInChunks(byte[] frame, int chunk) throws Exception {
        return feedInChunks(frame, chunk, false);
    }

    /** Sends a request of {@code api} through the connection so its response will be recognised. */
    @Test
    void givenAHeartbeatExchangeInPieces_whenEachPieceIsForwarded_thenTheConnectionIsQuietOnlyBeforeAndAfterIt() throws Exception {
        byte[] request = request(ApiKeys.HEARTBEAT, (short) 4, new HeartbeatRequestData().setGroupId("g").setMemberId("m"));
        byte[] response = responseFrame(correlation, ApiKeys.HEARTBEAT, (short) 4, new HeartbeatResponseData());
        List<Boolean> quiet = new ArrayList<>();
        quiet.add(connection.isQuiet());

        connection.onRead(ByteString.copyFrom(request, 0, 6), false);
        quiet.add(connection.isQuiet());
        connection.onRead(ByteString.copyFrom(request, 6, request.length - 6), false);
        quiet.add(connection.isQuiet());
        // past the response's header, so the request is answered but the frame (passed through) is not complete
        connection.onWrite(ByteString.copyFrom(response, 0, response.length - 1), false);
        quiet.add(connection.isQuiet());
        connection.onWrite(ByteString.copyFrom(response, response.length - 1, 1), false);
        quiet.add(connection.isQuiet());

        assertEquals(List.of(true, false, false, false, true), quiet);
    }

    private int trackRequest(ApiKeys api, short version) throws Exception {
        return trackRequest(connection, api, version);
    }

    private int trackRequest(ConnectionHandler on, ApiKeys api, short version) throws Exception {
        int corr = ++correlation;
        ApiMessage body = api.messageType.newRequest();
        on.onRead(ByteString.copyFrom(requestFrame(corr, api, version, body)), false);
        return corr;
    }

    private byte[] request(ApiKeys api, short version, ApiMessage body) {
        return requestFrame(++correlation, api, version, body);
    }






    private static ProduceRequestData produce(String topic, Uuid id, String... values) {
        SimpleRecord[] records = new SimpleRecord[values.length];
        for (int i = 0; i < values.length; i++) {
            records[i] = new SimpleRecord(("k" + i).getBytes(StandardCharsets.UTF_8), values[i].getBytes(StandardCharsets.UTF_8));
        }
        ProduceRequestData.TopicProduceDataCollection topics = new ProduceRequestData.TopicProduceDataCollection();
        ProduceRequestData.TopicProduceData t = new ProduceRequestData.TopicProduceData()
                .setPartitionData(new ArrayList<>(List.of(new ProduceRequestData.PartitionProduceData().setIndex(0)
                        .setRecords(MemoryRecords.withRecords(Compression.gzip().build(), records)))));
        if (topic != null) {
            t.setName(topic);
        } else {
            t.setTopicId(id);
        }
        topics.add(t);
        return new ProduceRequestData().setAcks((short) -1).setTimeoutMs(30_000).setTopicData(topics);
    }

    private MemoryRecords encrypted(String topic, String... values) throws Exception {
        SimpleRecord[] records = new SimpleRecord[values.length];
        for (int i = 0; i < values.length; i++) {
            ByteBuffer env = cipher.encrypt(topic, ByteBuffer.wrap(values[i].getBytes(StandardCharsets.UTF_8)));
            byte[] bytes = new byte[env.remaining()];
            env.get(bytes);
            records[i] = new SimpleRecord(null, bytes);
        }
        return MemoryRecords.withRecords(Compression.NONE, records);
    }

    private static FetchResponseData fetch(String topic, Uuid id, MemoryRecords records) {
        FetchResponseData.FetchableTopicResponse t = new FetchResponseData.FetchableTopicResponse()
                .setPartitions(new ArrayList<>(List.of(new FetchResponseData.PartitionData().setPartitionIndex(0)
                        .setHighWatermark(10).setRecords(records))));
        if (topic != null) {
            t.setTopic(topic);
        } else {
            t.setTopicId(id);
        }
        return new FetchResponseData().setResponses(new ArrayList<>(List.of(t)));
    }

    private static ShareFetchResponseData shareFetch(Uuid id, MemoryRecords records) {
        ShareFetchResponseData.ShareFetchableTopicResponse t = new ShareFetchResponseData.ShareFetchableTopicResponse()
                .setTopicId(id);
        t.partitions().add(new ShareFetchResponseData.PartitionData().setPartitionIndex(0).setRecords(records));
        ShareFetchResponseData r = new ShareFetchResponseData();
        r.responses().add(t);
        return r;
    }

    private static FetchResponseData.PartitionData fetchPartition(ByteString out, short version) {
        FetchResponseData seen = (FetchResponseData) decodeResponse(out, ApiKeys.FETCH, version);
        return seen.responses().get(0).partitions().get(0);
    }

    private static MetadataResponseData metadata(Uuid id, String topic, int nodeId) {
        MetadataResponseData m = new MetadataResponseData();
        m.brokers().add(new MetadataResponseData.MetadataResponseBroker().setNodeId(nodeId).setHost("10.1.2.3").setPort(9092));
        m.topics().add(new MetadataResponseData.MetadataResponseTopic().setName(topic).setTopicId(id));
        return m;
    }


}
