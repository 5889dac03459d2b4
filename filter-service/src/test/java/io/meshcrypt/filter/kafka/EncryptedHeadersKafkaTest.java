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
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.crypto.DekManager;
import io.meshcrypt.filter.crypto.HeaderEnvelope;
import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.crypto.ValueCipherV2;
import io.meshcrypt.filter.crypto.ValueEnvelope;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.kms.LocalKekProvider;
import io.meshcrypt.filter.transport.ConnectionHandler;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.TopicRule;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.message.FetchRequestData;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.Record;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code headers:} through the whole Kafka connection pipeline: Produce stores the listed headers' values as header
 * envelopes and every other header as sent; Fetch gives them back in plaintext; a listed header that is not an envelope
 * of its own name and topic fails the partition as values do.
 */
class EncryptedHeadersKafkaTest {
    private static final short PRODUCE_V = 12;
    private static final short FETCH_V = 12;

    @TempDir
    Path dir;
    private DekManager deks;
    private ValueCipher cipher;
    private ConnectionHandler connection;
    private int correlation;

    @BeforeEach
    void setUp() throws Exception {
        Keysets.create(dir.resolve("kek.json"));
        deks = new DekManager(new LocalKekProvider(dir.resolve("kek.json")), DekManager.Settings.defaults());
        ValueCipherV2 v2 = new ValueCipherV2(deks, null);
        cipher = v2.blocking(Duration.ofSeconds(10));
        EncryptionPolicy policy = EncryptionPolicy.ofRules(List.of(
                new TopicRule("users*", List.of(), false, null, null, TopicRule.Others.CIPHERTEXT, Map.of(),
                        List.of("user-id", "x-pii-*")),
                TopicRule.wholeValue("*")), EncryptionPolicy.Unmatched.PASSTHROUGH);
        connection = new KafkaProxy(policy, v2, null, new BrokerAddresses(Map.of()), TestLimits.kafka(1 << 20)).open();
        // The topics' first data keys, so that no Produce below is deferred waiting for one.
        cipher.encrypt("users-eu", ByteBuffer.allocate(1));
        cipher.encrypt("orders", ByteBuffer.allocate(1));
    }

    @AfterEach
    void tearDown() {
        deks.close();
    }

    private static byte[] text(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static Header header(String name, String value) {
        return new RecordHeader(name, value == null ? null : value.getBytes(StandardCharsets.UTF_8));
    }

    private static Header[] sample() {
        return new Header[]{header("trace", "t-1"), header("user-id", "u-42"), header("x-pii-email", null),
                header("x-pii-phone", "+41"), header("user-id-hash", "h")};
    }

    @Test
    void givenListedHeaders_whenProduced_thenTheirValuesAreHeaderEnvelopesAndOtherHeadersAreAsSent() throws Exception {
        Record stored = produce("users-eu", sample()).getFirst();

        Header[] h = stored.headers();
        assertEquals(List.of("trace", "user-id", "x-pii-email", "x-pii-phone", "user-id-hash"),
                java.util.Arrays.stream(h).map(Header::key).toList(), "names and order unchanged");
        assertEquals("t-1", new String(h[0].value(), StandardCharsets.UTF_8));
        assertTrue(HeaderEnvelope.isHeaderEnvelope(ByteBuffer.wrap(h[1].value())));
        assertEquals("u-42", utf8(cipher.decryptHeader("users-eu", ByteBuffer.wrap(text("user-id")),
                ByteBuffer.wrap(h[1].value()), null)));
        assertNull(h[2].value(), "a null header value stays null");
        assertTrue(HeaderEnvelope.isHeaderEnvelope(ByteBuffer.wrap(h[3].value())), "x-pii-* matches x-pii-phone");
        assertEquals("h", new String(h[4].value(), StandardCharsets.UTF_8), "exact names only: user-id-hash is not listed");
        assertTrue(ValueEnvelope.isEnvelope(stored.value()));
    }

    @Test
    void givenStoredHeaderEnvelopes_whenFetched_thenConsumersGetEveryHeaderInPlaintext() throws Exception {
        Record stored = produce("users-eu", sample()).getFirst();

        FetchResponseData.PartitionData partition = fetch("users-eu", stored.headers(), bytes(stored.value()));

        assertEquals(Errors.NONE.code(), partition.errorCode());
        Record seen = records(partition.records()).getFirst();
        assertEquals("v", utf8(seen.value()));
        Header[] expected = sample();
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i].key(), seen.headers()[i].key());
            assertArrayEquals(expected[i].value(), seen.headers()[i].value(), expected[i].key());
        }
    }

    @Test
    void givenHeaderEnvelopeMovedToAnotherListedName_whenFetched_thenThePartitionFailsWithCorruptMessage()
            throws Exception {
        Record stored = produce("users-eu", sample()).getFirst();
        Header[] moved = stored.headers().clone();
        moved[3] = new RecordHeader("x-pii-phone", moved[1].value()); // user-id's envelope under x-pii-phone

        FetchResponseData.PartitionData partition = fetch("users-eu", moved, bytes(stored.value()));

        assertEquals(Errors.CORRUPT_MESSAGE.code(), partition.errorCode());
        assertEquals(0, ((MemoryRecords) partition.records()).sizeInBytes(), "no record, no plaintext");
    }

    @Test
    void givenPlaintextInAListedHeader_whenFetched_thenThePartitionFailsWithCorruptMessageAsValuesDo() throws Exception {
        Record stored = produce("users-eu", new Header[]{header("trace", "t")}).getFirst();

        FetchResponseData.PartitionData partition = fetch("users-eu",
                new Header[]{header("user-id", "written directly to the broker")}, bytes(stored.value()));

        assertEquals(Errors.CORRUPT_MESSAGE.code(), partition.errorCode());
    }

    @Test
    void givenTopicThatListsNoHeaders_whenProducedAndFetched_thenHeadersPassAsSentEvenEnvelopeShapedOnes()
            throws Exception {
        byte[] envelope = bytes(cipher.encryptHeader("users-eu", ByteBuffer.wrap(text("user-id")),
                ByteBuffer.wrap(text("u")), null));
        Header[] headers = {header("user-id", "u-42"), new RecordHeader("copied", envelope)};

        Record stored = produce("orders", headers).getFirst();
        FetchResponseData.PartitionData partition = fetch("orders", stored.headers(), bytes(stored.value()));

        assertEquals("u-42", new String(stored.headers()[0].value(), StandardCharsets.UTF_8));
        assertEquals(Errors.NONE.code(), partition.errorCode());
        Record seen = records(partition.records()).getFirst();
        assertArrayEquals(envelope, seen.headers()[1].value());
        assertFalse(new String(seen.headers()[1].value(), StandardCharsets.ISO_8859_1).contains("u-42"));
    }

    @Test
    void givenVersion1OnlyCipher_whenAPolicyListsHeaders_thenOnlyRecordsCarryingThemAreRefusedNamingKeys() throws Exception {
        Keysets.create(dir.resolve("v1.json"));
        ValueCipherV1 v1 = ValueCipherV1.fromKeysetFile(dir.resolve("v1.json"));
        EncryptionPolicy headers = EncryptionPolicy.ofRules(List.of(new TopicRule("users*", List.of(), false, null, null,
                TopicRule.Others.CIPHERTEXT, Map.of(), List.of("user-id"))), EncryptionPolicy.Unmatched.PASSTHROUGH);
        // Given a version-1 filter-service: the policy is taken (a start and a reload), not refused as a whole
        KafkaProxy proxy = new KafkaProxy(headers, v1, null, new BrokerAddresses(Map.of()), TestLimits.kafka(1 << 20));
        proxy.policy(headers);
        connection = proxy.open();

        // When a record without a listed header is produced, Then its value is encrypted as usual
        List<Record> sent = produce("users-eu", new Header[]{header("trace", "t-1")});
        byte[] value = new byte[sent.getFirst().valueSize()];
        sent.getFirst().value().get(value);
        assertArrayEquals(new byte[]{0, 'M', 'C', 'E', 1}, Arrays.copyOf(value, 5), "a version-1 value envelope");

        // When a record carrying a listed header is produced, Then the frame is refused (the connection fails
        // closed), naming keys:, and nothing of it reaches the broker
        Exception e = assertThrows(Exception.class, () -> produce("users-eu", sample()));
        assertTrue(String.valueOf(e.getMessage()).contains("keys:"), String.valueOf(e.getMessage()));
    }

    /** A policy that once listed headers for {@code legacy*} and now only decrypts it (the entry is gone). */
    private void decryptOnlyLegacy() throws Exception {
        EncryptionPolicy policy = EncryptionPolicy.ofRules(List.of(TopicRule.wholeValue("orders")), List.of("legacy*"),
                EncryptionPolicy.Unmatched.PASSTHROUGH);
        connection = new KafkaProxy(policy, new ValueCipherV2(deks, null), null, new BrokerAddresses(Map.of()),
                TestLimits.kafka(1 << 20)).open();
    }

    private Header envelopeHeader(String topic, String name, String value) throws Exception {
        return new RecordHeader(name, bytes(cipher.encryptHeader(topic, ByteBuffer.wrap(text(name)),
                ByteBuffer.wrap(text(value)), null)));
    }

    @Test
    void givenDecryptOnlyTopic_whenHeaderEnvelopesWrittenEarlierAreFetched_thenTheyArePlaintextAndOtherHeadersPass()
            throws Exception {
        decryptOnlyLegacy();
        Header[] stored = {header("trace", "t-1"), envelopeHeader("legacy-users", "user-id", "u-42"),
                header("x-pii-email", null), envelopeHeader("legacy-users", "x-pii-phone", "+41")};

        FetchResponseData.PartitionData partition = fetch("legacy-users", stored, text("plain value"));

        assertEquals(Errors.NONE.code(), partition.errorCode());
        Header[] seen = records(partition.records()).getFirst().headers();
        assertEquals(List.of("trace", "user-id", "x-pii-email", "x-pii-phone"), Arrays.stream(seen).map(Header::key).toList());
        assertEquals("t-1", new String(seen[0].value(), StandardCharsets.UTF_8));
        assertEquals("u-42", new String(seen[1].value(), StandardCharsets.UTF_8));
        assertNull(seen[2].value());
        assertEquals("+41", new String(seen[3].value(), StandardCharsets.UTF_8));
    }

    @Test
    void givenDecryptOnlyTopic_whenAHeaderEnvelopeIsFetchedUnderAnotherName_thenThePartitionFailsWithCorruptMessage()
            throws Exception {
        decryptOnlyLegacy();
        Header moved = new RecordHeader("trace", envelopeHeader("legacy-users", "user-id", "u-42").value());

        FetchResponseData.PartitionData partition = fetch("legacy-users", new Header[]{moved}, text("v"));

        assertEquals(Errors.CORRUPT_MESSAGE.code(), partition.errorCode());
        assertEquals(0, ((MemoryRecords) partition.records()).sizeInBytes(), "no record, no plaintext");
    }

    @Test
    void givenDecryptOnlyTopic_whenAProducedHeaderStartsWithTheEnvelopeMagic_thenTheRequestIsRefusedAndPlainOnesPass()
            throws Exception {
        decryptOnlyLegacy();

        Record sent = produce("legacy-users", new Header[]{header("trace", "t-1")}).getFirst();
        assertEquals("t-1", new String(sent.headers()[0].value(), StandardCharsets.UTF_8), "forwarded as sent");
        assertEquals("v", utf8(sent.value()));

        Header shaped = new RecordHeader("trace", new byte[]{0, 'M', 'C', 'H', 1, 2, 3});
        Exception e = assertThrows(Exception.class, () -> produce("legacy-users", new Header[]{shaped}));
        assertTrue(String.valueOf(e.getMessage()).contains("header-envelope magic"), String.valueOf(e.getMessage()));
    }

    // ---- helpers ----

    private List<Record> produce(String topic, Header[] headers) throws Exception {
        ProduceRequestData.TopicProduceDataCollection topics = new ProduceRequestData.TopicProduceDataCollection();
        topics.add(new ProduceRequestData.TopicProduceData().setName(topic)
                .setPartitionData(new ArrayList<>(List.of(new ProduceRequestData.PartitionProduceData().setIndex(0)
                        .setRecords(MemoryRecords.withRecords(Compression.gzip().build(),
                                new SimpleRecord(1L, text("k"), text("v"), headers)))))));
        ProduceRequestData request = new ProduceRequestData().setAcks((short) 0).setTimeoutMs(30_000).setTopicData(topics);
        ByteString out = connection.onRead(ByteString.copyFrom(requestFrame(++correlation, ApiKeys.PRODUCE, PRODUCE_V,
                request)), false);
        ProduceRequestData sent = (ProduceRequestData) decodeRequest(out, ApiKeys.PRODUCE);
        return records(sent.topicData().iterator().next().partitionData().getFirst().records());
    }

    private FetchResponseData.PartitionData fetch(String topic, Header[] headers, byte[] value) throws Exception {
        int corr = ++correlation;
        connection.onRead(ByteString.copyFrom(requestFrame(corr, ApiKeys.FETCH, FETCH_V, new FetchRequestData())), false);
        FetchResponseData response = new FetchResponseData().setResponses(new ArrayList<>(List.of(
                new FetchResponseData.FetchableTopicResponse().setTopic(topic).setPartitions(new ArrayList<>(List.of(
                        new FetchResponseData.PartitionData().setPartitionIndex(0).setHighWatermark(10)
                                .setRecords(MemoryRecords.withRecords(Compression.lz4().build(),
                                        new SimpleRecord(1L, text("k"), value, headers)))))))));
        ByteString out = connection.onWrite(ByteString.copyFrom(responseFrame(corr, ApiKeys.FETCH, FETCH_V, response)), false);
        return ((FetchResponseData) decodeResponse(out, ApiKeys.FETCH, FETCH_V)).responses().getFirst().partitions().getFirst();
    }
}
