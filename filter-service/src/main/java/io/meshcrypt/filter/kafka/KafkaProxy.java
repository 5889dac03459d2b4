package io.meshcrypt.filter.kafka;

import io.meshcrypt.filter.audit.AuditTrail;
import io.meshcrypt.filter.crypto.RecordKeyCipher;
import io.meshcrypt.filter.crypto.SubjectValueCipher;
import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.framing.HeldBytesBudget;
import io.meshcrypt.filter.policy.TopicPlans;
import io.meshcrypt.filter.transport.ConnectionHandler;
import io.meshcrypt.filter.transport.ConnectionHandlerFactory;
import io.meshcrypt.filter.transport.StreamHeaders;
import io.meshcrypt.meshconfig.BrokerListenersHeader;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import org.apache.kafka.common.protocol.ApiKeys;
import java.util.Arrays;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;

/** What all Kafka connections share: policy, keys, limits, the topic id cache and the broker address map. */
public final class KafkaProxy implements ConnectionHandlerFactory {
    /**
     * What one connection, and the process, may hold or track; each limit closes the offending connection, never the
     * process.
     *
     * @param maxFrameBytes largest frame held for rewriting (Produce requests; Fetch, Metadata, ... responses)
     * @param maxRequestFrameBytes largest request frame of any kind, passed-through ones included; the default is the
     *     broker's own {@code socket.request.max.bytes}, so no request the broker would accept is refused
     * @param maxInFlightRequests most requests awaiting a response on one connection (Kafka clients keep a handful)
     * @param maxTopicIds most topic ids remembered for ShareFetch/ShareAcknowledge, process wide ({@link TopicNames})
     * @param maxNewDataKeysPerRequest most topics without a ready data key one Produce may name (see ProduceEncryptor)
     * @param maxDecompressedBytes most bytes the compressed batches of one rewritten frame (a Produce request, a
     *     Fetch or ShareFetch response) may inflate to together (a decompression bomb, or many, fail their frame
     *     instead of exhausting the heap). The rewritten records of one frame are bounded too: by {@code
     *     maxRequestFrameBytes} for a Produce request, by {@code maxFrameBytes} for a response
     */
    public record Limits(int maxFrameBytes, int maxRequestFrameBytes, int maxInFlightRequests, int maxTopicIds,
                         int maxDecompressedBytes, int maxNewDataKeysPerRequest) {
        public Limits {
            if (maxFrameBytes <= 0 || maxRequestFrameBytes <= 0 || maxInFlightRequests <= 0 || maxTopicIds < 0
                    || maxDecompressedBytes <= 0 || maxNewDataKeysPerRequest <= 0) {
                throw new IllegalArgumentException("limits must be positive (maxTopicIds may be 0): " + maxFrameBytes
                        + ", " + maxRequestFrameBytes + ", " + maxInFlightRequests + ", " + maxTopicIds + ", "
                        + maxDecompressedBytes);
            }
        }

        public Limits withMaxFrameBytes(int bytes) {
            return new Limits(bytes, maxRequestFrameBytes, maxInFlightRequests, maxTopicIds, maxDecompressedBytes,
                    maxNewDataKeysPerRequest);
        }
    }

    private final Limits limits;
    private final HeldBytesBudget heldBytes;
    private final TopicNames topicNames;
    private final ValueCipher cipher;
    /** Null when no record-key keyset was opened at start: then no policy may ask for keys: deterministic. */
    private final RecordKeyCipher keyCipher;
    /**
     * Swapped by {@link #policy(EncryptionPolicy)}; connections read it once per frame, so a policy change applies
     * from the next Produce or Fetch on every open connection, never in the middle of a frame.
     */
    private volatile RecordCrypto crypto;
    /** Null without subject keys. */
    private final SubjectValueCipher subjects;
    /** For streams whose Envoy listener sends no listener map: the filter config's {@code brokers:}. */
    private final BrokerAddressRewriter addresses;
    /** Per listener-map header value; the values come from Envoy configs, so there are few (bounded anyway). */
    private final Map<String, BrokerAddressRewriter> streamAddresses = new ConcurrentHashMap<>();
    /** The ShareFetch KMS-outage hold: kept here so that a policy reload, which builds a new decryptor, keeps it. */
    private final FetchDecryptor.KmsOutage kmsOutage = new FetchDecryptor.KmsOutage(System::nanoTime,
            FetchDecryptor.DEFAULT_KMS_PROBE_INTERVAL, FetchDecryptor.KmsOutage.DEFAULT_PROBES_TO_RELEASE);
    private static final int MAX_LISTENER_MAPS = 1024;
    /** Where connections time their rewrites; set once at start, before any connection. */
    private volatile Timers timers = Timers.NONE;
    /** Where connections report what they did with covered topics; set once at start, before any connection. */
    private volatile AuditTrail audit = AuditTrail.NONE;

    /**
     * The gRPC header by which an Envoy listener tells the filter-service where clients reach each broker through
     * it ({@link BrokerAddresses#parse}); the xDS server sets it per sidecar from the mesh file, so sidecars with
     * different listener ports share one filter-service. Without it, {@code brokers:} of the filter config applies.
     */
    public static final String BROKER_LISTENERS_HEADER = BrokerListenersHeader.NAME;

    /**
     * @param keyCipher encrypts record keys on topics whose policy says {@code keys: deterministic}; null when no
     *     record-key keyset is configured
     * @throws IllegalArgumentException when the policy encrypts keys and {@code keyCipher} is null
     */
    public KafkaProxy(EncryptionPolicy policy, ValueCipher cipher, RecordKeyCipher keyCipher, BrokerAddresses brokers,
                      Limits limits) {
        this(policy, cipher, keyCipher, brokers, limits, HeldBytesBudget.unlimited());
    }

    /**
     * @param heldBytes the budget every connection's incomplete frames are reserved from (per connection and in total)
     */
    public KafkaProxy(EncryptionPolicy policy, ValueCipher cipher, RecordKeyCipher keyCipher, BrokerAddresses brokers,
                      Limits limits, HeldBytesBudget heldBytes) {
        this(policy, cipher, keyCipher, null, brokers, limits, heldBytes);
    }

    /**
     * @param subjects values under per-subject keys, for policy entries with {@code subject:}; null without a
     *     {@code subjectKeys:} section (such entries are then refused)
     */
    public KafkaProxy(EncryptionPolicy policy, ValueCipher cipher, RecordKeyCipher keyCipher, SubjectValueCipher subjects,
                      BrokerAddresses brokers, Limits limits, HeldBytesBudget heldBytes) {
        this.subjects = subjects;
        this.heldBytes = Objects.requireNonNull(heldBytes, "heldBytes");
        this.cipher = cipher;
        this.keyCipher = keyCipher;
        this.limits = Objects.requireNonNull(limits, "limits");
        this.topicNames = new TopicNames(limits.maxTopicIds());
        this.addresses = new BrokerAddressRewriter(brokers);
        policy(policy);
    }

    /**
     * Puts a new encryption policy in force for new and open connections (policy hot reload).
     *
     * @throws IllegalArgumentException when the policy encrypts record keys but no record-key keyset was opened at
     *     start; the policy in force stays
     */
    public synchronized void policy(EncryptionPolicy policy) {
        Objects.requireNonNull(policy, "policy");
        ValueCrypto values = new ValueCrypto(cipher, keyCipher, subjects, policy);
        TopicPlans plans = new TopicPlans(policy);
        this.crypto = new RecordCrypto(new ProduceEncryptor(plans, values, limits.maxDecompressedBytes(),
                limits.maxRequestFrameBytes(), limits.maxNewDataKeysPerRequest()),
                new FetchDecryptor(plans, topicNames, values, limits.maxDecompressedBytes(), limits.maxFrameBytes(),
                        kmsOutage));
    }

    /** Reports every connection opened from now on to {@code audit}. */
    public void auditTo(AuditTrail audit) {
        this.audit = Objects.requireNonNull(audit, "audit");
    }

    /** Times every frame rewritten from now on with {@code timers}, asked once per API and direction here. */
    public void timeRewritesWith(RewriteTimers timers) {
        this.timers = new Timers(ApiRewriters.STANDARD, timers);
    }

    /** The timers of every API and direction {@link ApiRewriters} may rewrite, by API ordinal. */
    static final class Timers {
        static final Timers NONE = new Timers(ApiRewriters.STANDARD, RewriteTimers.NONE);
        private final RewriteTimers.Timer[] requests = new RewriteTimers.Timer[ApiKeys.values().length];
        private final RewriteTimers.Timer[] responses = new RewriteTimers.Timer[ApiKeys.values().length];

        Timers(ApiRewriters apis, RewriteTimers timers) {
            Arrays.fill(requests, RewriteTimers.Timer.NONE);
            Arrays.fill(responses, RewriteTimers.Timer.NONE);
            for (ApiKeys api : apis.requestApis()) {
                requests[api.ordinal()] = Objects.requireNonNull(timers.timer(api, true), "timer");
            }
            for (ApiKeys api : apis.responseApis()) {
                responses[api.ordinal()] = Objects.requireNonNull(timers.timer(api, false), "timer");
            }
        }

        RewriteTimers.Timer request(ApiKeys api) {
            return requests[api.ordinal()];
        }

        RewriteTimers.Timer response(ApiKeys api) {
            return responses[api.ordinal()];
        }
    }

    @Override
    public ConnectionHandler open(StreamHeaders headers) {
        return open(headers, null);
    }

    /** @param identity the workload identity of the stream, matched against the policy's readers and writers */
    @Override
    public ConnectionHandler open(StreamHeaders headers, String identity) {
        String listeners = headers.get(BROKER_LISTENERS_HEADER);
        if (listeners == null) {
            return connection(addresses, identity, null);
        }
        BrokerAddressRewriter rewriter = streamAddresses.get(listeners);
        if (rewriter == null) {
            rewriter = new BrokerAddressRewriter(BrokerAddresses.parse(listeners));
            if (streamAddresses.size() < MAX_LISTENER_MAPS) {
                streamAddresses.put(listeners, rewriter);
            }
        }
        return connection(rewriter, identity, listeners);
    }

    private KafkaConnection connection(BrokerAddressRewriter addresses, String identity, String listeners) {
        return new KafkaConnection(ApiRewriters.STANDARD, limits, heldBytes.newAccount(), topicNames, this::inForce,
                addresses, identity, audit.connection(identity), listeners, timers);
    }

    /** The record rewriters of the policy in force. */
    RecordCrypto inForce() {
        return crypto;
    }

    /** A connection whose Envoy listener sent no headers, on a stream without an identity. */
    public ConnectionHandler open() {
        return open(StreamHeaders.NONE);
    }

    /** A connection whose Envoy listener sent no headers, on a stream authenticated as {@code identity}. */
    public ConnectionHandler open(String identity) {
        return open(StreamHeaders.NONE, identity);
    }

    public TopicNames topicNames() {
        return topicNames;
    }

    public Limits limits() {
        return limits;
    }
}
