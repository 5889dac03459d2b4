package io.meshcrypt.filter.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.policy.TopicPlans;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy.Unmatched;
import io.meshcrypt.meshconfig.policy.TopicRule;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.message.ShareFetchRequestData;
import org.apache.kafka.common.message.ShareFetchResponseData;
import org.apache.kafka.common.protocol.Errors;
import org.junit.jupiter.api.Test;

/**
 * Review item 12: the ShareFetch hold survives a policy reload, and a flapping KMS does not lift it after one answered
 * probe.
 */
class ShareFetchKmsOutageReloadTest {
    private static final Uuid SECRET = Uuid.randomUuid();
    private static final short V1 = 1;
    private static final Duration PROBE = Duration.ofSeconds(5);

    private final FakeEnvelopeCipher cipher = new FakeEnvelopeCipher();
    private final EncryptionPolicy policy = EncryptionPolicy.ofRules(List.of(TopicRule.wholeValue("secret")),
            Unmatched.PASSTHROUGH);

    @Test
    void givenShareFetchHeldForAKmsOutage_whenThePolicyIsReloaded_thenItIsStillHeld() throws Exception {
        KafkaProxy proxy = new KafkaProxy(policy, cipher, null, new BrokerAddresses(Map.of()), TestLimits.kafka(1 << 20));
        proxy.topicNames().learn(SECRET, "secret");
        cipher.kmsDown.set(true);
        proxy.inForce().fetch().decrypt(response());
        assertTrue(proxy.inForce().fetch().holdsShareFetch());
        FetchDecryptor before = proxy.inForce().fetch();

        proxy.policy(EncryptionPolicy.ofRules(List.of(TopicRule.wholeValue("secret"), TopicRule.wholeValue("other")),
                Unmatched.PASSTHROUGH));

        assertTrue(proxy.inForce().fetch() != before, "the reload built a new decryptor");
        assertTrue(proxy.inForce().fetch().holdsShareFetch());
        ShareFetchRequestData request = request();
        assertTrue(proxy.inForce().fetch().holdShareFetch(request, V1));
        assertEquals(0, request.maxRecords());
    }

    @Test
    void givenKmsFlapping_whenAFetchMeetsItDownBetweenTwoAnsweredProbes_thenTheHoldStaysUntilTwoConsecutiveAnswers()
            throws Exception {
        AtomicLong now = new AtomicLong(1_000_000_000L);
        TopicNames names = new TopicNames(TestLimits.CONFIG.maxTopicIds());
        names.learn(SECRET, "secret");
        FetchDecryptor decryptor = new FetchDecryptor(new TopicPlans(policy), names, new ValueCrypto(cipher, policy), 1 << 20, TestLimits.CONFIG.maxFrameBytes(),
                new FetchDecryptor.WarnLimiter(Duration.ofSeconds(30), 100, now::get), s -> { }, now::get, PROBE);
        cipher.kmsDown.set(true);
        decryptor.decrypt(response());

        cipher.kmsDown.set(false);
        now.addAndGet(PROBE.toNanos());
        assertTrue(decryptor.holdShareFetch(request(), V1), "first answered probe");
        cipher.kmsDown.set(true);
        ShareFetchResponseData failed = response();
        decryptor.decrypt(failed);
        assertEquals(Errors.KAFKA_STORAGE_ERROR.code(), failed.responses().iterator().next().partitions().get(0).errorCode());
        cipher.kmsDown.set(false);
        now.addAndGet(PROBE.toNanos());
        assertTrue(decryptor.holdShareFetch(request(), V1), "the down fetch started the count again");
        assertTrue(decryptor.holdsShareFetch());

        now.addAndGet(PROBE.toNanos());
        assertFalse(decryptor.holdShareFetch(request(), V1), "second consecutive answered probe lifts the hold");
        assertFalse(decryptor.holdsShareFetch());
    }

    @Test
    void givenTwoDecryptorsSharingOneOutage_whenOneMeetsTheKmsDown_thenTheOtherHoldsToo() throws Exception {
        AtomicLong now = new AtomicLong();
        FetchDecryptor.KmsOutage outage = new FetchDecryptor.KmsOutage(now::get, PROBE, 2);
        TopicNames names = new TopicNames(TestLimits.CONFIG.maxTopicIds());
        names.learn(SECRET, "secret");
        FetchDecryptor first = new FetchDecryptor(new TopicPlans(policy), names, new ValueCrypto(cipher, policy), 1 << 20, 1 << 20,
                outage);
        FetchDecryptor second = new FetchDecryptor(new TopicPlans(policy), names, new ValueCrypto(cipher, policy), 1 << 20, 1 << 20,
                outage);
        cipher.kmsDown.set(true);

        first.decrypt(response());

        assertTrue(second.holdsShareFetch());
    }

    private static ShareFetchRequestData request() {
        ShareFetchRequestData.FetchTopicCollection topics = new ShareFetchRequestData.FetchTopicCollection();
        ShareFetchRequestData.FetchPartitionCollection partitions = new ShareFetchRequestData.FetchPartitionCollection();
        partitions.add(new ShareFetchRequestData.FetchPartition().setPartitionIndex(0));
        topics.add(new ShareFetchRequestData.FetchTopic().setTopicId(SECRET).setPartitions(partitions));
        return new ShareFetchRequestData().setGroupId("g").setMemberId("m").setShareSessionEpoch(3).setMaxWaitMs(500)
                .setMinBytes(1).setMaxBytes(52_428_800).setMaxRecords(500).setBatchSize(500).setTopics(topics);
    }

    private static ShareFetchResponseData response() {
        return new ShareFetchResponseData().setResponses(new ShareFetchResponseData.ShareFetchableTopicResponseCollection(
                List.of(new ShareFetchResponseData.ShareFetchableTopicResponse().setTopicId(SECRET).setPartitions(
                        new ArrayList<>(List.of(new ShareFetchResponseData.PartitionData().setPartitionIndex(0)
                                .setRecords(FakeEnvelopeCipher.records(Compression.NONE,
                                        FakeEnvelopeCipher.envelope("hello")))
                                .setAcquiredRecords(new ArrayList<>(List.of(new ShareFetchResponseData.AcquiredRecords()
                                        .setFirstOffset(0).setLastOffset(0).setDeliveryCount((short) 1))))))))
                        .iterator()));
    }
}
