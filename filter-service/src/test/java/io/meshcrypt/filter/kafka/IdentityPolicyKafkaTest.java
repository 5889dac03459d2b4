package io.meshcrypt.filter.kafka;

import static io.meshcrypt.filter.kafka.KafkaFrames.bytes;
import static io.meshcrypt.filter.kafka.KafkaFrames.decodeRequest;
import static io.meshcrypt.filter.kafka.KafkaFrames.decodeResponse;
import static io.meshcrypt.filter.kafka.KafkaFrames.records;
import static io.meshcrypt.filter.kafka.KafkaFrames.requestFrame;
import static io.meshcrypt.filter.kafka.KafkaFrames.responseFrame;
import static io.meshcrypt.filter.kafka.KafkaFrames.utf8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.audit.AccessAudit;
import io.meshcrypt.filter.audit.AuditTrail;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.crypto.ValueEnvelope;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.transport.ConnectionHandler;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.Identities;
import io.meshcrypt.meshconfig.policy.TopicRule;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.message.FetchRequestData;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.message.ProduceResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.Record;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Who reads plaintext and who may produce, by the workload identity of the stream, through the whole connection
 * pipeline: readers decrypt, others get the envelopes or TOPIC_AUTHORIZATION_FAILED, unlisted writers are refused
 * with TOPIC_AUTHORIZATION_FAILED and their records never reach the broker; each access is reported to the audit.
 */
class IdentityPolicyKafkaTest {
    private static final short PRODUCE_V = 12;
    private static final short FETCH_V = 12;
    private static final String BILLING = "spiffe://meshcrypt.local/sidecar/billing";
    private static final String SHOP = "spiffe://meshcrypt.local/sidecar/shop";
    private static final String OTHER = "spiffe://meshcrypt.local/sidecar/other";
    private static final JsonPointer NAME = JsonPointer.parse("/name");
    private static final JsonPointer SALARY = JsonPointer.parse("/salary");

    @TempDir
    Path dir;
    private ValueCipherV1 cipher;
    private KafkaProxy proxy;
    private final List<String> audited = new ArrayList<>();
    private int correlation;

    @BeforeEach
    void setUp() throws Exception {
        Keysets.create(dir.resolve("keyset.json"));
        cipher = ValueCipherV1.fromKeysetFile(dir.resolve("keyset.json"));
        EncryptionPolicy policy = EncryptionPolicy.ofRules(List.of(
                new TopicRule("payments", List.of(), false, Identities.of(List.of(BILLING)),
                        Identities.of(List.of(SHOP)), TopicRule.Others.CIPHERTEXT),
                new TopicRule("ledger", List.of(), false, Identities.of(List.of("spiffe://meshcrypt.local/sidecar/bill*")),
                        null, TopicRule.Others.DENY),
                new TopicRule("staff", List.of(NAME, SALARY), false, null, null, TopicRule.Others.CIPHERTEXT,
                        Map.of(SALARY, Identities.of(List.of(BILLING)))),
                TopicRule.wholeValue("*")), EncryptionPolicy.Unmatched.PASSTHROUGH);
        proxy = new KafkaProxy(policy, cipher, null, new BrokerAddresses(Map.of()), TestLimits.kafka(1 << 20));
        proxy.auditTo(identity -> new AccessAudit() {
            @Override
            public void access(String topic, Direction direction, Outcome outcome, int records, long bytes) {
                audited.add(identity + " " + direction + " " + topic + " " + outcome + " " + records);
            }

            @Override
            public void close() {
                audited.add(identity + " closed");
            }
        });
    }

    @Test
    void givenAReader_whenItFetches_thenItGetsPlaintext() throws Exception {
        List<Record> stored = envelopes("payments", "card 4111");

        FetchResponseData.PartitionData partition = fetch(proxy.open(BILLING), "payments", stored);

        assertEquals(Errors.NONE.code(), partition.errorCode());
        assertEquals("card 4111", utf8(records(partition.records()).getFirst().value()));
        assertEquals(List.of(BILLING + " FETCH payments ALLOWED 1"), audited);
    }

    @Test
    void givenAnotherIdentity_whenItFetchesATopicWhoseOthersGetCiphertext_thenTheEnvelopeComesUnchanged() throws Exception {
        List<Record> stored = envelopes("payments", "card 4111");

        FetchResponseData.PartitionData partition = fetch(proxy.open(OTHER), "payments", stored);

        assertEquals(Errors.NONE.code(), partition.errorCode());
        Record seen = records(partition.records()).getFirst();
        assertArrayEquals(bytes(stored.getFirst().value()), bytes(seen.value()));
        assertTrue(ValueEnvelope.isEnvelope(seen.value()));
        assertEquals(List.of(OTHER + " FETCH payments CIPHERTEXT 1"), audited);
    }

    @Test
    void givenAStreamWithoutIdentity_whenItFetches_thenItIsNotAReader() throws Exception {
        List<Record> stored = envelopes("payments", "card 4111");

        FetchResponseData.PartitionData partition = fetch(proxy.open(), "payments", stored);

        assertTrue(ValueEnvelope.isEnvelope(records(partition.records()).getFirst().value()));
    }

    @Test
    void givenAnotherIdentity_whenItFetchesATopicWhoseOthersAreDenied_thenTopicAuthorizationFailedAndNoRecords()
            throws Exception {
        List<Record> stored = envelopes("ledger", "debit 10");

        FetchResponseData.PartitionData partition = fetch(proxy.open(OTHER), "ledger", stored);

        assertEquals(Errors.TOPIC_AUTHORIZATION_FAILED.code(), partition.errorCode());
        assertEquals(0, ((MemoryRecords) partition.records()).sizeInBytes());
        assertEquals(List.of(OTHER + " FETCH ledger DENIED 1"), audited);
    }

    @Test
    void givenADeniedIdentity_whenItFetchesAnEmptyPartition_thenItIsToldAtOnce() throws Exception {
        FetchResponseData.PartitionData partition = fetch(proxy.open(OTHER), "ledger", List.of());

        assertEquals(Errors.TOPIC_AUTHORIZATION_FAILED.code(), partition.errorCode());
    }

    @Test
    void givenAGlobReader_whenItFetchesADeniedTopic_thenItGetsPlaintext() throws Exception {
        List<Record> stored = envelopes("ledger", "debit 10");

        FetchResponseData.PartitionData partition = fetch(proxy.open(BILLING), "ledger", stored);

        assertEquals("debit 10", utf8(records(partition.records()).getFirst().value()));
    }

    @Test
    void givenAFieldWithReadersOfItsOwn_whenAnotherIdentityFetches_thenOnlyThatFieldStaysAnEnvelope() throws Exception {
        List<Record> stored = records(MemoryRecords.withRecords(Compression.NONE, new SimpleRecord(null,
                produced(proxy.open(SHOP), "staff", "{\"name\":\"Ada\",\"salary\":9000}"))));

        String seenByBilling = utf8(records(fetch(proxy.open(BILLING), "staff", stored).records()).getFirst().value());
        String seenByOther = utf8(records(fetch(proxy.open(OTHER), "staff", stored).records()).getFirst().value());

        assertEquals("{\"name\":\"Ada\",\"salary\":9000}", seenByBilling);
        assertTrue(seenByOther.startsWith("{\"name\":\"Ada\",\"salary\":\""), seenByOther);
        assertTrue(!seenByOther.contains("9000"), seenByOther);
    }

    @Test
    void givenAWholeValueEnvelopeOnATopicWithFieldReaders_whenAnIdentityOutsideAFieldsReadersFetches_thenItStaysWhole()
            throws Exception {
        List<Record> older = envelopes("staff", "{\"name\":\"Ada\",\"salary\":9000}");

        Record seen = records(fetch(proxy.open(OTHER), "staff", older).records()).getFirst();

        assertArrayEquals(bytes(older.getFirst().value()), bytes(seen.value()));
    }

    @Test
    void givenAListedWriter_whenItProduces_thenTheValuesAreEncrypted() throws Exception {
        ConnectionHandler shop = proxy.open(SHOP);

        ProduceRequestData sent = produce(shop, 1, "payments", "card 4111");

        Record stored = records(sent(sent, "payments").partitionData().getFirst().records()).getFirst();
        assertEquals("card 4111", utf8(cipher.decrypt("payments", stored.value())));
        assertEquals(List.of(SHOP + " PRODUCE payments ALLOWED 1"), audited);
    }

    @Test
    void givenAnUnlistedWriter_whenItProduces_thenTheTopicNeverReachesTheBrokerAndTheClientGetsTopicAuthorizationFailed()
            throws Exception {
        ConnectionHandler other = proxy.open(OTHER);

        ProduceRequestData sent = produce(other, 7, "payments", "card 4111", "orders", "book");

        assertNull(sent(sent, "payments"), "the refused topic is taken out of the request");
        Record order = records(sent(sent, "orders").partitionData().getFirst().records()).getFirst();
        assertEquals("book", utf8(cipher.decrypt("orders", order.value())), "the other topic goes on");

        ProduceResponseData brokerAnswer = new ProduceResponseData();
        brokerAnswer.responses().add(new ProduceResponseData.TopicProduceResponse().setName("orders")
                .setPartitionResponses(new ArrayList<>(List.of(new ProduceResponseData.PartitionProduceResponse()
                        .setIndex(0).setBaseOffset(41)))));
        ProduceResponseData answer = (ProduceResponseData) decodeResponse(other.onWrite(ByteString.copyFrom(
                responseFrame(7, ApiKeys.PRODUCE, PRODUCE_V, brokerAnswer)), false), ApiKeys.PRODUCE, PRODUCE_V);

        assertEquals(41, answered(answer, "orders").partitionResponses().getFirst().baseOffset());
        ProduceResponseData.PartitionProduceResponse refused = answered(answer, "payments").partitionResponses().getFirst();
        assertEquals(Errors.TOPIC_AUTHORIZATION_FAILED.code(), refused.errorCode());
        assertEquals("meshcrypt: " + OTHER + " is not among the writers of this topic", refused.errorMessage());
        assertEquals(List.of(OTHER + " PRODUCE payments DENIED 1", OTHER + " PRODUCE orders ALLOWED 1"), audited);
    }

    @Test
    void givenARefusedProduceAndAnUnrefusedOne_whenAnsweredInOrder_thenOnlyTheFirstAnswerGetsTheRefusal() throws Exception {
        ConnectionHandler other = proxy.open(OTHER);
        produce(other, 1, "payments", "card");
        produce(other, 2, "orders", "book");

        ProduceResponseData first = answer(other, 1);

        assertEquals(Errors.TOPIC_AUTHORIZATION_FAILED.code(),
                answered(first, "payments").partitionResponses().getFirst().errorCode());
        // The second response is not even decoded: nothing was refused in its request.
        ByteString frame = ByteString.copyFrom(responseFrame(2, ApiKeys.PRODUCE, PRODUCE_V, new ProduceResponseData()));
        assertEquals(frame, other.onWrite(frame, false));
    }

    @Test
    void givenTheConnectionCloses_whenAudited_thenTheAuditIsClosed() throws Exception {
        ConnectionHandler shop = proxy.open(SHOP);

        shop.onClose();

        assertEquals(List.of(SHOP + " closed"), audited);
    }

    // ---- helpers ----

    /** The value {@code connection} forwards for one record produced to {@code topic}. */
    private static byte[] produced(ConnectionHandler connection, String topic, String value) throws Exception {
        ProduceRequestData sent = produce(connection, 99, topic, value);
        return bytes(records(sent(sent, topic).partitionData().getFirst().records()).getFirst().value());
    }

    private static ProduceRequestData.TopicProduceData sent(ProduceRequestData request, String topic) {
        return request.topicData().stream().filter(t -> t.name().equals(topic)).findFirst().orElse(null);
    }

    private static ProduceResponseData.TopicProduceResponse answered(ProduceResponseData response, String topic) {
        return response.responses().stream().filter(t -> t.name().equals(topic)).findFirst().orElseThrow();
    }

    private List<Record> envelopes(String topic, String value) throws Exception {
        byte[] envelope = bytes(cipher.encrypt(topic, ByteBuffer.wrap(value.getBytes(StandardCharsets.UTF_8))));
        return records(MemoryRecords.withRecords(Compression.NONE, new SimpleRecord(null, envelope)));
    }

    private FetchResponseData.PartitionData fetch(ConnectionHandler connection, String topic, List<Record> stored)
            throws Exception {
        int corr = ++correlation;
        connection.onRead(ByteString.copyFrom(requestFrame(corr, ApiKeys.FETCH, FETCH_V, new FetchRequestData())), false);
        SimpleRecord[] simple = stored.stream().map(r -> new SimpleRecord(null, bytes(r.value()))).toArray(SimpleRecord[]::new);
        FetchResponseData response = new FetchResponseData().setResponses(new ArrayList<>(List.of(
                new FetchResponseData.FetchableTopicResponse().setTopic(topic).setPartitions(new ArrayList<>(List.of(
                        new FetchResponseData.PartitionData().setPartitionIndex(0).setHighWatermark(10)
                                .setRecords(simple.length == 0 ? MemoryRecords.EMPTY
                                        : MemoryRecords.withRecords(Compression.NONE, simple))))))));
        ByteString out = connection.onWrite(ByteString.copyFrom(responseFrame(corr, ApiKeys.FETCH, FETCH_V, response)), false);
        return ((FetchResponseData) decodeResponse(out, ApiKeys.FETCH, FETCH_V)).responses().getFirst().partitions().getFirst();
    }

    /** @param topicsAndValues topic, value, topic, value, ... */
    private static ProduceRequestData produce(ConnectionHandler connection, int correlationId, String... topicsAndValues)
            throws Exception {
        ProduceRequestData.TopicProduceDataCollection topics = new ProduceRequestData.TopicProduceDataCollection();
        for (int i = 0; i < topicsAndValues.length; i += 2) {
            topics.add(new ProduceRequestData.TopicProduceData().setName(topicsAndValues[i])
                    .setPartitionData(new ArrayList<>(List.of(new ProduceRequestData.PartitionProduceData().setIndex(0)
                            .setRecords(MemoryRecords.withRecords(Compression.NONE,
                                    new SimpleRecord(null, topicsAndValues[i + 1].getBytes(StandardCharsets.UTF_8))))))));
        }
        ProduceRequestData request = new ProduceRequestData().setAcks((short) -1).setTimeoutMs(30_000).setTopicData(topics);
        ByteString out = connection.onRead(ByteString.copyFrom(requestFrame(correlationId, ApiKeys.PRODUCE, PRODUCE_V, request)), false);
        return (ProduceRequestData) decodeRequest(out, ApiKeys.PRODUCE);
    }

    private static ProduceResponseData answer(ConnectionHandler connection, int correlationId) throws Exception {
        ByteString out = connection.onWrite(ByteString.copyFrom(
                responseFrame(correlationId, ApiKeys.PRODUCE, PRODUCE_V, new ProduceResponseData())), false);
        return (ProduceResponseData) decodeResponse(out, ApiKeys.PRODUCE, PRODUCE_V);
    }
}
