package io.meshcrypt.filter.kafka;

import static io.meshcrypt.filter.kafka.KafkaFrames.decodeRequest;
import static io.meshcrypt.filter.kafka.KafkaFrames.decodeResponse;
import static io.meshcrypt.filter.kafka.KafkaFrames.records;
import static io.meshcrypt.filter.kafka.KafkaFrames.requestFrame;
import static io.meshcrypt.filter.kafka.KafkaFrames.responseFrame;
import static io.meshcrypt.filter.kafka.KafkaFrames.utf8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.crypto.ValueCipher;
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
import java.security.GeneralSecurityException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.message.ApiVersionsResponseData;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.message.HeartbeatRequestData;
import org.apache.kafka.common.message.MetadataResponseData;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.message.ShareFetchResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Issue 11 at the connection level: a hostile broker or client can neither steer plaintext to the broker nor slip
 * bytes past the filter that it did not check; each attack closes only the connection that carried it.
 */
class KafkaProtocolGuardTest {
    private static final short PRODUCE_V = 12;
    private static final short FETCH_V = 12;
    private static final short METADATA_V = 12;
    private static final short HEARTBEAT_V = 4;
    private static final short API_VERSIONS_V = 3;
    private static final String TLS = "the client speaks TLS to the sidecar; terminate or originate TLS in Envoy instead";

    @TempDir
    Path dir;
    private ValueCipherV1 recordCipher;
    private final AtomicInteger encryptions = new AtomicInteger();
    private KafkaProxy proxy;
    private ConnectionHandler connection;
    private int correlation;

    @BeforeEach
    void setUp() throws Exception {
        Path keyset = dir.resolve("keyset.json");
        Keysets.create(keyset);
        recordCipher = ValueCipherV1.fromKeysetFile(keyset);
        proxy = proxy(TestLimits.kafka());
        connection = proxy.open();
    }

    /** Encrypts topics secret*, passes the others: the policy a broker would like to trick. */
    private KafkaProxy proxy(KafkaProxy.Limits limits) {
        ValueCipher counting = new ValueCipher() {
            @Override
            public ByteBuffer encrypt(String topic, ByteBuffer plaintext) throws GeneralSecurityException {
                encryptions.incrementAndGet();
                return recordCipher.encrypt(topic, plaintext);
            }

            @Override
            public ByteBuffer decrypt(String topic, ByteBuffer envelope) throws GeneralSecurityException {
                return recordCipher.decrypt(topic, envelope);
            }
        };
        return new KafkaProxy(EncryptionPolicy.of(List.of("secret*"), EncryptionPolicy.Unmatched.PASSTHROUGH), counting,
                null, new BrokerAddresses(Map.of(1, new InetSocketAddress("127.0.0.1", 19093))), limits);
    }

    // ---- defect 1: a broker cannot steer Produce to plaintext through topic ids ----

    @Test
    void givenMetadataMappingOneIdToTwoNames_whenTheSecondArrives_thenThatConnectionIsClosedNamingBothAndTheIdIsPoisoned()
            throws Exception {
        Uuid id = Uuid.randomUuid();
        answerMetadata(connection, metadata(id, "secret"));
        int corr = send(connection, ApiKeys.METADATA, METADATA_V, ApiKeys.METADATA.messageType.newRequest());
        byte[] lie = responseFrame(corr, ApiKeys.METADATA, METADATA_V, metadata(id, "public"));

        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> connection.onWrite(ByteString.copyFrom(lie), false));

        assertEquals("Metadata response maps topic id " + id + " to \"public\" but an earlier one mapped it to \"secret\""
                + " (Kafka never reuses topic ids: the broker is lying or broken)", e.getMessage());
        assertNull(proxy.topicNames().nameOf(id));
    }

    @Test
    void givenConflictingMetadata_whenAClientSendsProduceV13ToThatId_thenNothingReachesTheBroker() throws Exception {
        Uuid id = Uuid.randomUuid();
        ConnectionHandler admin = proxy.open();
        answerMetadata(admin, metadata(id, "secret"));
        try {
            answerMetadata(admin, metadata(id, "public"));
        } catch (KafkaFrameException expected) {
            // the conflict closes that connection; what matters is the producer's connection below
        }
        byte[] produce = requestFrame(++correlation, ApiKeys.PRODUCE, (short) 13, produce(null, id, (short) -1, "card 4111"));

        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> connection.onRead(ByteString.copyFrom(produce), false));

        assertTrue(e.getMessage().contains("PRODUCE v13 is outside v3..v12"), e.getMessage());
        assertEquals(0, encryptions.get());
    }

    @Test
    void givenPoisonedTopicId_whenAShareFetchResponseCarriesIt_thenThePartitionIsUnknownTopicIdWithNoRecords() throws Exception {
        Uuid id = Uuid.randomUuid();
        answerMetadata(proxy.open(), metadata(id, "secret"));
        assertThrows(KafkaFrameException.class, () -> answerMetadata(proxy.open(), metadata(id, "public")));
        int corr = send(connection, ApiKeys.SHARE_FETCH, (short) 1, ApiKeys.SHARE_FETCH.messageType.newRequest());
        ShareFetchResponseData.ShareFetchableTopicResponse t = new ShareFetchResponseData.ShareFetchableTopicResponse().setTopicId(id);
        t.partitions().add(new ShareFetchResponseData.PartitionData().setPartitionIndex(0).setRecords(encrypted("secret", "v")));
        ShareFetchResponseData body = new ShareFetchResponseData();
        body.responses().add(t);

        ShareFetchResponseData seen = (ShareFetchResponseData) decodeResponse(connection.onWrite(ByteString.copyFrom(
                responseFrame(corr, ApiKeys.SHARE_FETCH, (short) 1, body)), false), ApiKeys.SHARE_FETCH, (short) 1);

        ShareFetchResponseData.PartitionData p = seen.responses().iterator().next().partitions().iterator().next();
        assertEquals(Errors.UNKNOWN_TOPIC_ID.code(), p.errorCode());
        assertEquals(0, ((MemoryRecords) p.records()).sizeInBytes());
    }

    @Test
    void givenBrokerOffersProduceAndFetchOnlyFromV13_whenApiVersionsIsForwarded_thenBothAreRemoved() throws Exception {
        ApiVersionsResponseData versions = apiVersions(
                api(ApiKeys.PRODUCE, 13, 13), api(ApiKeys.FETCH, 13, 18), api(ApiKeys.METADATA, 0, 13));

        ApiVersionsResponseData seen = answerApiVersions(versions);

        assertNull(seen.apiKeys().find(ApiKeys.PRODUCE.id));
        assertNull(seen.apiKeys().find(ApiKeys.FETCH.id));
        assertEquals(13, seen.apiKeys().find(ApiKeys.METADATA.id).maxVersion());
    }

    @Test
    void givenBrokerOffersFetch4To18_whenApiVersionsIsForwarded_thenFetchIsOffered4To12() throws Exception {
        ApiVersionsResponseData seen = answerApiVersions(apiVersions(api(ApiKeys.FETCH, 0, 18)));

        assertEquals(4, seen.apiKeys().find(ApiKeys.FETCH.id).minVersion());
        assertEquals(12, seen.apiKeys().find(ApiKeys.FETCH.id).maxVersion());
    }

    @Test
    void givenAReplicaThatNeverSawMetadata_whenProduceV12NamesAnEncryptedTopic_thenItsValuesAreEncrypted() throws Exception {
        byte[] frame = requestFrame(++correlation, ApiKeys.PRODUCE, PRODUCE_V, produce("secret", null, (short) -1, "v"));

        ByteString out = proxy(TestLimits.kafka()).open().onRead(ByteString.copyFrom(frame), false);

        ProduceRequestData sent = (ProduceRequestData) decodeRequest(out, ApiKeys.PRODUCE);
        ByteBuffer value = records(sent.topicData().iterator().next().partitionData().get(0).records()).get(0).value();
        assertTrue(ValueEnvelope.isEnvelope(value));
        assertEquals("v", utf8(recordCipher.decrypt("secret", value)));
    }

    // ---- defect 2: only the Kafka the filter offered passes ----

    @Test
    void givenTlsClientHello_whenRead_thenTheConnectionIsClosedSayingTheClientSpeaksTls() throws Exception {
        byte[] hello = new byte[246];
        byte[] start = {0x16, 0x03, 0x01, 0x00, (byte) 0xf1, 0x01, 0x00, 0x00, (byte) 0xed, 0x03, 0x03};
        System.arraycopy(start, 0, hello, 0, start.length);

        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> connection.onRead(ByteString.copyFrom(hello), false));

        assertEquals(TLS + " (request frame refused: size field 369295616, api key -3839, version 0,"
                + " first bytes 16 03 01 00 f1 01 00 00 ed 03 03 00)", e.getMessage());
    }

    @Test
    void givenTlsClientHelloArrivingInSmallPieces_whenRead_thenNoByteIsForwardedBeforeTheConnectionCloses() throws Exception {
        byte[] start = {0x16, 0x03, 0x03, 0x01, 0x00, 0x01, 0x00, 0x00, (byte) 0xfc, 0x03, 0x03};

        ByteString out = connection.onRead(ByteString.copyFrom(start), false);

        assertEquals(0, out.size());
        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> connection.onRead(ByteString.copyFrom(new byte[1]), false));
        assertTrue(e.getMessage().startsWith(TLS), e.getMessage());
    }

    @Test
    void givenTlsClientHelloThatReadsAsAnOfferedFetch_whenTheRequestLimitIsHuge_thenItIsStillRefusedAsTls() throws Exception {
        // Record length 0x0600 and handshake length 0x0005fc read as api key 1 (FETCH) v5, size field 369296896.
        byte[] hello = {0x16, 0x03, 0x01, 0x06, 0x00, 0x01, 0x00, 0x05, (byte) 0xfc, 0x03, 0x03, 0x00};
        ConnectionHandler unlimited = proxy(new KafkaProxy.Limits(1 << 20, Integer.MAX_VALUE, 16, 16, 1 << 20, 100)).open();

        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> unlimited.onRead(ByteString.copyFrom(hello), false));

        assertTrue(e.getMessage().startsWith(TLS), e.getMessage());
    }

    @Test
    void givenHttpRequest_whenRead_thenTheConnectionIsClosedSayingTheClientSpeaksHttp() throws Exception {
        byte[] get = "GET /topics HTTP/1.1\r\nHost: kafka\r\n\r\n".getBytes(StandardCharsets.US_ASCII);

        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> connection.onRead(ByteString.copyFrom(get), false));

        assertTrue(e.getMessage().startsWith("the client speaks HTTP, not Kafka, to the sidecar (request line starts"
                + " \"GET /topics \")"), e.getMessage());
    }

    @Test
    void givenUnknownApiKey_whenRead_thenTheConnectionIsClosedNamingTheApiKeyVersionAndSize() throws Exception {
        byte[] frame = rawRequest(12, (short) 999, (short) 0, 7);

        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> connection.onRead(ByteString.copyFrom(frame), false));

        assertEquals("request frame refused: api key 999 is not a Kafka API this filter knows (size field 12, api key 999,"
                + " version 0, first bytes 00 00 00 0c 03 e7 00 00 00 00 00 07)", e.getMessage());
    }

    @Test
    void givenHeartbeatAtAVersionKafkaClientsDoesNotKnow_whenRead_thenTheConnectionIsClosed() throws Exception {
        byte[] frame = rawRequest(12, ApiKeys.HEARTBEAT.id, (short) 99, 7);

        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> connection.onRead(ByteString.copyFrom(frame), false));

        assertTrue(e.getMessage().contains("HEARTBEAT v99 is outside v0..v4 offered before ApiVersions"), e.getMessage());
    }

    @Test
    void givenAnApiKafkaRemoved_whenRead_thenTheConnectionIsClosed() throws Exception {
        byte[] frame = rawRequest(12, ApiKeys.LEADER_AND_ISR.id, (short) 0, 7);

        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> connection.onRead(ByteString.copyFrom(frame), false));

        assertTrue(e.getMessage().contains("LEADER_AND_ISR (api key 4) is not offered"), e.getMessage());
    }

    @Test
    void givenBrokerOffersHeartbeatUpToV2_whenTheClientSendsV3OrAnUnofferedApi_thenTheConnectionIsClosed() throws Exception {
        answerApiVersions(apiVersions(api(ApiKeys.API_VERSIONS, 0, 4), api(ApiKeys.HEARTBEAT, 0, 2)));
        byte[] v2 = requestFrame(++correlation, ApiKeys.HEARTBEAT, (short) 2, new HeartbeatRequestData().setGroupId("g"));
        assertArrayEquals(v2, connection.onRead(ByteString.copyFrom(v2), false).toByteArray());

        byte[] v3 = requestFrame(++correlation, ApiKeys.HEARTBEAT, (short) 3, new HeartbeatRequestData().setGroupId("g"));
        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> connection.onRead(ByteString.copyFrom(v3), false));

        assertTrue(e.getMessage().contains("HEARTBEAT v3 is outside v0..v2 offered in the ApiVersions response this connection"
                + " received"), e.getMessage());
        byte[] join = requestFrame(++correlation, ApiKeys.JOIN_GROUP, (short) 9, ApiKeys.JOIN_GROUP.messageType.newRequest());
        ConnectionHandler other = proxy.open();
        answerApiVersions(other, apiVersions(api(ApiKeys.API_VERSIONS, 0, 4), api(ApiKeys.HEARTBEAT, 0, 2)));
        KafkaFrameException j = assertThrows(KafkaFrameException.class, () -> other.onRead(ByteString.copyFrom(join), false));
        assertTrue(j.getMessage().contains("JOIN_GROUP (api key 11) is not offered in the ApiVersions response"), j.getMessage());
    }

    @Test
    void givenApiVersionsNamingAnApiKafkaClientsDoesNotKnow_whenForwarded_thenThatApiIsNotOffered() throws Exception {
        ApiVersionsResponseData versions = apiVersions(api(ApiKeys.HEARTBEAT, 0, 77));
        versions.apiKeys().add(new ApiVersionsResponseData.ApiVersion().setApiKey((short) 999).setMinVersion((short) 0)
                .setMaxVersion((short) 3));

        ApiVersionsResponseData seen = answerApiVersions(versions);

        assertNull(seen.apiKeys().find((short) 999));
        assertEquals(ApiKeys.HEARTBEAT.latestVersion(true), seen.apiKeys().find(ApiKeys.HEARTBEAT.id).maxVersion());
        assertEquals(1, seen.apiKeys().size());
    }

    @Test
    void givenApiVersionsRequestNewerThanKafkaClientsKnows_whenTheBrokerAnswersUnsupportedVersion_thenBothPassUnchanged()
            throws Exception {
        byte[] request = rawRequest(16, ApiKeys.API_VERSIONS.id, (short) 42, 5);
        assertArrayEquals(request, connection.onRead(ByteString.copyFrom(request), false).toByteArray());
        ApiVersionsResponseData refusal = apiVersions(api(ApiKeys.API_VERSIONS, 0, 4))
                .setErrorCode(Errors.UNSUPPORTED_VERSION.code());
        byte[] response = responseFrame(5, ApiKeys.API_VERSIONS, (short) 0, refusal);

        assertArrayEquals(response, connection.onWrite(ByteString.copyFrom(response), false).toByteArray());
    }

    @Test
    void givenApiVersionsResponseInAVersionTheFilterCannotRead_whenItArrives_thenTheConnectionIsClosed() throws Exception {
        connection.onRead(ByteString.copyFrom(rawRequest(16, ApiKeys.API_VERSIONS.id, (short) 42, 5)), false);
        byte[] response = responseFrame(5, ApiKeys.API_VERSIONS, (short) 0, apiVersions(api(ApiKeys.HEARTBEAT, 0, 4)));

        assertThrows(KafkaFrameException.class, () -> connection.onWrite(ByteString.copyFrom(response), false));
    }

    @Test
    void givenRequestAnnouncingOneByteMoreThanTheDefaultLimit_whenItsHeadArrives_thenTheConnectionIsClosedAtOnce() throws Exception {
        byte[] head = rawRequest(12, ApiKeys.HEARTBEAT.id, HEARTBEAT_V, 1);
        ByteBuffer.wrap(head).putInt(0, 104_857_601);

        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> connection.onRead(ByteString.copyFrom(head), false));

        assertTrue(e.getMessage().startsWith("request frame refused: it exceeds the limit of 104857600 bytes for request"
                + " frames (size field 104857601, api key 12, version 4"), e.getMessage());
    }

    @Test
    void givenConfiguredRequestLimit_whenAFrameIsExactlyThatLarge_thenItPassesAndOneByteMoreIsRefused() throws Exception {
        ConnectionHandler limited = proxy(new KafkaProxy.Limits(1 << 20, 64, 16, 16, 1 << 20, 100)).open();
        byte[] atLimit = rawRequest(64, ApiKeys.HEARTBEAT.id, HEARTBEAT_V, 1);
        byte[] overLimit = rawRequest(65, ApiKeys.HEARTBEAT.id, HEARTBEAT_V, 2);

        assertArrayEquals(atLimit, limited.onRead(ByteString.copyFrom(atLimit), false).toByteArray());
        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> limited.onRead(ByteString.copyFrom(overLimit), false));
        assertTrue(e.getMessage().contains("exceeds the limit of 64 bytes"), e.getMessage());
    }

    // ---- defect 9a: responses are matched in order, each exactly once ----

    @Test
    void givenTwoFetchesWithTheSameCorrelationId_whenBothAreAnswered_thenBothResponsesAreDecrypted() throws Exception {
        for (int i = 0; i < 2; i++) {
            connection.onRead(ByteString.copyFrom(requestFrame(7, ApiKeys.FETCH, FETCH_V, ApiKeys.FETCH.messageType.newRequest())), false);
        }

        for (String value : List.of("first", "second")) {
            byte[] response = responseFrame(7, ApiKeys.FETCH, FETCH_V, fetch("secret", encrypted("secret", value)));
            FetchResponseData seen = (FetchResponseData) decodeResponse(
                    connection.onWrite(ByteString.copyFrom(response), false), ApiKeys.FETCH, FETCH_V);
            assertEquals(value, utf8(records(seen.responses().get(0).partitions().get(0).records()).get(0).value()));
        }
    }

    @Test
    void givenTwoRequestsOutstanding_whenTheBrokerAnswersTheSecondFirst_thenTheConnectionIsClosed() throws Exception {
        int first = send(connection, ApiKeys.FETCH, FETCH_V, ApiKeys.FETCH.messageType.newRequest());
        int second = send(connection, ApiKeys.HEARTBEAT, HEARTBEAT_V, new HeartbeatRequestData());
        byte[] response = responseFrame(second, ApiKeys.FETCH, FETCH_V, fetch("secret", encrypted("secret", "v")));

        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> connection.onWrite(ByteString.copyFrom(response), false));

        assertEquals("broker answered correlation id " + second + ", expected " + first
                + " (the oldest outstanding FETCH request; Kafka answers in order)", e.getMessage());
    }

    @Test
    void givenProduceWithAcksZero_whenTheBrokerAnswersIt_thenTheConnectionIsClosed() throws Exception {
        int corr = ++correlation;
        connection.onRead(ByteString.copyFrom(requestFrame(corr, ApiKeys.PRODUCE, PRODUCE_V,
                produce("secret", null, (short) 0, "v"))), false);
        byte[] response = responseFrame(corr, ApiKeys.PRODUCE, PRODUCE_V, ApiKeys.PRODUCE.messageType.newResponse());

        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> connection.onWrite(ByteString.copyFrom(response), false));

        assertTrue(e.getMessage().contains("no request is outstanding"), e.getMessage());
    }

    @Test
    void givenProduceWithAcksZeroThenMetadata_whenMetadataIsAnswered_thenItIsRewritten() throws Exception {
        connection.onRead(ByteString.copyFrom(requestFrame(++correlation, ApiKeys.PRODUCE, PRODUCE_V,
                produce("secret", null, (short) 0, "v"))), false);
        int corr = send(connection, ApiKeys.METADATA, METADATA_V, ApiKeys.METADATA.messageType.newRequest());

        MetadataResponseData seen = (MetadataResponseData) decodeResponse(connection.onWrite(ByteString.copyFrom(
                responseFrame(corr, ApiKeys.METADATA, METADATA_V, metadata(Uuid.randomUuid(), "secret"))), false),
                ApiKeys.METADATA, METADATA_V);

        assertEquals(19093, seen.brokers().iterator().next().port());
    }

    @Test
    void givenPassThroughResponsesAroundADecodedOne_whenAnsweredInOrder_thenTheyPassByteForByteAndTheFetchIsDecrypted()
            throws Exception {
        int hb1 = send(connection, ApiKeys.HEARTBEAT, HEARTBEAT_V, new HeartbeatRequestData());
        int fetch = send(connection, ApiKeys.FETCH, FETCH_V, ApiKeys.FETCH.messageType.newRequest());
        int hb2 = send(connection, ApiKeys.HEARTBEAT, HEARTBEAT_V, new HeartbeatRequestData());
        byte[] r1 = responseFrame(hb1, ApiKeys.HEARTBEAT, HEARTBEAT_V, ApiKeys.HEARTBEAT.messageType.newResponse());
        byte[] r2 = responseFrame(fetch, ApiKeys.FETCH, FETCH_V, fetch("secret", encrypted("secret", "v")));
        byte[] r3 = responseFrame(hb2, ApiKeys.HEARTBEAT, HEARTBEAT_V, ApiKeys.HEARTBEAT.messageType.newResponse());
        byte[] all = ByteBuffer.allocate(r1.length + r2.length + r3.length).put(r1).put(r2).put(r3).array();

        ByteString out = connection.onWrite(ByteString.copyFrom(all), false);

        assertArrayEquals(r1, out.substring(0, r1.length).toByteArray());
        assertArrayEquals(r3, out.substring(out.size() - r3.length).toByteArray());
        FetchResponseData seen = (FetchResponseData) decodeResponse(out.substring(r1.length, out.size() - r3.length),
                ApiKeys.FETCH, FETCH_V);
        assertEquals("v", utf8(records(seen.responses().get(0).partitions().get(0).records()).get(0).value()));
    }

    @Test
    void givenInFlightLimitOfTwo_whenAThirdRequestIsSent_thenTheConnectionIsClosedButAnAnswerFreesASlot() throws Exception {
        ConnectionHandler limited = proxy(new KafkaProxy.Limits(1 << 20, 1 << 20, 2, 16, 1 << 20, 100)).open();
        int first = send(limited, ApiKeys.HEARTBEAT, HEARTBEAT_V, new HeartbeatRequestData());
        send(limited, ApiKeys.HEARTBEAT, HEARTBEAT_V, new HeartbeatRequestData());
        limited.onWrite(ByteString.copyFrom(responseFrame(first, ApiKeys.HEARTBEAT, HEARTBEAT_V,
                ApiKeys.HEARTBEAT.messageType.newResponse())), false);
        send(limited, ApiKeys.HEARTBEAT, HEARTBEAT_V, new HeartbeatRequestData());

        KafkaFrameException e = assertThrows(KafkaFrameException.class,
                () -> send(limited, ApiKeys.HEARTBEAT, HEARTBEAT_V, new HeartbeatRequestData()));

        assertEquals("more than 2 requests in flight on one connection", e.getMessage());
    }

    @Test
    void givenManyRequestsInFlight_whenAnsweredInOrder_thenEachResponseMatchesItsRequest() throws Exception {
        List<Integer> sent = new ArrayList<>();
        for (int i = 0; i < 100; i++) {
            sent.add(send(connection, ApiKeys.HEARTBEAT, HEARTBEAT_V, new HeartbeatRequestData()));
        }
        for (int i = 0; i < 100; i++) {
            byte[] r = responseFrame(sent.get(i), ApiKeys.HEARTBEAT, HEARTBEAT_V, ApiKeys.HEARTBEAT.messageType.newResponse());
            assertArrayEquals(r, connection.onWrite(ByteString.copyFrom(r), false).toByteArray());
            if (i % 3 == 0) {
                sent.add(send(connection, ApiKeys.HEARTBEAT, HEARTBEAT_V, new HeartbeatRequestData()));
            }
        }
        assertThrows(KafkaFrameException.class, () -> connection.onWrite(ByteString.copyFrom(responseFrame(
                sent.get(sent.size() - 1), ApiKeys.HEARTBEAT, HEARTBEAT_V, ApiKeys.HEARTBEAT.messageType.newResponse())), false));
    }

    // ---- defect 5 (part): Produce topic names are checked as Kafka does, before any policy or key work ----

    @ParameterizedTest
    @ValueSource(strings = {".", "..", "secret orders", "secret/orders", "sécret", "secret\n", "secret\u0000"})
    void givenProduceToAnIllegalTopicName_whenRead_thenTheConnectionIsClosed(String name) {
        byte[] frame = requestFrame(++correlation, ApiKeys.PRODUCE, PRODUCE_V, produce(name, null, (short) -1, "v"));

        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> connection.onRead(ByteString.copyFrom(frame), false));

        assertTrue(e.getMessage().contains("which is not a legal Kafka topic name"), e.getMessage());
        assertEquals(0, encryptions.get());
    }

    @Test
    void givenProduceToATopicName250Long_whenRead_thenTheConnectionIsClosedAnd249Passes() throws Exception {
        byte[] tooLong = requestFrame(++correlation, ApiKeys.PRODUCE, PRODUCE_V, produce("secret" + "x".repeat(244), null, (short) -1, "v"));
        byte[] longest = requestFrame(++correlation, ApiKeys.PRODUCE, PRODUCE_V, produce("secret" + "x".repeat(243), null, (short) -1, "v"));

        ConnectionHandler other = proxy.open();
        ProduceRequestData sent = (ProduceRequestData) decodeRequest(other.onRead(ByteString.copyFrom(longest), false), ApiKeys.PRODUCE);
        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> connection.onRead(ByteString.copyFrom(tooLong), false));

        assertTrue(e.getMessage().contains("(250 characters)"), e.getMessage());
        assertTrue(ValueEnvelope.isEnvelope(records(sent.topicData().iterator().next().partitionData().get(0).records()).get(0).value()));
    }

    @Test
    void givenProduceNamingALegalTopicThenAnIllegalOne_whenRead_thenNoValueIsEncryptedBeforeTheConnectionCloses() throws Exception {
        ProduceRequestData body = produce("secret-orders", null, (short) -1, "v");
        body.topicData().add(new ProduceRequestData.TopicProduceData().setName("secret orders")
                .setPartitionData(new ArrayList<>(List.of(new ProduceRequestData.PartitionProduceData().setIndex(0)
                        .setRecords(MemoryRecords.withRecords(Compression.NONE, new SimpleRecord("w".getBytes(StandardCharsets.UTF_8))))))));
        byte[] frame = requestFrame(++correlation, ApiKeys.PRODUCE, PRODUCE_V, body);

        assertThrows(KafkaFrameException.class, () -> connection.onRead(ByteString.copyFrom(frame), false));

        assertEquals(0, encryptions.get());
    }

    // ---- limits ----

    @Test
    void givenANonPositiveLimit_whenLimitsAreBuilt_thenTheyAreRefused() throws Exception {
        assertThrows(IllegalArgumentException.class, () -> new KafkaProxy.Limits(1, 0, 1, 1, 1 << 20, 100));
        assertThrows(IllegalArgumentException.class, () -> new KafkaProxy.Limits(1, 1, 0, 1, 1 << 20, 100));
        assertThrows(IllegalArgumentException.class, () -> new KafkaProxy.Limits(1, 1, 1, -1, 1 << 20, 100));
    }

    // ---- helpers ----

    private int send(ConnectionHandler on, ApiKeys api, short version, ApiMessage body) throws Exception {
        int corr = ++correlation;
        on.onRead(ByteString.copyFrom(requestFrame(corr, api, version, body)), false);
        return corr;
    }

    private void answerMetadata(ConnectionHandler on, MetadataResponseData response) throws Exception {
        int corr = send(on, ApiKeys.METADATA, METADATA_V, ApiKeys.METADATA.messageType.newRequest());
        on.onWrite(ByteString.copyFrom(responseFrame(corr, ApiKeys.METADATA, METADATA_V, response)), false);
    }

    private ApiVersionsResponseData answerApiVersions(ApiVersionsResponseData response) throws Exception {
        return answerApiVersions(connection, response);
    }

    private ApiVersionsResponseData answerApiVersions(ConnectionHandler on, ApiVersionsResponseData response) throws Exception {
        int corr = send(on, ApiKeys.API_VERSIONS, API_VERSIONS_V, ApiKeys.API_VERSIONS.messageType.newRequest());
        ByteString out = on.onWrite(ByteString.copyFrom(responseFrame(corr, ApiKeys.API_VERSIONS, API_VERSIONS_V, response)), false);
        return (ApiVersionsResponseData) decodeResponse(out, ApiKeys.API_VERSIONS, API_VERSIONS_V);
    }

    private static ApiVersionsResponseData.ApiVersion api(ApiKeys api, int min, int max) {
        return new ApiVersionsResponseData.ApiVersion().setApiKey(api.id).setMinVersion((short) min).setMaxVersion((short) max);
    }

    private static ApiVersionsResponseData apiVersions(ApiVersionsResponseData.ApiVersion... apis) {
        ApiVersionsResponseData r = new ApiVersionsResponseData();
        for (ApiVersionsResponseData.ApiVersion a : apis) {
            r.apiKeys().add(a);
        }
        return r;
    }

    /** A request frame with a v1 header (no client id) and zero bytes as body: enough for pass-through checks. */
    private static byte[] rawRequest(int size, short apiKey, short version, int correlationId) {
        return ByteBuffer.allocate(4 + size).putInt(size).putShort(apiKey).putShort(version).putInt(correlationId).array();
    }

    private static MetadataResponseData metadata(Uuid id, String topic) {
        MetadataResponseData m = new MetadataResponseData();
        m.brokers().add(new MetadataResponseData.MetadataResponseBroker().setNodeId(1).setHost("10.1.2.3").setPort(9092));
        m.topics().add(new MetadataResponseData.MetadataResponseTopic().setName(topic).setTopicId(id));
        return m;
    }

    private static ProduceRequestData produce(String topic, Uuid id, short acks, String value) {
        ProduceRequestData.TopicProduceData t = new ProduceRequestData.TopicProduceData()
                .setPartitionData(new ArrayList<>(List.of(new ProduceRequestData.PartitionProduceData().setIndex(0)
                        .setRecords(MemoryRecords.withRecords(Compression.NONE,
                                new SimpleRecord(value.getBytes(StandardCharsets.UTF_8)))))));
        if (topic != null) {
            t.setName(topic);
        } else {
            t.setTopicId(id);
        }
        ProduceRequestData.TopicProduceDataCollection topics = new ProduceRequestData.TopicProduceDataCollection();
        topics.add(t);
        return new ProduceRequestData().setAcks(acks).setTimeoutMs(30_000).setTopicData(topics);
    }

    private MemoryRecords encrypted(String topic, String value) throws Exception {
        ByteBuffer env = recordCipher.encrypt(topic, ByteBuffer.wrap(value.getBytes(StandardCharsets.UTF_8)));
        byte[] bytes = new byte[env.remaining()];
        env.get(bytes);
        return MemoryRecords.withRecords(Compression.NONE, new SimpleRecord(null, bytes));
    }

    private static FetchResponseData fetch(String topic, MemoryRecords records) {
        return new FetchResponseData().setResponses(new ArrayList<>(List.of(new FetchResponseData.FetchableTopicResponse()
                .setTopic(topic).setPartitions(new ArrayList<>(List.of(new FetchResponseData.PartitionData()
                        .setPartitionIndex(0).setHighWatermark(10).setRecords(records)))))));
    }
}
