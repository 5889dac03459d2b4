package io.meshcrypt.filter.proxy;

import java.util.EnumSet;
import java.util.Iterator;
import java.util.Set;
import org.apache.kafka.common.message.ApiVersionsResponseData;
import org.apache.kafka.common.protocol.ApiKeys;

/**
 * Keeps ApiVersions honest: every other API is advertised exactly as the broker does, while APIs this
 * filter decodes are capped at the versions its codec knows, so a client never picks a Produce or Fetch
 * version the filter would have to refuse. An API whose oldest broker version is already too new is removed.
 */
final class ApiVersionsFilter {
    /** The APIs whose requests or responses this filter decodes. */
    static final Set<ApiKeys> DECODED = EnumSet.of(ApiKeys.PRODUCE, ApiKeys.FETCH, ApiKeys.SHARE_FETCH,
            ApiKeys.SHARE_ACKNOWLEDGE, ApiKeys.METADATA, ApiKeys.FIND_COORDINATOR, ApiKeys.DESCRIBE_CLUSTER,
            ApiKeys.API_VERSIONS);

    private ApiVersionsFilter() {
    }

    static void clamp(ApiVersionsResponseData response) {
        Iterator<ApiVersionsResponseData.ApiVersion> it = response.apiKeys().iterator();
        while (it.hasNext()) {
            ApiVersionsResponseData.ApiVersion v = it.next();
            if (!ApiKeys.hasId(v.apiKey())) {
                continue;
            }
            ApiKeys api = ApiKeys.forId(v.apiKey());
            if (!DECODED.contains(api)) {
                continue;
            }
            short highest = api.latestVersion(true);
            if (v.minVersion() > highest) {
                it.remove();
            } else if (v.maxVersion() > highest) {
                v.setMaxVersion(highest);
            }
        }
    }
}
