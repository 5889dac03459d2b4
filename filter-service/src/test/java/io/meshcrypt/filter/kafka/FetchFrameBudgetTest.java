package io.meshcrypt.filter.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.policy.TopicPlans;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy.Unmatched;
import io.meshcrypt.meshconfig.policy.TopicRule;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.message.ShareFetchResponseData;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.utils.internals.Crc32C;
import org.junit.jupiter.api.Test;

/**
 * Review items 8, 9 and 11 at the fetch decryptor: one decompression budget per response, count=0 batches that carry
 * record bytes are corrupt on decrypted topics, broker-chosen topic names are escaped in warnings.
 */
class FetchFrameBudgetTest {
    private static final int LIMIT = 1 << 20;
    private static final short FETCH_V = 12;
    private static final Uuid SECRET = Uuid.randomUuid();

    private final FakeEnvelopeCipher cipher = new FakeEnvelopeCipher();
    private final AtomicLong now = new AtomicLong();
    private final List<String> warnings = new ArrayList<>();

    private FetchDecryptor decryptor(EncryptionPolicy policy) throws Exception {
        TopicNames names = new TopicNames(TestLimits.CONFIG.maxTopicIds());
        names.learn(SECRET, "secret");
        return new FetchDecryptor(new TopicPlans(policy), names, new ValueCrypto(cipher, policy), LIMIT, TestLimits.CONFIG.maxFrameBytes(),
                new FetchDecryptor.WarnLimiter(Duration.ofSeconds(30), 100, now::get), warnings::add, now::get,
                Duration.ofSeconds(5));
    }

    private static final EncryptionPolicy SECRET_ONLY = EncryptionPolicy.ofRules(List.of(TopicRule.wholeValue("secret")),
            Unmatched.PASSTHROUGH);

    /** A zstd batch of one envelope whose plaintext is {@code size} zeros: a few KB on the wire. */
    private static MemoryRecords zerosEnvelope(int size) {
        return FakeEnvelopeCipher.records(Compression.zstd().build(), FakeEnvelopeCipher.envelope(new byte[size]));
    }

    private static FetchResponseData fetch(String topic, MemoryRecords... partitions) {
        List<FetchResponseData.PartitionData> data = new ArrayList<>();
        for (int i = 0; i < partitions.length; i++) {
            data.add(new FetchResponseData.PartitionData().setPartitionIndex(i).setHighWatermark(100)
                    .setRecords(partitions[i]));
        }
        return new FetchResponseData().setResponses(new ArrayList<>(List.of(
                new FetchResponseData.FetchableTopicResponse().setTopic(topic).setPartitions(data))));
    }

    private static ShareFetchResponseData shareFetch(MemoryRecords... partitions) {
        List<ShareFetchResponseData.PartitionData> data = new ArrayList<>();
        for (int i = 0; i < partitions.length; i++) {
            data.add(new ShareFetchResponseData.PartitionData().setPartitionIndex(i).setRecords(partitions[i])
                    .setAcquiredRecords(new ArrayList<>(List.of(new ShareFetchResponseData.AcquiredRecords()
                            .setFirstOffset(0).setLastOffset(0).setDeliveryCount((short) 1)))));
        }
        return new ShareFetchResponseData().setResponses(new ShareFetchResponseData.ShareFetchableTopicResponseCollection(
                List.of(new ShareFetchResponseData.ShareFetchableTopicResponse().setTopicId(SECRET).setPartitions(data))
                        .iterator()));
    }

    private static int valueSize(Object records) {
        return ((MemoryRecords) records).records().iterator().next().value().remaining();
    }

    @Test
    void givenTwoPartitionsThatTogetherExceedTheLimit_whenFetchDecrypted_thenTheFirstIsDecryptedAndTheSecondRefetched()
            throws Exception {
        FetchResponseData response = fetch("secret", zerosEnvelope(LIMIT * 3 / 5), zerosEnvelope(LIMIT * 3 / 5));

        assertTrue(decryptor(SECRET_ONLY).decrypt(response, FETCH_V));

        List<FetchResponseData.PartitionData> partitions = response.responses().get(0).partitions();
        assertEquals(Errors.NONE.code(), partitions.get(0).errorCode());
        assertEquals(LIMIT * 3 / 5, valueSize(partitions.get(0).records()));
        assertEquals(Errors.NONE.code(), partitions.get(1).errorCode(), "retriable by fetching again: no error");
        assertEquals(0, ((MemoryRecords) partitions.get(1).records()).sizeInBytes());
        assertEquals(List.of(), warnings);
    }

    @Test
    void givenOnePartitionAloneLargerThanTheLimit_whenFetchDecrypted_thenCorruptMessage() throws Exception {
        FetchResponseData response = fetch("secret", zerosEnvelope(LIMIT + 1));

        decryptor(SECRET_ONLY).decrypt(response, FETCH_V);

        FetchResponseData.PartitionData p = response.responses().get(0).partitions().get(0);
        assertEquals(Errors.CORRUPT_MESSAGE.code(), p.errorCode());
        assertEquals(0, ((MemoryRecords) p.records()).sizeInBytes());
    }

    @Test
    void givenTwoSharePartitionsThatTogetherExceedTheLimit_whenDecrypted_thenTheSecondGetsARetriableErrorAndNoAcquisitions()
            throws Exception {
        ShareFetchResponseData response = shareFetch(zerosEnvelope(LIMIT * 3 / 5), zerosEnvelope(LIMIT * 3 / 5));

        assertTrue(decryptor(SECRET_ONLY).decrypt(response));

        List<ShareFetchResponseData.PartitionData> partitions = response.responses().iterator().next().partitions();
        assertEquals(Errors.NONE.code(), partitions.get(0).errorCode());
        assertEquals(1, partitions.get(0).acquiredRecords().size());
        assertEquals(Errors.KAFKA_STORAGE_ERROR.code(), partitions.get(1).errorCode());
        assertEquals(List.of(), partitions.get(1).acquiredRecords());
        assertEquals(0, ((MemoryRecords) partitions.get(1).records()).sizeInBytes());
    }

    @Test
    void givenBatchWithCountZeroButRecordBytesOnAnEncryptedTopic_whenFetchDecrypted_thenCorruptMessage()
            throws Exception {
        MemoryRecords honest = FakeEnvelopeCipher.records(Compression.NONE, "plaintext".getBytes());
        ByteBuffer forged = ByteBuffer.allocate(honest.sizeInBytes()).put(honest.buffer().duplicate()).flip();
        forged.putInt(57, 0);
        forged.putInt(17, (int) Crc32C.compute(forged, 21, forged.limit() - 21));
        FetchResponseData response = fetch("secret", MemoryRecords.readableRecords(forged));

        decryptor(SECRET_ONLY).decrypt(response, FETCH_V);

        FetchResponseData.PartitionData p = response.responses().get(0).partitions().get(0);
        assertEquals(Errors.CORRUPT_MESSAGE.code(), p.errorCode());
        assertEquals(0, ((MemoryRecords) p.records()).sizeInBytes());
    }

    @Test
    void givenBrokerTopicNameWithANewline_whenItsPartitionIsCorrupt_thenTheWarningIsOneEscapedLine() throws Exception {
        String name = "evil\nWARN forged line";
        EncryptionPolicy all = EncryptionPolicy.ofRules(List.of(TopicRule.wholeValue("evil*")), Unmatched.PASSTHROUGH);
        assertTrue(all.decryptsOnFetch(name), "precondition: the policy decrypts the broker's name");
        FetchResponseData response = fetch(name, FakeEnvelopeCipher.records(Compression.NONE, "not an envelope".getBytes()));

        decryptor(all).decrypt(response, FETCH_V);

        assertEquals(1, warnings.size());
        String warning = warnings.get(0);
        assertFalse(warning.contains("\n"), warning);
        assertTrue(warning.startsWith("fetch \"evil\\u000aWARN forged line\"-0 at offset 0: "), warning);
    }
}
