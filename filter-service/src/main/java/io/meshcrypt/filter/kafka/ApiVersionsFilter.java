package io.meshcrypt.filter.kafka;

import java.util.Arrays;
import java.util.Iterator;
import org.apache.kafka.common.message.ApiVersionsResponseData;
import org.apache.kafka.common.protocol.ApiKeys;

/**
 * Keeps ApiVersions honest: a client is offered exactly the (api key, version) pairs the filter will let through,
 * which is the broker's range narrowed to what this kafka-clients knows and to what the API's rewriters in {@link
 * ApiRewriters} can rewrite (Produce and Fetch: {@link #PRODUCE_FETCH_MAX}). Every other version is advertised as the
 * broker does; an API left with no version (or unknown to kafka-clients) is removed, so a client never picks something the filter would have to refuse.
 *
 * <p>Produce and Fetch stop at v12, the last versions that name topics: from v13 they name topics by id, and the
 * id-to-name mapping would have to come from the (untrusted) broker; see {@link TopicNames}.
 */
final class ApiVersionsFilter {
    /** The newest Produce and Fetch versions offered: the last ones that name topics by name. */
    static final short PRODUCE_FETCH_MAX = 12;

    private ApiVersionsFilter() {
    }

    /** The oldest version of {@code api} the filter lets through: kafka-clients' oldest. */
    static short lowest(ApiKeys api) {
        return api.oldestVersion();
    }

    /** The newest version of {@code api} the filter lets through: kafka-clients' newest, capped by its rewriters. */
    static short highest(ApiKeys api) {
        return (short) Math.min(api.latestVersion(true), ApiRewriters.STANDARD.newestVersion(api));
    }

    /** Narrows a successful ApiVersions response in place to what the filter lets through. */
    static void clamp(ApiVersionsResponseData response) {
        Iterator<ApiVersionsResponseData.ApiVersion> it = response.apiKeys().iterator();
        while (it.hasNext()) {
            ApiVersionsResponseData.ApiVersion v = it.next();
            if (!ApiKeys.hasId(v.apiKey())) {
                // Requests with an api key kafka-clients does not know are refused (their bytes cannot be checked).
                it.remove();
                continue;
            }
            ApiKeys api = ApiKeys.forId(v.apiKey());
            short lo = (short) Math.max(v.minVersion(), lowest(api));
            short hi = (short) Math.min(v.maxVersion(), highest(api));
            if (lo > hi) {
                it.remove();
            } else {
                v.setMinVersion(lo).setMaxVersion(hi);
            }
        }
    }

    /**
     * The (api key, version) pairs one connection accepts in requests: {@link #DEFAULTS} until the broker's
     * ApiVersions response passed, then exactly what {@link #clamp} left of it. Immutable.
     */
    static final class Offered {
        private static final int MAX_ID = Arrays.stream(ApiKeys.values()).mapToInt(a -> a.id).max().orElse(0);

        /** Before ApiVersions: every version kafka-clients knows, Produce and Fetch capped. */
        static final Offered DEFAULTS = defaults();

        /** Per api key id: the lowest and highest version accepted; -1 when none is. */
        private final short[] min;
        private final short[] max;
        private final boolean fromBroker;

        private Offered(short[] min, short[] max, boolean fromBroker) {
            this.min = min;
            this.max = max;
            this.fromBroker = fromBroker;
        }

        private static Offered defaults() {
            short[] min = new short[MAX_ID + 1];
            short[] max = new short[MAX_ID + 1];
            Arrays.fill(min, (short) -1);
            Arrays.fill(max, (short) -1);
            for (ApiKeys api : ApiKeys.values()) {
                if (lowest(api) <= highest(api)) {
                    min[api.id] = lowest(api);
                    max[api.id] = highest(api);
                }
            }
            return new Offered(min, max, false);
        }

        /** @param clamped an ApiVersions response after {@link #clamp} */
        static Offered of(ApiVersionsResponseData clamped) {
            short[] min = new short[MAX_ID + 1];
            short[] max = new short[MAX_ID + 1];
            Arrays.fill(min, (short) -1);
            Arrays.fill(max, (short) -1);
            for (ApiVersionsResponseData.ApiVersion v : clamped.apiKeys()) {
                if (v.apiKey() >= 0 && v.apiKey() <= MAX_ID && v.minVersion() >= 0 && v.minVersion() <= v.maxVersion()) {
                    min[v.apiKey()] = v.minVersion();
                    max[v.apiKey()] = v.maxVersion();
                }
            }
            return new Offered(min, max, true);
        }

        /**
         * Whether a request of this api key and version may pass. ApiVersions is the one request Kafka lets a
         * client send at a version the broker may not know (the broker then answers v0 UNSUPPORTED_VERSION with its
         * range); it passes at any version from its oldest on, and its response is checked instead.
         */
        boolean allows(short apiKey, short version) {
            if (apiKey < 0 || apiKey > MAX_ID || version < 0) {
                return false;
            }
            if (apiKey == ApiKeys.API_VERSIONS.id) {
                return version >= ApiKeys.API_VERSIONS.oldestVersion();
            }
            return min[apiKey] >= 0 && version >= min[apiKey] && version <= max[apiKey];
        }

        /** Why {@link #allows} said no, for the log line that closes the connection. */
        String refusal(short apiKey, short version) {
            if (!ApiKeys.hasId(apiKey)) {
                return "api key " + apiKey + " is not a Kafka API this filter knows";
            }
            ApiKeys api = ApiKeys.forId(apiKey);
            if (version < 0) {
                return api + " with the negative version " + version;
            }
            String where = fromBroker ? "in the ApiVersions response this connection received"
                    : "before ApiVersions (the versions kafka-clients knows)";
            if (api == ApiKeys.API_VERSIONS || min[apiKey] < 0) {
                return api + " (api key " + apiKey + ") is not offered " + where;
            }
            String range = api + " v" + version + " is outside v" + min[apiKey] + "..v" + max[apiKey] + " offered " + where;
            if (version > ApiRewriters.STANDARD.newestVersion(api)) {
                range += "; Produce and Fetch stop at v" + PRODUCE_FETCH_MAX + ", the last versions that name topics"
                        + " (a client must honour ApiVersions)";
            }
            return range;
        }
    }
}
