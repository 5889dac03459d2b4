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
import io.meshcrypt.filter.crypto.RecordKeyCipher;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.crypto.ValueEnvelope;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.transport.ConnectionHandler;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.TopicRule;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.message.FetchRequestData;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.Record;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code keys: deterministic} through the whole Kafka connection pipeline: Produce stores equal keys as equal
 * AES-SIV key envelopes next to encrypted values, Fetch gives consumers the plaintext keys back, and a key that does
 * not decrypt fails its partition.
 */
class DeterministicKeysKafkaTest {
    private static final short PRODUCE_V = 12;
    private static final short FETCH_V = 12;

    @TempDir
    Path dir;
    private ValueCipherV1 cipher;
    private RecordKeyCipher keyCipher;
    private EncryptionPolicy policy;
    private ConnectionHandler connection;
    private int correlation;

    @BeforeEach
    void setUp() throws Exception {
        Keysets.create(dir.resolve("keyset.json"));
        cipher = ValueCipherV1.fromKeysetFile(dir.resolve("keyset.json"));
        keyCipher = RecordKeyCipher.openOrCreate(dir.resolve("siv-keyset.json"));
        policy = EncryptionPolicy.ofRules(List.of(
                new TopicRule("users*", List.of(), true),
                TopicRule.wholeValue("*")), EncryptionPolicy.Unmatched.PASSTHROUGH);
        connection = new KafkaProxy(policy, cipher, keyCipher, new BrokerAddresses(Map.of()), TestLimits.kafka(1 << 20)).open();
    }

    @Test
    void givenDeterministicKeyTopic_whenProduced_thenEqualKeysGiveEqualKeyEnvelopesAndNullKeysStayNull() throws Exception {
        List<Record> stored = produce("users-eu", new String[] {"alice", "alice", "bob", null}, "v1", "v2", "v3", "v4");

        byte[] first = bytes(stored.get(0).key());
        assertTrue(RecordKeyCipher.isKeyEnvelope(ByteBuffer.wrap(first)));
        assertArrayEquals(first, bytes(stored.get(1).key()));
        assertFalse(Arrays.equals(first, bytes(stored.get(2).key())));
        assertFalse(new String(first, StandardCharsets.ISO_8859_1).contains("alice"));
        assertEquals("alice", utf8(keyCipher.decrypt("users-eu", ByteBuffer.wrap(first))));
        assertNull(stored.get(3).key());
        for (int i = 0; i < 4; i++) {
            assertTrue(ValueEnvelope.isEnvelope(stored.get(i).value()));
            assertEquals("v" + (i + 1), utf8(cipher.decrypt("users-eu", stored.get(i).value())));
        }
    }

    @Test
    void givenEncryptedKeysAndValues_whenFetched_thenConsumersGetPlaintextKeysAndValues() throws Exception {
        List<Record> stored = produce("users-eu", new String[] {"alice", null}, "v1", "v2");

        FetchResponseData.PartitionData partition = fetch("users-eu", stored);

        assertEquals(Errors.NONE.code(), partition.errorCode());
        List<Record> seen = records(partition.records());
        assertEquals("alice", utf8(seen.get(0).key()));
        assertEquals("v1", utf8(seen.get(0).value()));
        assertNull(seen.get(1).key());
        assertEquals("v2", utf8(seen.get(1).value()));
    }

    @Test
    void givenTopicWithoutKeysDeterministic_whenProduced_thenKeysAreForwardedAsSent() throws Exception {
        List<Record> stored = produce("orders", new String[] {"alice"}, "v1");

        assertEquals("alice", utf8(stored.getFirst().key()));
        assertTrue(ValueEnvelope.isEnvelope(stored.getFirst().value()));
    }

    @Test
    void givenKeyEnvelopeOnATopicWhosePolicyDoesNotEncryptKeys_whenFetched_thenKeyPassesAsStored() throws Exception {
        // Review item 6: any client may produce key bytes starting with \0MCK to such a topic (its keys are forwarded
        // as sent); decrypting them on fetch would turn the partition into a permanent CORRUPT_MESSAGE.
        byte[] key = bytes(keyCipher.encrypt("orders", ByteBuffer.wrap("alice".getBytes(StandardCharsets.UTF_8))));
        byte[] value = bytes(cipher.encrypt("orders", ByteBuffer.wrap("v1".getBytes(StandardCharsets.UTF_8))));

        FetchResponseData.PartitionData partition = fetch("orders", List.of(new SimpleRecord(key, value)));

        Record fetched = records(partition.records()).getFirst();
        assertArrayEquals(key, bytes(fetched.key()));
        assertEquals("v1", utf8(fetched.value()));
    }

    @Test
    void givenForgedKeyEnvelopeOnATopicWhosePolicyDoesNotEncryptKeys_whenProducedThenFetched_thenNoCorruptMessage() throws Exception {
        byte[] forged = {0x00, 0x4D, 0x43, 0x4B, 0x01, 0x01, 0x12, 0x34, 0x56, 0x78, 0x00};
        byte[] value = bytes(cipher.encrypt("orders", ByteBuffer.wrap("v1".getBytes(StandardCharsets.UTF_8))));

        FetchResponseData.PartitionData partition = fetch("orders", List.of(new SimpleRecord(forged, value)));

        assertEquals(0, partition.errorCode());
        assertArrayEquals(forged, bytes(records(partition.records()).getFirst().key()));
    }

    @Test
    void givenTamperedKey_whenFetched_thenThePartitionFailsWithCorruptMessage() throws Exception {
        Record stored = produce("users-eu", new String[] {"alice"}, "v1").getFirst();
        byte[] key = bytes(stored.key());
        key[key.length - 1] ^= 1;

        FetchResponseData.PartitionData partition = fetch("users-eu", List.of(new SimpleRecord(key, bytes(stored.value()))));

        assertEquals(Errors.CORRUPT_MESSAGE.code(), partition.errorCode());
        assertEquals(0, ((MemoryRecords) partition.records()).sizeInBytes());
    }

    @Test
    void givenKeyEnvelopeOfAnotherTopic_whenFetched_thenThePartitionFailsWithCorruptMessage() throws Exception {
        Record stored = produce("users-eu", new String[] {"alice"}, "v1").getFirst();
        byte[] value = bytes(cipher.encrypt("users-us", ByteBuffer.wrap("v1".getBytes(StandardCharsets.UTF_8))));

        FetchResponseData.PartitionData partition = fetch("users-us", List.of(new SimpleRecord(bytes(stored.key()), value)));

        assertEquals(Errors.CORRUPT_MESSAGE.code(), partition.errorCode());
    }

    @Test
    void givenPlaintextKeyOnADeterministicKeyTopic_whenFetched_thenThePartitionFailsWithCorruptMessage() throws Exception {
        byte[] value = bytes(cipher.encrypt("users-eu", ByteBuffer.wrap("v1".getBytes(StandardCharsets.UTF_8))));

        FetchResponseData.PartitionData partition = fetch("users-eu",
                List.of(new SimpleRecord("alice".getBytes(StandardCharsets.UTF_8), value)));

        assertEquals(Errors.CORRUPT_MESSAGE.code(), partition.errorCode());
    }

    @Test
    void givenPolicyEncryptingKeys_whenProxyBuiltWithoutKeyCipher_thenRefused() throws Exception {
        assertThrows(IllegalArgumentException.class,
                () -> new KafkaProxy(policy, cipher, null, new BrokerAddresses(Map.of()), TestLimits.kafka(1 << 20)));
    }

    // ---- helpers ----

    private List<Record> produce(String topic, String[] keys, String... values) throws Exception {
        ByteString out = connection.onRead(ByteString.copyFrom(request(ApiKeys.PRODUCE, PRODUCE_V,
                produceRequest(topic, keys, values))), false);
        ProduceRequestData sent = (ProduceRequestData) decodeRequest(out, ApiKeys.PRODUCE);
        return records(sent.topicData().iterator().next().partitionData().getFirst().records());
    }

    private FetchResponseData.PartitionData fetch(String topic, List<?> stored) throws Exception {
        int corr = ++correlation;
        connection.onRead(ByteString.copyFrom(requestFrame(corr, ApiKeys.FETCH, FETCH_V, new FetchRequestData())), false);
        SimpleRecord[] simple = stored.stream().map(r -> r instanceof Record rec
                ? new SimpleRecord(rec.key() == null ? null : bytes(rec.key()), bytes(rec.value()))
                : (SimpleRecord) r).toArray(SimpleRecord[]::new);
        FetchResponseData response = new FetchResponseData().setResponses(new ArrayList<>(List.of(
                new FetchResponseData.FetchableTopicResponse().setTopic(topic).setPartitions(new ArrayList<>(List.of(
                        new FetchResponseData.PartitionData().setPartitionIndex(0).setHighWatermark(10)
                                .setRecords(MemoryRecords.withRecords(Compression.lz4().build(), simple))))))));
        ByteString out = connection.onWrite(ByteString.copyFrom(responseFrame(corr, ApiKeys.FETCH, FETCH_V, response)), false);
        return ((FetchResponseData) decodeResponse(out, ApiKeys.FETCH, FETCH_V)).responses().getFirst().partitions().getFirst();
    }

    private static ProduceRequestData produceRequest(String topic, String[] keys, String... values) {
        SimpleRecord[] records = new SimpleRecord[values.length];
        for (int i = 0; i < values.length; i++) {
            records[i] = new SimpleRecord(keys[i] == null ? null : keys[i].getBytes(StandardCharsets.UTF_8),
                    values[i].getBytes(StandardCharsets.UTF_8));
        }
        ProduceRequestData.TopicProduceDataCollection topics = new ProduceRequestData.TopicProduceDataCollection();
        topics.add(new ProduceRequestData.TopicProduceData().setName(topic)
                .setPartitionData(new ArrayList<>(List.of(new ProduceRequestData.PartitionProduceData().setIndex(0)
                        .setRecords(MemoryRecords.withRecords(Compression.gzip().build(), records))))));
        return new ProduceRequestData().setAcks((short) 0).setTimeoutMs(30_000).setTopicData(topics); // acks=0: no response to answer before the Fetch
    }

    private byte[] request(ApiKeys api, short version, ApiMessage body) {
        return requestFrame(++correlation, api, version, body);
    }






}
