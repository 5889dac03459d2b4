package io.meshcrypt.filter.kafka;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import io.meshcrypt.filter.codec.KafkaCodec;
import io.meshcrypt.filter.codec.KafkaCodec.Decoded;
import io.meshcrypt.filter.framing.FrameAction;
import io.meshcrypt.filter.framing.FrameHandler;
import io.meshcrypt.filter.framing.FrameStream;
import io.meshcrypt.filter.framing.HeldBytesBudget;
import io.meshcrypt.filter.framing.KafkaFrameException;
import io.meshcrypt.filter.transport.ConnectionHandler;
import java.nio.ByteBuffer;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import org.apache.kafka.common.message.ApiVersionsResponseData;
import org.apache.kafka.common.message.DescribeClusterResponseData;
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
import org.apache.kafka.common.protocol.Errors;

/**
 * One client connection: frames both directions, decodes only the frames that need rewriting and passes
 * every other frame through byte for byte. Owned by one thread.
 *
 * <p>Fail closed on anything that is not the Kafka this filter offered: every request must be an api key
 * kafka-clients knows at a version this connection offers ({@link ApiVersionsFilter.Offered}) and no larger than
 * {@link KafkaProxy.Limits#maxRequestFrameBytes}; TLS and HTTP spoken to the sidecar are named as such. Responses
 * carry no api key, so every request that expects a response is queued in order; Kafka answers a connection's
 * requests in the order they were sent, so each response must carry the oldest outstanding correlation id, and the
 * queue entry says how to read it. Anything else throws {@link KafkaFrameException}, which closes the connection.
 */
final class KafkaConnection implements ConnectionHandler {
    /** The responses this filter decodes; PRODUCE only for KIP-951 node endpoints (v10+) when addresses are rewritten. */
    private static final Set<ApiKeys> RESPONSES_DECODED = EnumSet.of(ApiKeys.FETCH, ApiKeys.SHARE_FETCH,
            ApiKeys.SHARE_ACKNOWLEDGE, ApiKeys.METADATA, ApiKeys.FIND_COORDINATOR, ApiKeys.DESCRIBE_CLUSTER,
            ApiKeys.API_VERSIONS);

    /** Request-line methods recognised in a refused frame (PRI: the HTTP/2 connection preface). */
    private static final List<String> HTTP_METHODS = List.of("GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS",
            "PATCH", "CONNECT", "TRACE", "PRI");

    private final KafkaProxy proxy;
    /** Where clients reach each broker through the Envoy listener of this connection. */
    private final BrokerAddressRewriter addresses;
    private final InFlight inFlight;
    /** This connection's share of the held-bytes budget, used by both directions. */
    private final HeldBytesBudget.Account held;
    private final FrameStream requests;
    private final FrameStream responses;
    /** What requests may be: kafka-clients' versions until the broker's ApiVersions response passed, then what of it was passed on. */
    private ApiVersionsFilter.Offered offered = ApiVersionsFilter.Offered.DEFAULTS;
    /** The request the REWRITE response frame being held answers. */
    private ApiKeys heldApi;
    private short heldVersion;

    KafkaConnection(KafkaProxy proxy, BrokerAddressRewriter addresses) {
        this.proxy = proxy;
        this.addresses = addresses;
        this.inFlight = new InFlight(proxy.limits.maxInFlightRequests());
        this.held = proxy.heldBytes.newAccount();
        this.requests = new FrameStream(KafkaCodec.REQUEST_HEAD_BYTES, proxy.limits.maxFrameBytes(), new RequestFrames(), held);
        this.responses = new FrameStream(KafkaCodec.RESPONSE_HEAD_BYTES, proxy.limits.maxFrameBytes(), new ResponseFrames(), held);
    }

    @Override
    public long heldFrameSinceNanos() {
        return FrameStream.oldestHeldSinceNanos(requests, responses);
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
        requests.close();
        responses.close();
        held.close();
    }

    private final class RequestFrames implements FrameHandler {
        @Override
        public FrameAction onFrameStart(int size, ByteBuffer head) throws KafkaFrameException {
            // A size field of 352 MiB or more is no Kafka request a broker takes by default: check first whether
            // it is TLS or HTTP, whatever maxRequestFrameBytes says (cheap test, no allocation for real frames).
            if (size >= 0x16000000 && foreignProtocol(size, head) != null) {
                throw refused(size, head, "not Kafka");
            }
            int maxBytes = proxy.limits.maxRequestFrameBytes();
            if (size > maxBytes) {
                throw refused(size, head, "it exceeds the limit of " + maxBytes + " bytes for request frames");
            }
            if (size < KafkaCodec.REQUEST_HEAD_BYTES) {
                throw refused(size, head, "it is shorter than a request header");
            }
            int p = head.position();
            short apiKey = head.getShort(p);
            short version = head.getShort(p + 2);
            if (!offered.allows(apiKey, version)) {
                throw refused(size, head, offered.refusal(apiKey, version));
            }
            ApiKeys api = ApiKeys.forId(apiKey);
            if (api == ApiKeys.PRODUCE) {
                // Queued in rewrite(): whether a response comes (acks != 0) is in the body. Nothing after this frame
                // is framed before rewrite() runs, so the queue stays in request order.
                KafkaCodec.requireDecodable(api, version);
                return FrameAction.REWRITE;
            }
            boolean decode = RESPONSES_DECODED.contains(api);
            if (decode && api != ApiKeys.API_VERSIONS) {
                KafkaCodec.requireDecodable(api, version);
            }
            inFlight.add(head.getInt(p + 4), api, version, decode);
            // While the KMS is unreachable, ShareFetch requests are rewritten so that the broker acquires nothing
            // (FetchDecryptor#holdShareFetch): acquiring records that cannot be decrypted costs them a delivery.
            return api == ApiKeys.SHARE_FETCH && proxy.fetch.holdsShareFetch() ? FrameAction.REWRITE : FrameAction.PASS;
        }

        @Override
        public ByteString rewrite(ByteBuffer frame) throws KafkaFrameException {
            short apiKey = frame.getShort(frame.position());
            short version = frame.getShort(frame.position() + 2);
            if (apiKey == ApiKeys.SHARE_FETCH.id) {
                Decoded<ShareFetchRequestData> shareFetch = KafkaCodec.decodeRequest(frame, ApiKeys.SHARE_FETCH, version);
                return proxy.fetch.holdShareFetch(shareFetch.body(), version) ? KafkaCodec.encode(shareFetch) : original(frame);
            }
            int correlationId = frame.getInt(frame.position() + 4);
            Decoded<ProduceRequestData> produce = KafkaCodec.decodeRequest(frame, ApiKeys.PRODUCE, version);
            // May defer (a data key on its way): then this frame is retried from its bytes, so nothing is queued before.
            boolean changed = proxy.produce.encrypt(produce.body());
            if (produce.body().acks() != 0) {
                // acks=0 has no response; only v10+ responses carry broker addresses (KIP-951 node endpoints).
                inFlight.add(correlationId, ApiKeys.PRODUCE, version, version >= 10 && addresses.rewrites());
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
            int correlationId = head.getInt(head.position());
            if (inFlight.isEmpty()) {
                throw new KafkaFrameException("broker answered correlation id " + correlationId
                        + " while no request is outstanding on this connection");
            }
            if (correlationId != inFlight.oldestCorrelationId()) {
                throw new KafkaFrameException("broker answered correlation id " + correlationId + ", expected "
                        + inFlight.oldestCorrelationId() + " (the oldest outstanding " + inFlight.oldestApi()
                        + " request; Kafka answers in order)");
            }
            boolean decode = inFlight.oldestDecode();
            heldApi = inFlight.oldestApi();
            heldVersion = inFlight.oldestVersion();
            inFlight.remove();
            return decode ? FrameAction.REWRITE : FrameAction.PASS;
        }

        @Override
        public ByteString rewrite(ByteBuffer frame) throws KafkaFrameException {
            ApiKeys api = heldApi;
            short version = heldVersion;
            // heldApi stays set: a deferred rewrite is retried with the same frame (the next frame start overwrites it).
            switch (api) {
                case FETCH -> {
                    // Pass-through topics' batches are left as they are; when nothing changed, the frame as it
                    // arrived is forwarded rather than re-encoded.
                    Decoded<FetchResponseData> d = KafkaCodec.decodeResponse(frame, api, version);
                    boolean changed = proxy.fetch.decrypt(d.body(), version);
                    if (addresses.rewrites() && !d.body().nodeEndpoints().isEmpty()) {
                        addresses.rewrite(d.body());
                        changed = true;
                    }
                    return changed ? KafkaCodec.encode(d) : original(frame);
                }
                case SHARE_FETCH -> {
                    Decoded<ShareFetchResponseData> d = KafkaCodec.decodeResponse(frame, api, version);
                    boolean changed = proxy.fetch.decrypt(d.body());
                    if (addresses.rewrites() && !d.body().nodeEndpoints().isEmpty()) {
                        addresses.rewrite(d.body());
                        changed = true;
                    }
                    return changed ? KafkaCodec.encode(d) : original(frame);
                }
                case METADATA -> {
                    Decoded<MetadataResponseData> d = KafkaCodec.decodeResponse(frame, api, version);
                    // Trusted only as far as TopicNames explains: a conflicting mapping throws (closes this
                    // connection) and poisons the id; Produce and Fetch never use these mappings.
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
                    return rewritten(frame, api, version, (FindCoordinatorResponseData r) -> addresses.rewrite(r));
                }
                case DESCRIBE_CLUSTER -> {
                    return rewritten(frame, api, version, (DescribeClusterResponseData r) -> addresses.rewrite(r));
                }
                case SHARE_ACKNOWLEDGE -> {
                    return rewritten(frame, api, version, (ShareAcknowledgeResponseData r) -> addresses.rewrite(r));
                }
                case PRODUCE -> {
                    Decoded<ProduceResponseData> d = KafkaCodec.decodeResponse(frame, api, version);
                    if (d.body().nodeEndpoints().isEmpty()) {
                        return original(frame);
                    }
                    addresses.rewrite(d.body());
                    return KafkaCodec.encode(d);
                }
                case API_VERSIONS -> {
                    Decoded<ApiVersionsResponseData> d = decodeApiVersions(frame, version);
                    if (d.body().errorCode() != Errors.NONE.code()) {
                        // No list to narrow: the client retries at a version the broker named; the defaults stay.
                        return original(frame);
                    }
                    ApiVersionsFilter.clamp(d.body());
                    offered = ApiVersionsFilter.Offered.of(d.body());
                    return KafkaCodec.encode(d);
                }
                default -> throw new KafkaFrameException("no response rewrite for " + api);
            }
        }
    }

    /**
     * The exception that closes the connection for a refused request frame, naming what was seen, and TLS or HTTP
     * when the bytes are that.
     */
    private static KafkaFrameException refused(int size, ByteBuffer head, String reason) {
        String seen = "size field " + size + (head.remaining() >= 4
                ? ", api key " + head.getShort(head.position()) + ", version " + head.getShort(head.position() + 2) : "")
                + ", first bytes " + firstBytes(size, head);
        String peer = foreignProtocol(size, head);
        if (peer != null) {
            return new KafkaFrameException(peer + " (request frame refused: " + seen + ")");
        }
        return new KafkaFrameException("request frame refused: " + reason + " (" + seen + ")");
    }

    /** A diagnosis when the bytes are TLS or HTTP rather than Kafka, else null. */
    private static String foreignProtocol(int size, ByteBuffer head) {
        int b0 = size >>> 24;
        int b1 = (size >>> 16) & 0xff;
        int b2 = (size >>> 8) & 0xff;
        // A TLS record: content type 22 (handshake), protocol version 3.0 to 3.4.
        if (b0 == 0x16 && b1 == 0x03 && b2 <= 0x04) {
            return "the client speaks TLS to the sidecar; terminate or originate TLS in Envoy instead";
        }
        StringBuilder start = new StringBuilder(12);
        int n = 4 + head.remaining();
        for (int i = 0; i < n; i++) {
            int b = i < 4 ? (size >>> (24 - 8 * i)) & 0xff : head.get(head.position() + i - 4) & 0xff;
            start.append((char) b);
        }
        for (String method : HTTP_METHODS) {
            if (start.indexOf(method + " ") == 0) {
                return "the client speaks HTTP, not Kafka, to the sidecar (request line starts "
                        + TopicNames.describe(start.toString()) + ")";
            }
        }
        return null;
    }

    private static String firstBytes(int size, ByteBuffer head) {
        StringBuilder b = new StringBuilder(36);
        b.append(String.format("%02x %02x %02x %02x", size >>> 24, (size >>> 16) & 0xff, (size >>> 8) & 0xff, size & 0xff));
        for (int i = 0; i < head.remaining(); i++) {
            b.append(String.format(" %02x", head.get(head.position() + i) & 0xff));
        }
        return b.toString();
    }

    /**
     * The requests awaiting a response, oldest first: a ring of primitive arrays (no allocation per request), grown
     * by doubling up to the limit.
     */
    private static final class InFlight {
        private static final ApiKeys[] APIS = ApiKeys.values();
        private final int max;
        private int[] correlationIds = new int[8];
        private short[] apiOrdinals = new short[8];
        private short[] versions = new short[8];
        private boolean[] decode = new boolean[8];
        private int head;
        private int size;

        InFlight(int max) {
            this.max = max;
        }

        void add(int correlationId, ApiKeys api, short version, boolean decodeResponse) throws KafkaFrameException {
            if (size >= max) {
                throw new KafkaFrameException("more than " + max + " requests in flight on one connection");
            }
            if (size == correlationIds.length) {
                grow();
            }
            int i = (head + size) % correlationIds.length;
            correlationIds[i] = correlationId;
            apiOrdinals[i] = (short) api.ordinal();
            versions[i] = version;
            decode[i] = decodeResponse;
            size++;
        }

        private void grow() {
            int n = (int) Math.min((long) correlationIds.length * 2, Math.max(max, 8));
            int[] c = new int[n];
            short[] a = new short[n];
            short[] v = new short[n];
            boolean[] d = new boolean[n];
            for (int k = 0; k < size; k++) {
                int i = (head + k) % correlationIds.length;
                c[k] = correlationIds[i];
                a[k] = apiOrdinals[i];
                v[k] = versions[i];
                d[k] = decode[i];
            }
            correlationIds = c;
            apiOrdinals = a;
            versions = v;
            decode = d;
            head = 0;
        }

        boolean isEmpty() {
            return size == 0;
        }

        int oldestCorrelationId() {
            return correlationIds[head];
        }

        ApiKeys oldestApi() {
            return APIS[apiOrdinals[head]];
        }

        short oldestVersion() {
            return versions[head];
        }

        boolean oldestDecode() {
            return decode[head];
        }

        void remove() {
            head = (head + 1) % correlationIds.length;
            size--;
        }

        void clear() {
            head = 0;
            size = 0;
        }
    }

    @FunctionalInterface
    private interface BodyRewrite<T extends ApiMessage> {
        void apply(T body) throws KafkaFrameException;
    }

    private static <T extends ApiMessage> ByteString rewritten(ByteBuffer frame, ApiKeys api, short version,
                                                               BodyRewrite<T> rewrite) throws KafkaFrameException {
        Decoded<T> decoded = KafkaCodec.decodeResponse(frame, api, version);
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
