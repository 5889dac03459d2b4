package io.meshcrypt.filter.kafka;

import io.meshcrypt.filter.audit.AccessAudit;
import java.util.List;
import org.apache.kafka.common.message.ProduceResponseData;

/** What a per-API rewriter may use of the connection it runs on. */
interface KafkaSession {
    /** The workload identity the filter-service authenticated on this connection's stream, or null. */
    String identity();

    /** Where this connection reports what it did with covered topics. */
    AccessAudit audit();

    /**
     * The Produce request being rewritten had these topics taken out (refused by the policy): the broker never sees
     * them, so their answers are added to the broker's response ({@link #refusedInRequest}).
     */
    void refuseInResponse(List<ProduceResponseData.TopicProduceResponse> refused);

    /** While the request being rewritten is a Produce: whether {@link #refuseInResponse} was called for it. */
    boolean refusesInResponse();

    /** While a Produce response is rewritten: the answers of the topics its request had taken out, or null. */
    List<ProduceResponseData.TopicProduceResponse> refusedInRequest();

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
