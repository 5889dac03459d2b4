package io.meshcrypt.filter.kafka;

import com.google.protobuf.ByteString;
import io.meshcrypt.filter.audit.AccessAudit;
import io.meshcrypt.filter.codec.KafkaCodec;
import io.meshcrypt.filter.codec.KafkaCodec.Decoded;
import io.meshcrypt.filter.framing.FrameAction;
import io.meshcrypt.filter.framing.FrameHandler;
import io.meshcrypt.filter.framing.FrameStream;
import io.meshcrypt.filter.framing.HeldBytesBudget;
import io.meshcrypt.filter.framing.KafkaFrameException;
import io.meshcrypt.filter.transport.ConnectionHandler;
import io.meshcrypt.filter.transport.ConnectionLog;
import java.util.Locale;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.function.Supplier;
import org.apache.kafka.common.message.ProduceResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;

/**
 * One client connection: frames both directions, decodes only the frames a rewriter of {@link ApiRewriters}
 * subscribes to and passes every other frame through byte for byte. Owned by one thread.
 *
 * <p>Fail closed on anything that is not the Kafka this filter offered: every request must be an api key
 * kafka-clients knows at a version this connection offers ({@link OfferedVersions}) and no larger than
 * {@link KafkaProxy.Limits#maxRequestFrameBytes}; TLS and HTTP spoken to the sidecar are named as such. Responses
 * carry no api key, so every request that expects a response is queued in order; Kafka answers a connection's
 * requests in the order they were sent, so each response must carry the oldest outstanding correlation id, and the
 * queue entry says how to read it. Anything else throws {@link KafkaFrameException}, which closes the connection.
 */
final class KafkaConnection implements ConnectionHandler, KafkaSession {

    /** Request-line methods recognised in a refused frame (PRI: the HTTP/2 connection preface). */
    private static final List<String> HTTP_METHODS = List.of("GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS",
            "PATCH", "CONNECT", "TRACE", "PRI");

    private final ApiRewriters apis;
    private final KafkaProxy.Limits limits;
    private final TopicNames topicNames;
    /** The record rewriters of the policy in force, read per frame. */
    private final Supplier<RecordCrypto> crypto;
    /** Where clients reach each broker through the Envoy listener of this connection. */
    private final BrokerAddressRewriter addresses;
    private final InFlight inFlight;
    /** This connection's share of the held-bytes budget, used by both directions. */
    private final HeldBytesBudget.Account held;
    private final FrameStream requests;
    private final FrameStream responses;
    /** What requests may be: kafka-clients' versions until the broker's ApiVersions response passed, then what of it was passed on. */
    private OfferedVersions offered;
    /** The request the REWRITE response frame being held answers. */
    private ApiKeys heldApi;
    private short heldVersion;
    /** The answers to add to the REWRITE response frame being held: topics its Produce request had taken out. */
    private List<ProduceResponseData.TopicProduceResponse> heldRefusals;
    /** The topics the request being rewritten had taken out, until it is queued in flight. */
    private List<ProduceResponseData.TopicProduceResponse> refusing;
    private final String identity;
    private final AccessAudit audit;
    /** The Envoy listener map the stream named (a header value shared by the proxy), or null. */
    private final String listeners;
    private final KafkaProxy.Timers timers;
    /** Request and response frames framed so far, for the connection's end line. */
    private long requestFrames;
    private long responseFrames;
    /** The API of the frame being (or last) rewritten: records are reported only during a rewrite, counted under it. */
    private ApiKeys rewriting = ApiKeys.PRODUCE;
    /** Records rewritten (encrypted or decrypted) per API ordinal; allocated at the first. */
    private long[] recordsRewritten;
    /** Counts each access's rewritten records for this connection, then reports it to {@link #audit}. */
    /**
     * The accesses reported while a frame is rewritten, passed on only once its rewrite completes: a rewrite that waits
     * for a data key is retried from the start, and would otherwise count the partitions it had done twice.
     */
    private final List<Access> pendingAccesses = new ArrayList<>();
    private final AccessAudit counting = new AccessAudit() {
        @Override
        public void access(String topic, Direction direction, Outcome outcome, int records, long bytes) {
            pendingAccesses.add(new Access(topic, direction, outcome, records, bytes));
        }

        @Override
        public void close() {
            audit.close();
        }
    };

    private record Access(String topic, AccessAudit.Direction direction, AccessAudit.Outcome outcome, int records,
                          long bytes) {
    }

    /** Reports the accesses of the frame whose rewrite just completed, counting its rewritten records under its API. */
    private void commitAccesses() {
        for (Access a : pendingAccesses) {
            if (a.outcome() == AccessAudit.Outcome.ALLOWED && a.records() > 0) {
                if (recordsRewritten == null) {
                    recordsRewritten = new long[ApiKeys.values().length];
                }
                recordsRewritten[rewriting.ordinal()] += a.records();
            }
            audit.access(a.topic(), a.direction(), a.outcome(), a.records(), a.bytes());
        }
        pendingAccesses.clear();
    }

    /**
     * @param held this connection's share of the held-bytes budget, closed with the connection
     * @param topicNames topic ids learnt from Metadata responses, shared by all connections
     * @param identity the workload identity authenticated on the stream, or null
     * @param audit where this connection reports its accesses to covered topics; closed with the connection
     */
    KafkaConnection(ApiRewriters apis, KafkaProxy.Limits limits, HeldBytesBudget.Account held, TopicNames topicNames,
                    Supplier<RecordCrypto> crypto, BrokerAddressRewriter addresses, String identity, AccessAudit audit) {
        this(apis, limits, held, topicNames, crypto, addresses, identity, audit, null, KafkaProxy.Timers.NONE);
    }

    /**
     * @param listeners the listener map header of the stream, or null; only logged
     * @param timers where the time each rewritten frame took goes
     */
    KafkaConnection(ApiRewriters apis, KafkaProxy.Limits limits, HeldBytesBudget.Account held, TopicNames topicNames,
                    Supplier<RecordCrypto> crypto, BrokerAddressRewriter addresses, String identity, AccessAudit audit,
                    String listeners, KafkaProxy.Timers timers) {
        this.listeners = listeners;
        this.timers = Objects.requireNonNull(timers, "timers");
        this.identity = identity;
        this.audit = Objects.requireNonNull(audit, "audit");
        this.apis = Objects.requireNonNull(apis, "apis");
        this.limits = Objects.requireNonNull(limits, "limits");
        this.topicNames = Objects.requireNonNull(topicNames, "topicNames");
        this.crypto = Objects.requireNonNull(crypto, "crypto");
        this.addresses = Objects.requireNonNull(addresses, "addresses");
        this.offered = apis.apiVersions().defaults();
        this.inFlight = new InFlight(limits.maxInFlightRequests());
        this.held = held;
        this.requests = new FrameStream(KafkaCodec.REQUEST_HEAD_BYTES, limits.maxFrameBytes(), new RequestFrames(), held);
        this.responses = new FrameStream(KafkaCodec.RESPONSE_HEAD_BYTES, limits.maxFrameBytes(), new ResponseFrames(), held);
    }

    @Override
    public String identity() {
        return identity;
    }

    @Override
    public AccessAudit audit() {
        return counting;
    }

    @Override
    public void refuseInResponse(List<ProduceResponseData.TopicProduceResponse> refused) {
        refusing = refused;
    }

    @Override
    public boolean refusesInResponse() {
        return refusing != null;
    }

    @Override
    public List<ProduceResponseData.TopicProduceResponse> refusedInRequest() {
        return heldRefusals;
    }

    @Override
    public BrokerAddressRewriter addresses() {
        return addresses;
    }

    @Override
    public ProduceEncryptor produce() {
        return crypto.get().produce();
    }

    @Override
    public FetchDecryptor fetch() {
        return crypto.get().fetch();
    }

    @Override
    public TopicNames topicNames() {
        return topicNames;
    }

    @Override
    public void offer(OfferedVersions offered) {
        this.offered = offered;
    }

    /** No request awaits its response and both directions sit between frames. */
    @Override
    public boolean isQuiet() {
        return inFlight.isEmpty() && requests.atFrameBoundary() && responses.atFrameBoundary();
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
        audit.close();
        inFlight.clear();
        requests.close();
        responses.close();
        held.close();
    }

    @Override
    public void summarize(ConnectionLog.Fields fields) {
        fields.add("listeners", listeners).add("requests", requestFrames).add("responses", responseFrames);
        if (recordsRewritten != null) {
            ApiKeys[] apis = ApiKeys.values();
            for (int i = 0; i < recordsRewritten.length; i++) {
                if (recordsRewritten[i] > 0) {
                    fields.add("records_" + apis[i].name().toLowerCase(Locale.ROOT), recordsRewritten[i]);
                }
            }
        }
    }

    private final class RequestFrames implements FrameHandler {
        @Override
        public FrameAction onFrameStart(int size, ByteBuffer head) throws KafkaFrameException {
            // A size field of 352 MiB or more is no Kafka request a broker takes by default: check first whether
            // it is TLS or HTTP, whatever maxRequestFrameBytes says (cheap test, no allocation for real frames).
            if (size >= 0x16000000 && foreignProtocol(size, head) != null) {
                throw refused(size, head, "not Kafka");
            }
            int maxBytes = limits.maxRequestFrameBytes();
            if (size > maxBytes) {
                throw refused(size, head, "it exceeds the limit of " + maxBytes + " bytes for request frames");
            }
            if (size < KafkaCodec.REQUEST_HEAD_BYTES) {
                throw refused(size, head, "it is shorter than a request header");
            }
            requestFrames++;
            int p = head.position();
            short apiKey = head.getShort(p);
            short version = head.getShort(p + 2);
            if (!offered.allows(apiKey, version)) {
                throw refused(size, head, offered.refusal(apiKey, version));
            }
            ApiKeys api = ApiKeys.forId(apiKey);
            RequestRewriter<?> rewriter = apis.request(api);
            if (rewriter != null && rewriter.decodes(version, KafkaConnection.this)) {
                // Queued in rewrite(): whether a response comes may be in the body (Produce acks). Nothing after this
                // frame is framed before rewrite() runs, so the queue stays in request order.
                KafkaCodec.requireDecodable(api, version);
                return FrameAction.REWRITE;
            }
            inFlight.add(head.getInt(p + 4), api, version, decodesResponse(api, version), null);
            return FrameAction.PASS;
        }

        @Override
        public ByteString rewrite(ByteBuffer frame, ByteString original) throws KafkaFrameException {
            long start = System.nanoTime();
            ApiKeys api = ApiKeys.forId(frame.getShort(frame.position()));
            short version = frame.getShort(frame.position() + 2);
            int correlationId = frame.getInt(frame.position() + 4);
            RequestRewriter<ApiMessage> rewriter = apis.request(api);
            Decoded<ApiMessage> request = KafkaCodec.decodeRequest(frame, api, version);
            refusing = null;
            // May defer (a data key on its way): then this frame is retried from its bytes, so nothing is queued or
            // reported before.
            rewriting = api;
            pendingAccesses.clear();
            boolean changed = rewriter.rewrite(request.body(), version, KafkaConnection.this);
            if (rewriter.answered(request.body())) {
                // Unanswered (acks=0): the refused topics were dropped, and the client expects no answer anyway.
                inFlight.add(correlationId, api, version, decodesResponse(api, version), refusing);
            }
            refusing = null;
            ByteString out = changed ? KafkaCodec.encode(request) : original;
            commitAccesses();
            timers.request(api).record(System.nanoTime() - start);
            return out;
        }
    }

    /** Whether the response to a request of {@code api} and {@code version} is to be decoded on this connection. */
    private boolean decodesResponse(ApiKeys api, short version) throws KafkaFrameException {
        ResponseRewriter<?> rewriter = apis.response(api);
        if (rewriter == null || !rewriter.decodes(version, this)) {
            return false;
        }
        rewriter.requireDecodable(api, version);
        return true;
    }

    private final class ResponseFrames implements FrameHandler {
        @Override
        public FrameAction onFrameStart(int size, ByteBuffer head) throws KafkaFrameException {
            if (size < KafkaCodec.RESPONSE_HEAD_BYTES) {
                throw new KafkaFrameException("response frame of " + size + " bytes is shorter than a response header");
            }
            int correlationId = head.getInt(head.position());
            responseFrames++;
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
            heldRefusals = inFlight.oldestRefusals();
            inFlight.remove();
            return decode ? FrameAction.REWRITE : FrameAction.PASS;
        }

        @Override
        public ByteString rewrite(ByteBuffer frame, ByteString original) throws KafkaFrameException {
            long start = System.nanoTime();
            ApiKeys api = heldApi;
            short version = heldVersion;
            // heldApi stays set: a deferred rewrite is retried with the same frame (the next frame start overwrites it).
            ResponseRewriter<ApiMessage> rewriter = apis.response(api);
            Decoded<ApiMessage> response = rewriter.decode(frame, api, version);
            rewriting = api;
            pendingAccesses.clear();
            boolean changed = rewriter.rewrite(response.body(), version, KafkaConnection.this);
            ByteString out = changed ? KafkaCodec.encode(response) : original;
            commitAccesses();
            timers.response(api).record(System.nanoTime() - start);
            return out;
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
        /** Per entry, the answers of topics its Produce request had taken out; null for almost every request. */
        private Object[] refusals = new Object[8];
        private int head;
        private int size;

        InFlight(int max) {
            this.max = max;
        }

        void add(int correlationId, ApiKeys api, short version, boolean decodeResponse,
                 List<ProduceResponseData.TopicProduceResponse> refused) throws KafkaFrameException {
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
            refusals[i] = refused;
            size++;
        }

        private void grow() {
            int n = (int) Math.min((long) correlationIds.length * 2, Math.max(max, 8));
            int[] c = new int[n];
            short[] a = new short[n];
            short[] v = new short[n];
            boolean[] d = new boolean[n];
            Object[] r = new Object[n];
            for (int k = 0; k < size; k++) {
                int i = (head + k) % correlationIds.length;
                c[k] = correlationIds[i];
                a[k] = apiOrdinals[i];
                v[k] = versions[i];
                d[k] = decode[i];
                r[k] = refusals[i];
            }
            refusals = r;
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

        @SuppressWarnings("unchecked")
        List<ProduceResponseData.TopicProduceResponse> oldestRefusals() {
            return (List<ProduceResponseData.TopicProduceResponse>) refusals[head];
        }

        void remove() {
            refusals[head] = null;
            head = (head + 1) % correlationIds.length;
            size--;
        }

        void clear() {
            Arrays.fill(refusals, null);
            head = 0;
            size = 0;
        }
    }

}
