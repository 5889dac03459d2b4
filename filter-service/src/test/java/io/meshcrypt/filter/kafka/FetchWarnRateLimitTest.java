package io.meshcrypt.filter.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.policy.TopicPlans;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy.Unmatched;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.junit.jupiter.api.Test;

/** A consumer stuck on an undecryptable record must not flood the log with one WARN per partition per fetch. */
class FetchWarnRateLimitTest {
    private static final Duration INTERVAL = Duration.ofSeconds(30);

    private final FakeEnvelopeCipher cipher = new FakeEnvelopeCipher();
    private final EncryptionPolicy policy = EncryptionPolicy.of(List.of("secret-*"), Unmatched.PASSTHROUGH);
    private final AtomicLong now = new AtomicLong();
    private final List<String> warnings = new ArrayList<>();
    private final FetchDecryptor decryptor = new FetchDecryptor(new TopicPlans(policy), new TopicNames(TestLimits.CONFIG.maxTopicIds()), new ValueCrypto(cipher, policy),
            1 << 20, TestLimits.CONFIG.maxFrameBytes(), new FetchDecryptor.WarnLimiter(INTERVAL, 3, now::get), warnings::add, now::get, Duration.ofSeconds(5));

    @Test
    void givenTheSameCorruptPartitionFetched100Times_whenDecrypted_thenOneWarningThenOneSummaryWithTheCount() throws Exception {
        for (int i = 0; i < 100; i++) {
            FetchResponseData response = corrupt("secret-a", 0);
            decryptor.decrypt(response, (short) 12);
            assertEquals(Errors.CORRUPT_MESSAGE.code(), response.responses().get(0).partitions().get(0).errorCode());
        }
        assertEquals(1, warnings.size(), warnings.toString());
        assertTrue(warnings.get(0).startsWith("fetch \"secret-a\"-0 at offset 0: "), warnings.get(0));

        now.addAndGet(INTERVAL.toNanos());
        decryptor.decrypt(corrupt("secret-a", 0), (short) 12);

        assertEquals(List.of("fetch errors not logged one by one in the last 30 s: 100 CORRUPT_MESSAGE,"
                + " 0 KAFKA_STORAGE_ERROR (KMS unreachable), 0 UNKNOWN_TOPIC_ID partition answers"), warnings.subList(1, 2));
    }

    @Test
    void givenDistinctPartitionsAndReasons_whenFirstSeen_thenEachIsLoggedOnceUpToTheBound() throws Exception {
        decryptor.decrypt(corrupt("secret-a", 0), (short) 12);
        decryptor.decrypt(corrupt("secret-a", 1), (short) 12);
        cipher.kmsDown.set(true);
        decryptor.decrypt(valid("secret-a", 0), (short) 12);
        decryptor.decrypt(corrupt("secret-b", 0), (short) 12);  // fourth key: beyond the bound of 3, only counted

        assertEquals(3, warnings.size(), warnings.toString());
        assertTrue(warnings.get(2).contains("answering KAFKA_STORAGE_ERROR"), warnings.get(2));
    }

    @Test
    void givenNoErrorsSinceTheLastSummary_whenIntervalPasses_thenNoSummaryLine() throws Exception {
        FetchDecryptor.WarnLimiter limiter = new FetchDecryptor.WarnLimiter(INTERVAL, 10, now::get);
        assertTrue(limiter.first("t", 0, FetchDecryptor.WarnLimiter.Reason.CORRUPT));
        now.addAndGet(INTERVAL.toNanos());

        assertNull(limiter.summaryDue());
    }

    @Test
    void givenAPartitionReportedLongAgo_whenItFailsAgainAfterTheForgetPeriod_thenItIsLoggedInFullAgain() throws Exception {
        FetchDecryptor.WarnLimiter limiter = new FetchDecryptor.WarnLimiter(INTERVAL, 10, now::get);
        assertTrue(limiter.first("t", 0, FetchDecryptor.WarnLimiter.Reason.CORRUPT));
        assertEquals(false, limiter.first("t", 0, FetchDecryptor.WarnLimiter.Reason.CORRUPT));
        now.addAndGet(FetchDecryptor.WarnLimiter.FORGET_AFTER.toNanos());
        limiter.summaryDue();

        assertTrue(limiter.first("t", 0, FetchDecryptor.WarnLimiter.Reason.CORRUPT));
    }

    private static FetchResponseData corrupt(String topic, int partition) {
        return response(topic, partition, FakeEnvelopeCipher.records(Compression.NONE, "not an envelope".getBytes()));
    }

    private static FetchResponseData valid(String topic, int partition) {
        return response(topic, partition, FakeEnvelopeCipher.records(Compression.NONE, FakeEnvelopeCipher.envelope("x")));
    }

    private static FetchResponseData response(String topic, int partition, MemoryRecords records) {
        return new FetchResponseData().setResponses(new ArrayList<>(List.of(
                new FetchResponseData.FetchableTopicResponse().setTopic(topic).setPartitions(new ArrayList<>(List.of(
                        new FetchResponseData.PartitionData().setPartitionIndex(partition).setRecords(records)))))));
    }
}
