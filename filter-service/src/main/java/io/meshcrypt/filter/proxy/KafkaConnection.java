package io.meshcrypt.filter.proxy;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import io.meshcrypt.filter.codec.KafkaCodec;
import io.meshcrypt.filter.codec.KafkaCodec.Decoded;
import io.meshcrypt.filter.framing.FrameAction;
import io.meshcrypt.filter.framing.FrameHandler;
import io.meshcrypt.filter.framing.FrameStream;
import io.meshcrypt.filter.framing.KafkaFrameException;
import io.meshcrypt.filter.transport.ConnectionHandler;
import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.Map;
import org.apache.kafka.common.message.ApiVersionsResponseData;
import org.apache.kafka.common.message.DescribeClusterResponseData;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.message.FindCoordinatorResponseData;
import org.apache.kafka.common.message.MetadataResponseData;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.message.ProduceResponseData;
import org.apache.kafka.common.message.ShareAcknowledgeResponseData;
import org.apache.kafka.common.message.ShareFetchResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.Errors;

/**
 * One client connection: frames both directions, decodes only the frames that need rewriting and passes
 * every other frame through byte for byte. Responses carry no api key, so the (api key, version) of each
 * request whose response needs rewriting is remembered by correlation id. Owned by one thread.
 */
final class KafkaConnection implements ConnectionHandler {
    /** Kafka clients keep a handful of requests in flight; many more means a broken or hostile peer. */
    private static final int MAX_IN_FLIGHT = 4096;

    private record InFlight(ApiKeys api, short version) {
    }

    private final KafkaProxy proxy;
    /** Where clients reach each broker through the Envoy listener of this connection. */
    private final BrokerAddressRewriter addresses;
    private final Map<Integer, InFlight> inFlight = new HashMap<>();
    private final FrameStream requests;
    private final FrameStream responses;
    private InFlight heldResponse;

    KafkaConnection(KafkaProxy proxy, BrokerAddressRewriter addresses) {
        this.proxy = proxy;
        this.addresses = addresses;
        this.requests = new FrameStream(KafkaCodec.REQUEST_HEAD_BYTES, proxy.maxFrameBytes, new RequestFrames());
        this.responses = new FrameStream(KafkaCodec.RESPONSE_HEAD_BYTES, proxy.maxFrameBytes, new ResponseFrames());
    }

    @Override
    public ByteString onRead(ByteString data, boolean endOfStream) throws KafkaFrameException {
        // An incomplete frame held at end of stream is dropped: the broker could not have used it, and a held
        // Produce frame is plaintext that must never be forwarded unrewritten.
        return requests.accept(data);
    }

    @Override
    public ByteString onWrite(ByteString data, boolean endOfStream) throws KafkaFrameException {
        return responses.accept(data);
    }

    @Override
    public ByteString resumeRead() throws KafkaFrameException {
        return requests.resume();
    }

    @Override
    public ByteString resumeWrite() throws KafkaFrameException {
        return responses.resume();
    }

    @Override
    public void onClose() {
        inFlight.clear();
    }

    private void track(int correlationId, ApiKeys api, short version) throws KafkaFrameException {
        if (inFlight.size() >= MAX_IN_FLIGHT) {
            throw new KafkaFrameException("more than " + MAX_IN_FLIGHT + " requests in flight on one connection");
        }
        inFlight.put(correlationId, new InFlight(api, version));
    }

    private final class RequestFrames implements FrameHandler {
        @Override
        public FrameAction onFrameStart(int size, ByteBuffer head) throws KafkaFrameException {
            if (size < KafkaCodec.REQUEST_HEAD_BYTES) {
                throw new KafkaFrameException("request frame of " + size + " bytes is shorter than a request header");
            }
            ApiKeys api = KafkaCodec.apiKeyOrNull(head.getShort(head.position()));
            if (api == null || !ApiVersionsFilter.DECODED.contains(api)) {
                return FrameAction.PASS;
            }
            short version = head.getShort(head.position() + 2);
            KafkaCodec.requireDecodable(api, version);
            if (api == ApiKeys.PRODUCE) {
                return FrameAction.REWRITE;
            }
            track(head.getInt(head.position() + 4), api, version);
            return FrameAction.PASS;
        }

        @Override
        public ByteString rewrite(ByteBuffer frame) throws KafkaFrameException {
            short version = frame.getShort(frame.position() + 2);
            int correlationId = frame.getInt(frame.position() + 4);
            Decoded<ProduceRequestData> produce = KafkaCodec.decodeRequest(frame, ApiKeys.PRODUCE, version);
            boolean changed = proxy.produce.encrypt(produce.body());
            // acks=0 has no response; only v10+ responses carry broker addresses (KIP-951 node endpoints).
            if (produce.body().acks() != 0 && version >= 10 && addresses.rewrites()) {
                track(correlationId, ApiKeys.PRODUCE, version);
            }
            return changed ? KafkaCodec.encode(produce) : original(frame);
        }
    }

    private final class ResponseFrames implements FrameHandler {
        @Override
        public FrameAction onFrameStart(int size, ByteBuffer head) throws KafkaFrameException {
            if (size < KafkaCodec.RESPONSE_HEAD_BYTES) {
                throw new KafkaFrameException("response frame of " + size + " bytes is shorter than a response header");
            }
            heldResponse = inFlight.remove(head.getInt(head.position()));
            return heldResponse == null ? FrameAction.PASS : FrameAction.REWRITE;
        }

        @Override
        public ByteString rewrite(ByteBuffer frame) throws KafkaFrameException {
            InFlight request = heldResponse;
            heldResponse = null;
            switch (request.api()) {
                case FETCH -> {
                    return rewritten(frame, request, (FetchResponseData r) -> {
                        proxy.fetch.decrypt(r, request.version());
                        addresses.rewrite(r);
                    });
                }
                case SHARE_FETCH -> {
                    return rewritten(frame, request, (ShareFetchResponseData r) -> {
                        proxy.fetch.decrypt(r);
                        addresses.rewrite(r);
                    });
                }
                case METADATA -> {
                    Decoded<MetadataResponseData> d = KafkaCodec.decodeResponse(frame, request.api(), request.version());
                    for (MetadataResponseData.MetadataResponseTopic t : d.body().topics()) {
                        proxy.topicNames.learn(t.topicId(), t.name());
                    }
                    if (!addresses.rewrites()) {
                        return original(frame);
                    }
                    addresses.rewrite(d.body());
                    return KafkaCodec.encode(d);
                }
                case FIND_COORDINATOR -> {
                    return rewritten(frame, request, (FindCoordinatorResponseData r) -> addresses.rewrite(r));
                }
                case DESCRIBE_CLUSTER -> {
                    return rewritten(frame, request, (DescribeClusterResponseData r) -> addresses.rewrite(r));
                }
                case SHARE_ACKNOWLEDGE -> {
                    return rewritten(frame, request, (ShareAcknowledgeResponseData r) -> addresses.rewrite(r));
                }
                case PRODUCE -> {
                    Decoded<ProduceResponseData> d = KafkaCodec.decodeResponse(frame, request.api(), request.version());
                    if (d.body().nodeEndpoints().isEmpty()) {
                        return original(frame);
                    }
                    addresses.rewrite(d.body());
                    return KafkaCodec.encode(d);
                }
                case API_VERSIONS -> {
                    Decoded<ApiVersionsResponseData> d = decodeApiVersions(frame, request.version());
                    if (d.body().errorCode() != Errors.NONE.code()) {
                        return original(frame);
                    }
                    ApiVersionsFilter.clamp(d.body());
                    return KafkaCodec.encode(d);
                }
                default -> throw new KafkaFrameException("no response rewrite for " + request.api());
            }
        }
    }

    @FunctionalInterface
    private interface BodyRewrite<T extends ApiMessage> {
        void apply(T body) throws KafkaFrameException;
    }

    private static <T extends ApiMessage> ByteString rewritten(ByteBuffer frame, InFlight request, BodyRewrite<T> rewrite)
            throws KafkaFrameException {
        Decoded<T> decoded = KafkaCodec.decodeResponse(frame, request.api(), request.version());
        rewrite.apply(decoded.body());
        return KafkaCodec.encode(decoded);
    }

    /**
     * A broker that does not support the client's ApiVersions version answers in v0 with UNSUPPORTED_VERSION
     * (so the client can retry lower); decode such an answer as v0, as Kafka clients do.
     */
    private static Decoded<ApiVersionsResponseData> decodeApiVersions(ByteBuffer frame, short version)
            throws KafkaFrameException {
        try {
            return KafkaCodec.decodeResponse(frame, ApiKeys.API_VERSIONS, version);
        } catch (KafkaFrameException e) {
            Decoded<ApiVersionsResponseData> v0 = KafkaCodec.decodeResponse(frame, ApiKeys.API_VERSIONS, (short) 0);
            if (v0.body().errorCode() == Errors.NONE.code()) {
                throw e;
            }
            return v0;
        }
    }

    /** The frame as it arrived, size field included. */
    private static ByteString original(ByteBuffer frame) {
        ByteBuffer out = ByteBuffer.allocate(4 + frame.remaining());
        out.putInt(frame.remaining()).put(frame.duplicate());
        return UnsafeByteOperations.unsafeWrap(out.array());
    }
}
