package io.meshcrypt.filter.kafka;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.policy.TopicPlans;
import io.meshcrypt.filter.transport.ConnectionHandler;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy.Unmatched;
import io.meshcrypt.meshconfig.policy.TopicRule;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.message.FetchRequestData;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.Record;
import org.junit.jupiter.api.Test;

/** Fetch of topics the policy does not encrypt: their batches pass byte for byte, never decoded or decrypted. */
class FetchPassthroughTest {
    private static final short FETCH_V = 12;
    private static final byte[] FORGED = FakeEnvelopeCipher.HEADER.clone();

    private final FakeEnvelopeCipher cipher = new FakeEnvelopeCipher();
    private final EncryptionPolicy policy = EncryptionPolicy.ofRules(List.of(TopicRule.wholeValue("secret")),
            List.of("legacy"), Unmatched.PASSTHROUGH);
    private final List<String> warnings = new ArrayList<>();

    private FetchDecryptor decryptor(int maxDecompressedBytes) {
        return new FetchDecryptor(new TopicPlans(policy), new TopicNames(TestLimits.CONFIG.maxTopicIds()), new ValueCrypto(cipher, policy), maxDecompressedBytes, TestLimits.CONFIG.maxFrameBytes(),
                new FetchDecryptor.WarnLimiter(Duration.ofSeconds(30), 100, System::nanoTime), warnings::add,
                System::nanoTime, Duration.ofSeconds(5));
    }

    @Test
    void givenEnvelopeShapedValueOnPassthroughTopic_whenFetchedThroughTheProxy_thenForwardedByteForByteWithoutDecrypting() throws Exception {
        ConnectionHandler connection = new KafkaProxy(policy, cipher, null, new BrokerAddresses(Map.of()), TestLimits.kafka(1 << 20)).open();
        MemoryRecords poisoned = FakeEnvelopeCipher.records(Compression.NONE, FORGED, "ok".getBytes(StandardCharsets.UTF_8));
        FetchResponseData response = response("public", poisoned);

        connection.onRead(ByteString.copyFrom(KafkaFrames.requestFrame(7, ApiKeys.FETCH, FETCH_V, new FetchRequestData())), false);
        byte[] sent = KafkaFrames.responseFrame(7, ApiKeys.FETCH, FETCH_V, response);
        ByteString out = connection.onWrite(ByteString.copyFrom(sent), false);

        FetchResponseData seen = (FetchResponseData) KafkaFrames.decodeResponse(out, ApiKeys.FETCH, FETCH_V);
        FetchResponseData.PartitionData p = seen.responses().get(0).partitions().get(0);
        assertEquals(Errors.NONE.code(), p.errorCode());
        assertArrayEquals(bytes(poisoned), bytes((MemoryRecords) p.records()));
        assertArrayEquals(sent, out.toByteArray());
        assertEquals(0, cipher.decrypts.get(), "the KMS-backed cipher must never see a passthrough value");
    }

    @Test
    void givenCorruptCompressedBatchOnPassthroughTopic_whenDecrypted_thenSameRecordsObjectAndNothingChanged() throws Exception {
        MemoryRecords bomb = FakeEnvelopeCipher.records(Compression.zstd().build(), new byte[1 << 20]);
        ByteBuffer broken = bomb.buffer().duplicate();
        broken.put(17, (byte) (broken.get(17) ^ 1)); // CRC: the old path rejected the batch as CORRUPT_MESSAGE
        FetchResponseData response = response("public", bomb);

        boolean changed = decryptor(1024).decrypt(response, FETCH_V);

        FetchResponseData.PartitionData p = response.responses().get(0).partitions().get(0);
        assertFalse(changed);
        assertSame(bomb, p.records());
        assertEquals(Errors.NONE.code(), p.errorCode());
        assertEquals(List.of(), warnings);
        assertEquals(0, cipher.decrypts.get());
    }

    @Test
    void givenDecryptOnlyTopic_whenFetched_thenEnvelopesDecryptAndPlainValuesPass() throws Exception {
        MemoryRecords mixed = FakeEnvelopeCipher.records(Compression.lz4().build(), FakeEnvelopeCipher.envelope("old"),
                "new".getBytes(StandardCharsets.UTF_8));
        FetchResponseData response = response("legacy", mixed);

        boolean changed = decryptor(1 << 20).decrypt(response, FETCH_V);

        FetchResponseData.PartitionData p = response.responses().get(0).partitions().get(0);
        assertTrue(changed);
        assertEquals(Errors.NONE.code(), p.errorCode());
        assertEquals(List.of("old", "new"), values((MemoryRecords) p.records()));
    }

    @Test
    void givenEncryptedTopicBatchOverTheDecompressionLimit_whenFetched_thenCorruptMessageNamingTheLimit() throws Exception {
        MemoryRecords bomb = FakeEnvelopeCipher.records(Compression.gzip().build(),
                FakeEnvelopeCipher.envelope(new byte[64 * 1024]));
        FetchResponseData response = response("secret", bomb);

        boolean changed = decryptor(1024).decrypt(response, FETCH_V);

        FetchResponseData.PartitionData p = response.responses().get(0).partitions().get(0);
        assertTrue(changed);
        assertEquals(Errors.CORRUPT_MESSAGE.code(), p.errorCode());
        assertEquals(0, ((MemoryRecords) p.records()).sizeInBytes());
        assertEquals(1, warnings.size());
        assertTrue(warnings.get(0).contains("maxDecompressedBytes=1024"), warnings.get(0));
        assertEquals(0, cipher.decrypts.get());
    }

    @Test
    void givenEncryptedTopicWithNoRecordsAndAPassthroughTopic_whenDecrypted_thenNothingChanged() throws Exception {
        FetchResponseData response = response("secret", MemoryRecords.EMPTY);
        response.responses().add(response("public", FakeEnvelopeCipher.records(Compression.NONE, FORGED)).responses().get(0));

        assertFalse(decryptor(1 << 20).decrypt(response, FETCH_V));
    }

    private static FetchResponseData response(String topic, MemoryRecords records) {
        return new FetchResponseData().setResponses(new ArrayList<>(List.of(
                new FetchResponseData.FetchableTopicResponse().setTopic(topic).setPartitions(new ArrayList<>(List.of(
                        new FetchResponseData.PartitionData().setPartitionIndex(0).setHighWatermark(10)
                                .setRecords(records)))))));
    }

    private static byte[] bytes(MemoryRecords records) {
        return FakeEnvelopeCipher.bytes(records.buffer());
    }

    private static List<String> values(MemoryRecords records) {
        List<String> out = new ArrayList<>();
        for (Record r : records.records()) {
            out.add(new String(FakeEnvelopeCipher.bytes(r.value()), StandardCharsets.UTF_8));
        }
        return out;
    }
}
