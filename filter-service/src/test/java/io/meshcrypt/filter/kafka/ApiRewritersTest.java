package io.meshcrypt.filter.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.EnumSet;
import org.apache.kafka.common.protocol.ApiKeys;
import org.junit.jupiter.api.Test;

/** The registry of per-API rewriters: what is decoded, and what ApiVersions offers, derive from it. */
class ApiRewritersTest {
    private final ApiRewriters apis = ApiRewriters.STANDARD;

    @Test
    void givenTheStandardRegistry_whenAskedWhatIsDecoded_thenExactlyTheApisTheFilterRewrites() {
        assertEquals(EnumSet.of(ApiKeys.PRODUCE, ApiKeys.FETCH, ApiKeys.SHARE_FETCH, ApiKeys.SHARE_ACKNOWLEDGE,
                ApiKeys.METADATA, ApiKeys.FIND_COORDINATOR, ApiKeys.DESCRIBE_CLUSTER, ApiKeys.DESCRIBE_QUORUM, ApiKeys.API_VERSIONS),
                apis.decoded());
    }

    @Test
    void givenTheStandardRegistry_whenAskedPerDirection_thenOnlyProduceAndShareFetchRequestsAreRewritten() {
        assertNotNull(apis.request(ApiKeys.PRODUCE));
        assertNotNull(apis.request(ApiKeys.SHARE_FETCH));
        assertNull(apis.request(ApiKeys.FETCH), "Fetch requests pass byte for byte");
        assertNull(apis.response(ApiKeys.JOIN_GROUP), "no rewriter subscribes to JoinGroup");
    }

    @Test
    void givenTheStandardRegistry_whenEveryApiIsAskedPerDirection_thenExactlyTheFramesDecodedBeforeTheRegistryAreSubscribed() {
        // The requests and responses the filter decoded before the registry (RESPONSES_DECODED and the Produce and
        // ShareFetch requests in KafkaConnection); a frame no rewriter subscribes to passes undecoded.
        EnumSet<ApiKeys> requests = EnumSet.of(ApiKeys.PRODUCE, ApiKeys.SHARE_FETCH);
        EnumSet<ApiKeys> responses = EnumSet.of(ApiKeys.PRODUCE, ApiKeys.FETCH, ApiKeys.SHARE_FETCH,
                ApiKeys.SHARE_ACKNOWLEDGE, ApiKeys.METADATA, ApiKeys.FIND_COORDINATOR, ApiKeys.DESCRIBE_CLUSTER,
                ApiKeys.DESCRIBE_QUORUM, ApiKeys.API_VERSIONS);

        EnumSet<ApiKeys> subscribedRequests = EnumSet.noneOf(ApiKeys.class);
        EnumSet<ApiKeys> subscribedResponses = EnumSet.noneOf(ApiKeys.class);
        for (ApiKeys api : ApiKeys.values()) {
            if (apis.request(api) != null) {
                subscribedRequests.add(api);
            }
            if (apis.response(api) != null) {
                subscribedResponses.add(api);
            }
        }

        assertEquals(requests, subscribedRequests);
        assertEquals(responses, subscribedResponses);
    }

    @Test
    void givenProduceAndFetchRewriters_whenApiVersionsAsksTheNewestVersion_thenTheLastVersionsThatNameTopics() {
        assertEquals(TopicNames.LAST_VERSION_NAMING_TOPICS, apis.newestVersion(ApiKeys.PRODUCE));
        assertEquals(TopicNames.LAST_VERSION_NAMING_TOPICS, apis.newestVersion(ApiKeys.FETCH));
        assertEquals(TopicNames.LAST_VERSION_NAMING_TOPICS, apis.apiVersions().highest(ApiKeys.FETCH));
    }

    @Test
    void givenApisWithoutAVersionCap_whenApiVersionsAsksTheNewestVersion_thenKafkaClientsNewest() {
        assertEquals(Short.MAX_VALUE, apis.newestVersion(ApiKeys.METADATA));
        assertEquals(ApiKeys.METADATA.latestVersion(true), apis.apiVersions().highest(ApiKeys.METADATA));
        assertEquals(ApiKeys.SHARE_FETCH.latestVersion(true), apis.apiVersions().highest(ApiKeys.SHARE_FETCH));
    }
}
