package io.meshcrypt.filter.policy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy.Unmatched;
import io.meshcrypt.meshconfig.policy.TopicDecision;
import io.meshcrypt.meshconfig.policy.TopicRule;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The resolved per-topic plan, and its one cache. */
class TopicPlansTest {
    private static final JsonPointer CARD = JsonPointer.parse("/card");

    private final TopicPlans plans = new TopicPlans(EncryptionPolicy.ofRules(
            List.of(new TopicRule("pay-*", List.of(CARD), true), TopicRule.wholeValue("orders")), List.of("old-*"),
            Unmatched.REJECT));

    @Test
    void givenFieldRuleWithDeterministicKeys_whenPlanned_thenEncryptedWithThoseFieldsAndKeys() {
        TopicPlan plan = plans.of("pay-eu");

        assertEquals(new TopicPlan(TopicDecision.ENCRYPT, false, List.of(CARD), true), plan);
        assertTrue(plan.decryptsOnFetch());
    }

    @Test
    void givenWholeValueRule_whenPlanned_thenEncryptedWithoutFieldsOrKeys() {
        assertEquals(new TopicPlan(TopicDecision.ENCRYPT, false, List.of(), false), plans.of("orders"));
    }

    @Test
    void givenDecryptOnlyTopicWhileUnmatchedIsReject_whenPlanned_thenProduceRejectsAndFetchStillDecrypts() {
        TopicPlan plan = plans.of("old-orders");

        assertEquals(TopicDecision.REJECT, plan.decision());
        assertTrue(plan.decryptOnly());
        assertTrue(plan.decryptsOnFetch());
        assertFalse(plan.encrypts());
        assertEquals(List.of(), plan.fields());
    }

    @Test
    void givenUnmatchedTopic_whenPlanned_thenNothingIsDecryptedOnFetch() {
        TopicPlan plan = new TopicPlans(EncryptionPolicy.of(List.of("secret"), Unmatched.PASSTHROUGH)).of("public");

        assertEquals(TopicDecision.PASSTHROUGH, plan.decision());
        assertFalse(plan.decryptsOnFetch());
    }

    @Test
    void givenATopicPlannedBefore_whenPlannedAgain_thenTheCachedPlanIsReturned() {
        assertSame(plans.of("orders"), plans.of("orders"));
    }

    @Test
    void givenMoreTopicsThanTheCacheHolds_whenPlanned_thenEveryPlanIsStillRight() {
        for (int i = 0; i <= TopicPlans.MAX_TOPICS; i++) {
            plans.of("t" + i);
        }

        assertEquals(TopicDecision.REJECT, plans.of("t0").decision());
        assertTrue(plans.of("pay-x").deterministicKeys());
    }
}
