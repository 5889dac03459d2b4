package io.meshcrypt.filter.kafka;

/** What a per-API rewriter may use of the connection it runs on. */
interface KafkaSession {
    /** Where clients reach each broker through this connection's Envoy listener. */
    BrokerAddressRewriter addresses();

    /** The Produce rewriter of the policy in force (read per frame: a policy change applies from the next frame). */
    ProduceEncryptor produce();

    /** The Fetch and ShareFetch rewriter of the policy in force (read per frame, like {@link #produce}). */
    FetchDecryptor fetch();

    TopicNames topicNames();

    /** From now on, requests may be what the broker's ApiVersions response, as passed on, offered. */
    void offer(OfferedVersions offered);
}
