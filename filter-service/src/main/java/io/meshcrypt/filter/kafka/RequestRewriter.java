package io.meshcrypt.filter.kafka;

import io.meshcrypt.filter.framing.KafkaFrameException;
import org.apache.kafka.common.protocol.ApiMessage;

/**
 * Rewrites the requests of one Kafka API in place, registered in {@link ApiRewriters}. A connection holds and decodes
 * a request only when its API's rewriter {@link #decodes} it; every other request passes byte for byte.
 */
interface RequestRewriter<T extends ApiMessage> {
    /** Whether a request of this version is held and decoded on {@code session}; decided from the frame's head. */
    boolean decodes(short version, KafkaSession session);

    /**
     * @return whether {@code request} changed; when false the frame is forwarded as it arrived
     * @throws io.meshcrypt.filter.framing.RewriteDeferred to retry the frame later, from its original bytes
     */
    boolean rewrite(T request, short version, KafkaSession session) throws KafkaFrameException;

    /** Whether the broker answers this request (Produce with acks=0 is not answered). */
    default boolean answered(T request) {
        return true;
    }

    /** The newest version this rewriter can rewrite; ApiVersions offers no newer one. */
    default short newestVersion() {
        return Short.MAX_VALUE;
    }
}
