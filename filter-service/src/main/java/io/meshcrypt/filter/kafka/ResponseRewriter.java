package io.meshcrypt.filter.kafka;

import io.meshcrypt.filter.codec.KafkaCodec;
import io.meshcrypt.filter.framing.KafkaFrameException;
import java.nio.ByteBuffer;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;

/**
 * Rewrites the responses of one Kafka API in place, registered in {@link ApiRewriters}. Whether a response is decoded
 * is decided when its request passes ({@link #decodes}); every other response passes byte for byte.
 */
interface ResponseRewriter<T extends ApiMessage> {
    /** Whether the response to a request of this version is decoded on {@code session}. */
    default boolean decodes(short version, KafkaSession session) {
        return true;
    }

    /** @return whether {@code response} changed; when false the frame is forwarded as it arrived */
    boolean rewrite(T response, short version, KafkaSession session) throws KafkaFrameException;

    /** Fails, when the request passes, if the response to {@code version} could not be decoded. */
    default void requireDecodable(ApiKeys api, short version) throws KafkaFrameException {
        KafkaCodec.requireDecodable(api, version);
    }

    default KafkaCodec.Decoded<T> decode(ByteBuffer frame, ApiKeys api, short version) throws KafkaFrameException {
        return KafkaCodec.decodeResponse(frame, api, version);
    }

    /** The newest request version whose response this rewriter can rewrite; ApiVersions offers no newer one. */
    default short newestVersion() {
        return Short.MAX_VALUE;
    }
}
