package io.meshcrypt.filter.kafka;

import java.util.Objects;

/**
 * The record rewriters of one policy, built from one {@link io.meshcrypt.filter.policy.TopicPlans}: swapped in whole on
 * a policy change, so that Produce and Fetch never see two policies at once.
 */
record RecordCrypto(ProduceEncryptor produce, FetchDecryptor fetch) {
    RecordCrypto {
        Objects.requireNonNull(produce, "produce");
        Objects.requireNonNull(fetch, "fetch");
    }
}
