package io.meshcrypt.filter.kafka;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.policy.TopicPlans;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy.Unmatched;
import io.meshcrypt.meshconfig.policy.TopicRule;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.message.ShareFetchRequestData;
import org.apache.kafka.common.message.ShareFetchResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.junit.jupiter.api.Test;

/**
 * Share groups during a KMS outage: the broker counts a delivery per acquisition, so the filter must stop ShareFetch
 * from acquiring while the KMS is down, and let it acquire again only once the KMS answers.
 */
class ShareFetchKmsOutageTest {
    private static final Uuid SECRET = Uuid.randomUuid();
    private static final short V1 = 1;
    private static final Duration PROBE = Duration.ofSeconds(5);

    private final FakeEnvelopeCipher cipher = new FakeEnvelopeCipher();
    private final EncryptionPolicy policy = EncryptionPolicy.ofRules(List.of(TopicRule.wholeValue("secret")),
            Unmatched.PASSTHROUGH);
    private final AtomicLong now = new AtomicLong(1_000_000_000L);
    private final List<String> warnings = new ArrayList<>();
    private final FetchDecryptor decryptor;

    ShareFetchKmsOutageTest() throws Exception {
        TopicNames names = new TopicNames(TestLimits.CONFIG.maxTopicIds());
        names.learn(SECRET, "secret");
        decryptor = new FetchDecryptor(new TopicPlans(policy), names, new ValueCrypto(cipher, policy), 1 << 20, TestLimits.CONFIG.maxFrameBytes(),
                new FetchDecryptor.WarnLimiter(Duration.ofSeconds(30), 100, now::get), warnings::add, now::get, PROBE);
    }

    @Test
    void givenKmsDown_whenShareFetchResponseDecrypted_thenRetriableErrorWithoutRecordsOrAcquiredRecords() throws Exception {
        cipher.kmsDown.set(true);
        ShareFetchResponseData response = response();

        assertTrue(decryptor.decrypt(response));

        ShareFetchResponseData.PartitionData p = response.responses().iterator().next().partitions().get(0);
        assertEquals(Errors.KAFKA_STORAGE_ERROR.code(), p.errorCode());
        assertEquals(0, ((MemoryRecords) p.records()).sizeInBytes());
        assertEquals(List.of(), p.acquiredRecords());
        assertTrue(decryptor.holdsShareFetch());
    }

    @Test
    void givenKmsUp_whenShareFetchRequestSeen_thenNotHeldAndUnchanged() throws Exception {
        ShareFetchRequestData request = request();
        byte[] before = KafkaFrames.requestFrame(1, ApiKeys.SHARE_FETCH, V1, request);

        assertTrue(decryptor.decrypt(response()));

        assertFalse(decryptor.holdsShareFetch());
        assertFalse(decryptor.holdShareFetch(request, V1));
        assertArrayEquals(before, KafkaFrames.requestFrame(1, ApiKeys.SHARE_FETCH, V1, request));
    }

    @Test
    void givenKmsOutageSeen_whenNextShareFetchRequest_thenItAcquiresNothingWaitsAndKeepsItsAcknowledgements() throws Exception {
        cipher.kmsDown.set(true);
        decryptor.decrypt(response());
        ShareFetchRequestData request = request();

        boolean changed = decryptor.holdShareFetch(request, V1);

        assertTrue(changed);
        ShareFetchRequestData expected = request().setMaxRecords(0).setMinBytes(Integer.MAX_VALUE);
        assertArrayEquals(KafkaFrames.requestFrame(2, ApiKeys.SHARE_FETCH, V1, expected),
                KafkaFrames.requestFrame(2, ApiKeys.SHARE_FETCH, V1, request));
        assertEquals(1, cipher.decrypts.get(), "no probe before the interval: the KMS was asked once, by the fetch");
    }

    @Test
    void givenKmsBackBeforeTheProbeInterval_whenShareFetchRequest_thenStillHeldWithoutAskingTheKms() throws Exception {
        cipher.kmsDown.set(true);
        decryptor.decrypt(response());
        cipher.kmsDown.set(false);
        now.addAndGet(PROBE.toNanos() - 1);

        assertTrue(decryptor.holdShareFetch(request(), V1));
        assertEquals(1, cipher.decrypts.get());
    }

    @Test
    void givenKmsStillDownAtTheProbe_whenShareFetchRequests_thenHeldAndProbedOncePerInterval() throws Exception {
        cipher.kmsDown.set(true);
        decryptor.decrypt(response());
        now.addAndGet(PROBE.toNanos());

        assertTrue(decryptor.holdShareFetch(request(), V1));
        assertTrue(decryptor.holdShareFetch(request(), V1));
        assertEquals(2, cipher.decrypts.get(), "one fetch, one probe");
        now.addAndGet(PROBE.toNanos());
        assertTrue(decryptor.holdShareFetch(request(), V1));
        assertEquals(3, cipher.decrypts.get());
        assertTrue(decryptor.holdsShareFetch());
    }

    @Test
    void givenKmsBackAtTwoConsecutiveProbes_whenShareFetchRequest_thenReleasedUnchangedAndRecordsDecryptAgain()
            throws Exception {
        cipher.kmsDown.set(true);
        decryptor.decrypt(response());
        cipher.kmsDown.set(false);
        now.addAndGet(PROBE.toNanos());
        assertTrue(decryptor.holdShareFetch(request(), V1), "one answered probe does not lift the hold");
        now.addAndGet(PROBE.toNanos());
        ShareFetchRequestData request = request();
        byte[] before = KafkaFrames.requestFrame(3, ApiKeys.SHARE_FETCH, V1, request);

        assertFalse(decryptor.holdShareFetch(request, V1));

        assertArrayEquals(before, KafkaFrames.requestFrame(3, ApiKeys.SHARE_FETCH, V1, request));
        assertFalse(decryptor.holdsShareFetch());
        ShareFetchResponseData response = response();
        decryptor.decrypt(response);
        ShareFetchResponseData.PartitionData p = response.responses().iterator().next().partitions().get(0);
        assertEquals(Errors.NONE.code(), p.errorCode());
        assertEquals(1, p.acquiredRecords().size());
        assertEquals("hello", new String(FakeEnvelopeCipher.bytes(
                ((MemoryRecords) p.records()).records().iterator().next().value()), StandardCharsets.UTF_8));
    }

    @Test
    void givenHeld_whenVersion0RenewOnlyOrClosingRequest_thenUnchanged() throws Exception {
        cipher.kmsDown.set(true);
        decryptor.decrypt(response());

        assertFalse(decryptor.holdShareFetch(request(), (short) 0), "v0 has no MaxRecords");
        assertFalse(decryptor.holdShareFetch(request().setIsRenewAck(true).setMaxRecords(0).setMinBytes(0), (short) 2));
        assertFalse(decryptor.holdShareFetch(request().setShareSessionEpoch(-1), V1));
    }

    private static ShareFetchRequestData request() {
        ShareFetchRequestData.FetchTopicCollection topics = new ShareFetchRequestData.FetchTopicCollection();
        ShareFetchRequestData.FetchPartitionCollection partitions = new ShareFetchRequestData.FetchPartitionCollection();
        partitions.add(new ShareFetchRequestData.FetchPartition().setPartitionIndex(0).setAcknowledgementBatches(
                new ArrayList<>(List.of(new ShareFetchRequestData.AcknowledgementBatch().setFirstOffset(0).setLastOffset(4)
                        .setAcknowledgeTypes(new ArrayList<>(List.of((byte) 1)))))));
        topics.add(new ShareFetchRequestData.FetchTopic().setTopicId(SECRET).setPartitions(partitions));
        return new ShareFetchRequestData().setGroupId("g").setMemberId("m").setShareSessionEpoch(3).setMaxWaitMs(500)
                .setMinBytes(1).setMaxBytes(52_428_800).setMaxRecords(500).setBatchSize(500).setTopics(topics);
    }

    private static ShareFetchResponseData response() {
        MemoryRecords records = FakeEnvelopeCipher.records(Compression.NONE, FakeEnvelopeCipher.envelope("hello"));
        return new ShareFetchResponseData().setResponses(new ShareFetchResponseData.ShareFetchableTopicResponseCollection(
                List.of(new ShareFetchResponseData.ShareFetchableTopicResponse().setTopicId(SECRET).setPartitions(
                        new ArrayList<>(List.of(new ShareFetchResponseData.PartitionData().setPartitionIndex(0)
                                .setRecords(records).setAcquiredRecords(new ArrayList<>(List.of(
                                        new ShareFetchResponseData.AcquiredRecords().setFirstOffset(0).setLastOffset(0)
                                                .setDeliveryCount((short) 1))))))))
                        .iterator()));
    }
}
