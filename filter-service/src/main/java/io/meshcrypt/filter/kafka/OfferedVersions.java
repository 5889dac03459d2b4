package io.meshcrypt.filter.kafka;

import java.util.Arrays;
import java.util.function.ToIntFunction;
import org.apache.kafka.common.protocol.ApiKeys;

/**
 * The (api key, version) pairs one connection accepts in requests: {@link ApiVersionsFilter#defaults()} until the
 * broker's ApiVersions response passed, then exactly what {@link ApiVersionsFilter#clamp} left of it. Immutable.
 */
final class OfferedVersions {
    static final int MAX_ID = Arrays.stream(ApiKeys.values()).mapToInt(a -> a.id).max().orElse(0);

    /** Per api key id: the lowest and highest version accepted; -1 when none is. */
    private final short[] min;
    private final short[] max;
    private final boolean fromBroker;
    /** Per API, the newest version its rewriters can rewrite: named when a request is refused for being newer. */
    private final ToIntFunction<ApiKeys> rewritable;

    OfferedVersions(short[] min, short[] max, boolean fromBroker, ToIntFunction<ApiKeys> rewritable) {
        this.min = min;
        this.max = max;
        this.fromBroker = fromBroker;
        this.rewritable = rewritable;
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
        if (apiKey == ApiKeys.SASL_HANDSHAKE.id && version == 0) {
            // Offered, never let through: after v0 the client sends raw SASL tokens, which are not Kafka requests and
            // could not be checked. librdkafka only turns SASL on when ApiVersions offers v0, then sends v1.
            return false;
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
        if (api == ApiKeys.SASL_HANDSHAKE && version == 0) {
            return "SASL_HANDSHAKE v0 is never let through: after it a client sends raw SASL tokens, which are not Kafka"
                    + " requests; use a client that sends SaslHandshake v1 and SaslAuthenticate (every client since"
                    + " Kafka 1.0 and librdkafka 1.0)";
        }
        if (api == ApiKeys.API_VERSIONS || min[apiKey] < 0) {
            return api + " (api key " + apiKey + ") is not offered " + where;
        }
        String range = api + " v" + version + " is outside v" + min[apiKey] + "..v" + max[apiKey] + " offered " + where;
        if ((api == ApiKeys.PRODUCE || api == ApiKeys.FETCH) && version > rewritable.applyAsInt(api)) {
            range += "; Produce and Fetch stop at v" + rewritable.applyAsInt(api) + ", the last versions that name"
                    + " topics (a client must honour ApiVersions)";
        }
        return range;
    }
}
