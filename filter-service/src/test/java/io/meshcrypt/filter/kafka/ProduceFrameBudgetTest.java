package io.meshcrypt.filter.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.framing.KafkaFrameException;
import io.meshcrypt.filter.policy.TopicPlans;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy.Unmatched;
import io.meshcrypt.meshconfig.policy.TopicRule;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.junit.jupiter.api.Test;

/**
 * Review items 1, 9 and 6 (values) at the Produce encryptor: one decompression budget for the whole request, exactly
 * one batch per partition, and no envelope-shaped values planted on topics the fetch path decrypts but Produce does
 * not encrypt.
 */
class ProduceFrameBudgetTest {
    private static final int LIMIT = 1 << 20;

    private final FakeEnvelopeCipher cipher = new FakeEnvelopeCipher();
    private final EncryptionPolicy policy = EncryptionPolicy.ofRules(List.of(TopicRule.wholeValue("secret")),
            List.of("legacy"), Unmatched.PASSTHROUGH);
    private final ProduceEncryptor encryptor = new ProduceEncryptor(new TopicPlans(policy), new ValueCrypto(cipher, policy), LIMIT,
            TestLimits.CONFIG.maxRequestFrameBytes(), TestLimits.CONFIG.maxNewDataKeysPerRequest());

    private static MemoryRecords batch(Compression compression, byte[]... values) {
        SimpleRecord[] records = new SimpleRecord[values.length];
        for (int i = 0; i < values.length; i++) {
            records[i] = new SimpleRecord(1_700_000_000_000L, null, values[i]);
        }
        return MemoryRecords.withRecords(compression, records);
    }

    private static ProduceRequestData request(String topic, MemoryRecords... partitions) {
        List<ProduceRequestData.PartitionProduceData> data = new ArrayList<>();
        for (int i = 0; i < partitions.length; i++) {
            data.add(new ProduceRequestData.PartitionProduceData().setIndex(i).setRecords(partitions[i]));
        }
        ProduceRequestData.TopicProduceDataCollection topics = new ProduceRequestData.TopicProduceDataCollection();
        topics.add(new ProduceRequestData.TopicProduceData().setName(topic).setPartitionData(data));
        return new ProduceRequestData().setAcks((short) -1).setTimeoutMs(30_000).setTopicData(topics);
    }

    @Test
    void givenEightPartitionsEachAZstdBombUnderTheLimit_whenEncrypted_thenTheRequestIsRefused() {
        MemoryRecords[] partitions = new MemoryRecords[8];
        for (int i = 0; i < partitions.length; i++) {
            partitions[i] = batch(Compression.zstd().build(), new byte[LIMIT - 4096]);
        }
        assertTrue(partitions[0].sizeInBytes() < 4096, "each bomb is small: " + partitions[0].sizeInBytes());

        KafkaFrameException e = assertThrows(KafkaFrameException.class,
                () -> encryptor.encrypt(request("secret", partitions)));

        assertTrue(e.getMessage().startsWith("Produce to secret-1: Batch at base offset 0 decompresses to more than the "),
                e.getMessage());
        assertTrue(e.getMessage().endsWith(" bytes left of maxDecompressedBytes=" + LIMIT + " for this frame"),
                e.getMessage());
    }

    @Test
    void givenTwoPartitionsThatTogetherFitTheLimit_whenEncrypted_thenBothAreEncrypted() throws Exception {
        ProduceRequestData request = request("secret", batch(Compression.zstd().build(), new byte[LIMIT / 4]),
                batch(Compression.zstd().build(), new byte[LIMIT / 4]));

        assertTrue(encryptor.encrypt(request));

        for (ProduceRequestData.PartitionProduceData p : request.topicData().iterator().next().partitionData()) {
            var value = ((MemoryRecords) p.records()).records().iterator().next().value();
            assertEquals(FakeEnvelopeCipher.HEADER.length + LIMIT / 4, value.remaining());
        }
    }

    @Test
    void givenPartitionCarryingTwoBatches_whenEncrypted_thenTheRequestIsRefused() {
        ByteBuffer two = ByteBuffer.allocate(2 * batch(Compression.NONE, "a".getBytes()).sizeInBytes());
        two.put(batch(Compression.NONE, "a".getBytes()).buffer()).put(batch(Compression.NONE, "b".getBytes()).buffer());
        MemoryRecords records = MemoryRecords.readableRecords(two.flip());

        KafkaFrameException e = assertThrows(KafkaFrameException.class,
                () -> encryptor.encrypt(request("secret", records)));

        assertEquals("Produce to secret-0: Produce partition carries more than one record batch (the broker accepts"
                + " exactly one per partition since Produce v3)", e.getMessage());
    }

    @Test
    void givenEnvelopeShapedValueOnADecryptOnlyTopic_whenProduced_thenTheRequestIsRefused() {
        MemoryRecords records = batch(Compression.NONE, "fine".getBytes(), FakeEnvelopeCipher.envelope("planted"));

        KafkaFrameException e = assertThrows(KafkaFrameException.class,
                () -> encryptor.encrypt(request("legacy", records)));

        assertEquals("Produce to legacy-0: Value of record at offset 1 could not be rewritten: a value starts with the"
                + " meshcrypt envelope magic on a topic whose values are decrypted on fetch but not encrypted on produce",
                e.getMessage());
    }

    @Test
    void givenEnvelopeShapedValueInACompressedBatchOnADecryptOnlyTopic_whenProduced_thenTheRequestIsRefused() {
        MemoryRecords records = batch(Compression.gzip().build(), FakeEnvelopeCipher.envelope("planted"));

        assertThrows(KafkaFrameException.class, () -> encryptor.encrypt(request("legacy", records)));
    }

    @Test
    void givenPlainValuesOnADecryptOnlyTopic_whenProduced_thenForwardedUnchanged() throws Exception {
        MemoryRecords records = batch(Compression.gzip().build(), "hello".getBytes(), new byte[] {0x00, 0x4D, 0x43});
        ProduceRequestData request = request("legacy", records);

        assertFalse(encryptor.encrypt(request));

        assertSame(records, request.topicData().iterator().next().partitionData().get(0).records());
    }

    @Test
    void givenEnvelopeShapedValueOnATopicNeitherEncryptedNorDecrypted_whenProduced_thenForwardedUnscanned()
            throws Exception {
        MemoryRecords records = batch(Compression.NONE, FakeEnvelopeCipher.envelope("just data"));
        ProduceRequestData request = request("plain", records);

        assertFalse(encryptor.encrypt(request));

        assertSame(records, request.topicData().iterator().next().partitionData().get(0).records());
    }
}
