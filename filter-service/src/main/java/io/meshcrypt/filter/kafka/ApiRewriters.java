package io.meshcrypt.filter.kafka;

import io.meshcrypt.filter.framing.KafkaFrameException;
import java.util.Collection;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.Map;
import java.util.Set;
import org.apache.kafka.common.message.DescribeClusterResponseData;
import org.apache.kafka.common.message.DescribeQuorumResponseData;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.message.FindCoordinatorResponseData;
import org.apache.kafka.common.message.MetadataResponseData;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.message.ProduceResponseData;
import org.apache.kafka.common.message.ShareAcknowledgeResponseData;
import org.apache.kafka.common.message.ShareFetchRequestData;
import org.apache.kafka.common.message.ShareFetchResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;

/**
 * The one registry of what the filter rewrites, per API and direction. A connection decodes exactly the frames some
 * rewriter here subscribes to and passes every other frame byte for byte; the versions ApiVersions offers are capped by
 * what these rewriters can rewrite ({@link #newestVersion}). Immutable.
 */
final class ApiRewriters {
    /** What this filter rewrites. */
    static final ApiRewriters STANDARD = standard();

    private final Map<ApiKeys, RequestRewriter<?>> requests;
    private final Map<ApiKeys, ResponseRewriter<?>> responses;
    private final ApiVersionsFilter apiVersions;

    private ApiRewriters(Map<ApiKeys, RequestRewriter<?>> requests, Map<ApiKeys, ResponseRewriter<?>> responses,
                         ApiVersionsFilter apiVersions) {
        this.requests = requests;
        this.responses = responses;
        this.apiVersions = apiVersions;
    }

    /** The ApiVersions response rewriter, which also says what a connection accepts before ApiVersions. */
    ApiVersionsFilter apiVersions() {
        return apiVersions;
    }

    /** @return the rewriter of {@code api}'s requests, or null when they always pass */
    @SuppressWarnings("unchecked")
    RequestRewriter<ApiMessage> request(ApiKeys api) {
        return (RequestRewriter<ApiMessage>) requests.get(api);
    }

    /** @return the rewriter of {@code api}'s responses, or null when they always pass */
    @SuppressWarnings("unchecked")
    ResponseRewriter<ApiMessage> response(ApiKeys api) {
        return (ResponseRewriter<ApiMessage>) responses.get(api);
    }

    /** The APIs whose requests a rewriter here may decode. */
    Set<ApiKeys> requestApis() {
        return requests.keySet();
    }

    /** The APIs whose responses a rewriter here may decode. */
    Set<ApiKeys> responseApis() {
        return responses.keySet();
    }

    /** The APIs some of whose requests or responses are decoded. */
    Set<ApiKeys> decoded() {
        Set<ApiKeys> apis = EnumSet.noneOf(ApiKeys.class);
        apis.addAll(requests.keySet());
        apis.addAll(responses.keySet());
        return apis;
    }

    /** The newest version of {@code api} both of its rewriters can rewrite ({@code Short.MAX_VALUE}: no limit). */
    short newestVersion(ApiKeys api) {
        return newestVersion(requests, responses, api);
    }

    private static short newestVersion(Map<ApiKeys, RequestRewriter<?>> requests,
                                       Map<ApiKeys, ResponseRewriter<?>> responses, ApiKeys api) {
        RequestRewriter<?> request = requests.get(api);
        ResponseRewriter<?> response = responses.get(api);
        return (short) Math.min(request == null ? Short.MAX_VALUE : request.newestVersion(),
                response == null ? Short.MAX_VALUE : response.newestVersion());
    }

    private static ApiRewriters standard() {
        Map<ApiKeys, RequestRewriter<?>> requests = new EnumMap<>(ApiKeys.class);
        Map<ApiKeys, ResponseRewriter<?>> responses = new EnumMap<>(ApiKeys.class);

        requests.put(ApiKeys.PRODUCE, new RequestRewriter<ProduceRequestData>() {
            @Override
            public boolean decodes(short version, KafkaSession s) {
                return true;
            }

            @Override
            public boolean rewrite(ProduceRequestData request, short version, KafkaSession s) throws KafkaFrameException {
                return s.produce().encrypt(request, s);
            }

            @Override
            public boolean answered(ProduceRequestData request) {
                return request.acks() != 0;
            }

            @Override
            public short newestVersion() {
                return TopicNames.LAST_VERSION_NAMING_TOPICS;
            }
        });
        responses.put(ApiKeys.PRODUCE, new ResponseRewriter<ProduceResponseData>() {
            @Override
            public boolean decodes(short version, KafkaSession s) {
                // Only v10+ responses carry broker addresses (KIP-951 node endpoints); any version may need the
                // answers of topics the policy refused added.
                return version >= 10 && s.addresses().rewrites() || s.refusesInResponse();
            }

            @Override
            public boolean rewrite(ProduceResponseData response, short version, KafkaSession s) throws KafkaFrameException {
                boolean refused = ProduceEncryptor.answerRefused(response, s.refusedInRequest());
                return nodeEndpoints(s, response.nodeEndpoints(), () -> s.addresses().rewrite(response)) || refused;
            }
        });

        responses.put(ApiKeys.FETCH, new ResponseRewriter<FetchResponseData>() {
            @Override
            public boolean rewrite(FetchResponseData response, short version, KafkaSession s) throws KafkaFrameException {
                // Pass-through topics' batches are left as they are.
                boolean decrypted = s.fetch().decrypt(response, version, s.identity(), s.audit());
                return nodeEndpoints(s, response.nodeEndpoints(), () -> s.addresses().rewrite(response)) || decrypted;
            }

            @Override
            public short newestVersion() {
                return TopicNames.LAST_VERSION_NAMING_TOPICS;
            }
        });

        // While the KMS is unreachable, ShareFetch requests are rewritten so that the broker acquires nothing
        // (FetchDecryptor#holdShareFetch): acquiring records that cannot be decrypted costs them a delivery.
        requests.put(ApiKeys.SHARE_FETCH, new RequestRewriter<ShareFetchRequestData>() {
            @Override
            public boolean decodes(short version, KafkaSession s) {
                return s.fetch().holdsShareFetch();
            }

            @Override
            public boolean rewrite(ShareFetchRequestData request, short version, KafkaSession s) {
                return s.fetch().holdShareFetch(request, version);
            }
        });
        responses.put(ApiKeys.SHARE_FETCH, (ShareFetchResponseData response, short version, KafkaSession s) -> {
            boolean decrypted = s.fetch().decrypt(response, s.identity(), s.audit());
            return nodeEndpoints(s, response.nodeEndpoints(), () -> s.addresses().rewrite(response)) || decrypted;
        });

        responses.put(ApiKeys.METADATA, (MetadataResponseData response, short version, KafkaSession s) -> {
            // Trusted only as far as TopicNames explains: a conflicting mapping throws (closes this connection) and
            // poisons the id; Produce and Fetch never use these mappings.
            for (MetadataResponseData.MetadataResponseTopic t : response.topics()) {
                s.topicNames().learn(t.topicId(), t.name());
            }
            if (!s.addresses().rewrites()) {
                return false;
            }
            s.addresses().rewrite(response);
            return true;
        });
        responses.put(ApiKeys.FIND_COORDINATOR, (FindCoordinatorResponseData response, short version, KafkaSession s) -> {
            s.addresses().rewrite(response);
            return true;
        });
        responses.put(ApiKeys.DESCRIBE_CLUSTER, (DescribeClusterResponseData response, short version, KafkaSession s) -> {
            s.addresses().rewrite(response);
            return true;
        });
        responses.put(ApiKeys.DESCRIBE_QUORUM, (DescribeQuorumResponseData response, short version, KafkaSession s) ->
                s.addresses().rewrite(response));
        responses.put(ApiKeys.SHARE_ACKNOWLEDGE, (ShareAcknowledgeResponseData response, short version, KafkaSession s) -> {
            s.addresses().rewrite(response);
            return true;
        });

        ApiVersionsFilter apiVersions = new ApiVersionsFilter(api -> newestVersion(requests, responses, api));
        responses.put(ApiKeys.API_VERSIONS, apiVersions);
        return new ApiRewriters(requests, responses, apiVersions);
    }

    @FunctionalInterface
    private interface AddressRewrite {
        void run() throws KafkaFrameException;
    }

    /** Rewrites the KIP-951 node endpoints a response carries, if any; @return whether it did */
    private static boolean nodeEndpoints(KafkaSession s, Collection<?> endpoints, AddressRewrite rewrite)
            throws KafkaFrameException {
        if (!s.addresses().rewrites() || endpoints.isEmpty()) {
            return false;
        }
        rewrite.run();
        return true;
    }
}
