package io.meshcrypt.meshconfig.policy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.meshcrypt.meshconfig.policy.EncryptionPolicy.Unmatched;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

class EncryptionPolicyTest {

    @Test
    void givenDefaultPolicy_whenAnyTopicDecided_thenEncrypt() {
        EncryptionPolicy policy = EncryptionPolicy.encryptAll();

        assertEquals(TopicDecision.ENCRYPT, policy.decide("orders"));
        assertEquals(TopicDecision.ENCRYPT, policy.decide("__consumer_offsets"));
        assertEquals(TopicDecision.ENCRYPT, policy.decide(""));
        assertEquals(List.of("*"), policy.patterns());
    }

    @Test
    void givenStarGlob_whenDecided_thenMatchesAnyRunIncludingEmpty() {
        EncryptionPolicy policy = EncryptionPolicy.of(List.of("pay*"), Unmatched.PASSTHROUGH);

        assertEquals(TopicDecision.ENCRYPT, policy.decide("pay"));
        assertEquals(TopicDecision.ENCRYPT, policy.decide("payments.eu-1"));
        assertEquals(TopicDecision.PASSTHROUGH, policy.decide("repay"));
    }

    @Test
    void givenQuestionMarkGlob_whenDecided_thenMatchesExactlyOneChar() {
        EncryptionPolicy policy = EncryptionPolicy.of(List.of("log-?"), Unmatched.PASSTHROUGH);

        assertEquals(TopicDecision.ENCRYPT, policy.decide("log-1"));
        assertEquals(TopicDecision.PASSTHROUGH, policy.decide("log-"));
        assertEquals(TopicDecision.PASSTHROUGH, policy.decide("log-12"));
    }

    @Test
    void givenRegexMetacharactersInGlob_whenDecided_thenTreatedLiterally() {
        EncryptionPolicy policy = EncryptionPolicy.of(List.of("a.b", "x+[y]\\E.*"), Unmatched.PASSTHROUGH);

        assertEquals(TopicDecision.ENCRYPT, policy.decide("a.b"));
        assertEquals(TopicDecision.PASSTHROUGH, policy.decide("aXb"));
        assertEquals(TopicDecision.ENCRYPT, policy.decide("x+[y]\\E.anything"));
        assertEquals(TopicDecision.PASSTHROUGH, policy.decide("xx[y]\\E.anything"));
        assertEquals(TopicDecision.PASSTHROUGH, policy.decide("x+[y]\\Eanything"));
    }

    @Test
    void givenSeveralPatterns_whenDecided_thenAnyMatchEncrypts() {
        EncryptionPolicy policy = EncryptionPolicy.of(List.of("orders", "pii.*"), Unmatched.PASSTHROUGH);

        assertEquals(TopicDecision.ENCRYPT, policy.decide("orders"));
        assertEquals(TopicDecision.ENCRYPT, policy.decide("pii.users"));
        assertEquals(TopicDecision.PASSTHROUGH, policy.decide("orders2"));
    }

    @Test
    void givenRejectUnmatched_whenUnmatchedTopicDecided_thenReject() {
        EncryptionPolicy policy = EncryptionPolicy.of(List.of("secure-*"), Unmatched.REJECT);

        assertEquals(TopicDecision.ENCRYPT, policy.decide("secure-a"));
        assertEquals(TopicDecision.REJECT, policy.decide("public"));
        assertEquals(TopicDecision.REJECT, policy.decide("public"), "cached decision is the same");
    }

    @Test
    void givenEmptyPatternOrList_whenCreated_thenRejected() {
        assertThrows(IllegalArgumentException.class, () -> EncryptionPolicy.of(List.of(), Unmatched.PASSTHROUGH));
        assertThrows(IllegalArgumentException.class, () -> EncryptionPolicy.of(List.of("a", ""), Unmatched.PASSTHROUGH));
    }

    @Test
    void givenMoreTopicsThanCacheHolds_whenDecided_thenDecisionsStayCorrect() {
        EncryptionPolicy policy = EncryptionPolicy.of(List.of("even-*"), Unmatched.REJECT);

        for (int i = 0; i < 25_000; i++) {
            String topic = (i % 2 == 0 ? "even-" : "odd-") + i;
            assertEquals(i % 2 == 0 ? TopicDecision.ENCRYPT : TopicDecision.REJECT, policy.decide(topic), topic);
        }
    }

    @Test
    void givenConcurrentCallers_whenDeciding_thenAllAgree() throws Exception {
        EncryptionPolicy policy = EncryptionPolicy.of(List.of("t-1*"), Unmatched.PASSTHROUGH);
        ExecutorService pool = Executors.newFixedThreadPool(8);
        try {
            List<Callable<List<TopicDecision>>> tasks = new ArrayList<>(Collections.nCopies(8, () -> {
                List<TopicDecision> out = new ArrayList<>();
                for (int i = 0; i < 2_000; i++) {
                    out.add(policy.decide("t-" + i));
                }
                return out;
            }));
            for (Future<List<TopicDecision>> f : pool.invokeAll(tasks)) {
                List<TopicDecision> out = f.get();
                for (int i = 0; i < out.size(); i++) {
                    TopicDecision expected = String.valueOf(i).startsWith("1") ? TopicDecision.ENCRYPT : TopicDecision.PASSTHROUGH;
                    assertEquals(expected, out.get(i));
                }
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void givenSamePatterns_whenCompared_thenEqual() {
        assertEquals(EncryptionPolicy.encryptAll(), EncryptionPolicy.of(List.of("*"), Unmatched.PASSTHROUGH));
        assertEquals("EncryptionPolicy{encrypt=[*], unmatched=passthrough}", EncryptionPolicy.encryptAll().toString());
    }
}
