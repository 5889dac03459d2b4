package io.meshcrypt.filter.policy;

import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The {@link TopicPlan}s of one policy, cached: the one cache the Kafka path consults, once per partition. A policy
 * change builds a new {@code TopicPlans} (swapped in whole by its user), so a cached plan never outlives its policy.
 * Topic names come from clients and brokers, so the cache is bounded: when full it is cleared, which only costs
 * resolving the plans again. Thread-safe.
 */
public final class TopicPlans {
    static final int MAX_TOPICS = 10_000;

    private final EncryptionPolicy policy;
    private final ConcurrentHashMap<String, TopicPlan> plans = new ConcurrentHashMap<>();

    public TopicPlans(EncryptionPolicy policy) {
        this.policy = Objects.requireNonNull(policy, "policy");
    }

    public EncryptionPolicy policy() {
        return policy;
    }

    public TopicPlan of(String topic) {
        TopicPlan plan = plans.get(topic);
        if (plan == null) {
            plan = TopicPlan.resolve(policy, topic);
            if (plans.size() >= MAX_TOPICS) {
                plans.clear();
            }
            plans.put(topic, plan);
        }
        return plan;
    }
}
