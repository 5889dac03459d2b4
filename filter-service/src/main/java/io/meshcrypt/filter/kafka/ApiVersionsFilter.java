package io.meshcrypt.filter.kafka;

import io.meshcrypt.filter.codec.KafkaCodec;
import io.meshcrypt.filter.codec.KafkaCodec.Decoded;
import io.meshcrypt.filter.framing.KafkaFrameException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Iterator;
import java.util.function.ToIntFunction;
import org.apache.kafka.common.message.ApiVersionsResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.Errors;

/**
 * Keeps ApiVersions honest: a client is offered exactly the (api key, version) pairs the filter will let through,
 * which is the broker's range narrowed to what this kafka-clients knows and to what the API's rewriters can rewrite
 * (registered beside this one in the ApiRewriters registry, which hands their limits in). Every other version is
 * advertised as the broker does; an API left with no version (or unknown to kafka-clients) is removed, so a client
 * never picks something the filter would have to refuse.
 *
 * <p>Produce and Fetch stop at {@link TopicNames#LAST_VERSION_NAMING_TOPICS}: from v13 they name topics by id, and
 * the id-to-name mapping would have to come from the (untrusted) broker; see {@link TopicNames}. Immutable.
 */
final class ApiVersionsFilter implements ResponseRewriter<ApiVersionsResponseData> {
    private static final int MAX_ID = OfferedVersions.MAX_ID;

    private final ToIntFunction<ApiKeys> rewritable;
    private final OfferedVersions defaults;

    /** @param rewritable per API, the newest version its rewriters can rewrite ({@code Short.MAX_VALUE}: any) */
    ApiVersionsFilter(ToIntFunction<ApiKeys> rewritable) {
        this.rewritable = rewritable;
        this.defaults = versionsKnown();
    }

    /** Before ApiVersions: every version kafka-clients knows, capped by what the rewriters can rewrite. */
    OfferedVersions defaults() {
        return defaults;
    }

    private OfferedVersions versionsKnown() {
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
        return new OfferedVersions(min, max, false, rewritable);
    }

    /** The oldest version of {@code api} the filter offers: kafka-clients' oldest. */
    static short lowest(ApiKeys api) {
        return api.oldestVersion();
    }

    /** The newest version of {@code api} the filter lets through: kafka-clients' newest, capped by its rewriters. */
    short highest(ApiKeys api) {
        return (short) Math.min(api.latestVersion(true), rewritable.applyAsInt(api));
    }

    /** Narrows a successful ApiVersions response in place to what the filter lets through. */
    void clamp(ApiVersionsResponseData response) {
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

    /** @param clamped an ApiVersions response after {@link #clamp} */
    OfferedVersions offered(ApiVersionsResponseData clamped) {
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
        return new OfferedVersions(min, max, true, rewritable);
    }

    /** Clamps the broker's answer and makes what is left of it what the connection accepts from now on. */
    @Override
    public boolean rewrite(ApiVersionsResponseData response, short version, KafkaSession session) {
        if (response.errorCode() != Errors.NONE.code()) {
            // No list to narrow: the client retries at a version the broker named; the defaults stay.
            return false;
        }
        clamp(response);
        session.offer(offered(response));
        return true;
    }

    /** ApiVersions is the one request a client may send at a version newer than known (see OfferedVersions#allows). */
    @Override
    public void requireDecodable(ApiKeys api, short version) {
    }

    /**
     * A broker that does not support the client's ApiVersions version answers in v0 with UNSUPPORTED_VERSION (so the
     * client can retry lower); such an answer is decoded as v0, as Kafka clients do.
     */
    @Override
    public Decoded<ApiVersionsResponseData> decode(ByteBuffer frame, ApiKeys api, short version)
            throws KafkaFrameException {
        try {
            return KafkaCodec.decodeResponse(frame, api, version);
        } catch (KafkaFrameException e) {
            Decoded<ApiVersionsResponseData> v0 = KafkaCodec.decodeResponse(frame, api, (short) 0);
            if (v0.body().errorCode() == Errors.NONE.code()) {
                throw e;
            }
            return v0;
        }
    }
}
