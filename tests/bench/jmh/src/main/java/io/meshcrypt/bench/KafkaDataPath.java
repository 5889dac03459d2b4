package io.meshcrypt.bench;

import com.google.protobuf.ByteString;
import io.meshcrypt.filter.DataPathLimits;
import io.meshcrypt.filter.config.FilterConfig;
import io.meshcrypt.filter.crypto.SubjectValueCipher;
import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.crypto.ValueCipherV2;
import io.meshcrypt.filter.framing.RewriteDeferred;
import io.meshcrypt.filter.kafka.BrokerAddresses;
import io.meshcrypt.filter.kafka.KafkaProxy;
import io.meshcrypt.filter.keys.KeyServices;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.observability.FilterMetrics;
import io.meshcrypt.filter.records.OutputArena;
import io.meshcrypt.filter.subjects.SubjectKeyStore;
import io.meshcrypt.filter.transport.ConnectionHandler;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The filter-service's Kafka data path, built as the service builds it (Main): a filter.yaml loaded and validated,
 * the key services it names (envelope version 2, the local keyset as KEK, as {@code ./meshcrypt up} runs), the
 * default limits, and one connection opened with the broker-listener header an xDS-configured sidecar sends. Only
 * public entry points are used, so the benchmark follows the data path through its rewrites.
 */
final class KafkaDataPath implements AutoCloseable {
    /** Topics the policy encrypts; every other topic is outside the policy and passes. */
    static final String ENCRYPTED_GLOB = "bench-enc-*";
    static final String ENCRYPTED_TOPIC = "bench-enc-1";
    static final String PLAIN_TOPIC = "bench-plain-1";
    /** A topic whose policy entry also encrypts the user-id and x-pii-* headers ({@link KafkaWire#HEADERS}). */
    static final String HEADERS_TOPIC = "bench-hdr-1";
    /** The broker listener map of the sidecar: Produce and Fetch responses have their node endpoints rewritten. */
    private static final String LISTENERS = "1=127.0.0.1:19093";

    /** The policy's encrypt list of {@link #KafkaDataPath(boolean)}. */
    private static final String ENCRYPT = "[{topic: \"bench-hdr-*\", headers: [user-id, \"x-pii-*\"]}, \"%s\"]"
            .formatted(ENCRYPTED_GLOB);

    private final Path dir;
    private final SubjectKeyStore subjectKeys;
    final ConnectionHandler connection;
    /** Where {@link #send} copies each answer, as gRPC copies a response into its buffers. */
    private byte[] wire = new byte[256 * 1024];

    /** @param metrics whether records per topic and rewrite times are counted, as with an observability section */
    KafkaDataPath(boolean metrics) throws Exception {
        this(metrics, ENCRYPT, false);
    }

    /**
     * @param encrypt the policy's {@code encrypt:} list (YAML flow style)
     * @param subjectKeys whether entries with {@code subject:} have a subject-key store, as with a {@code subjectKeys:}
     *     section (its log in memory: {@link MemorySubjectKeyLog}; the scope secrets wrapped by the same local KEK)
     */
    KafkaDataPath(boolean metrics, String encrypt, boolean subjectKeys) throws Exception {
        dir = Files.createTempDirectory("meshcrypt-jmh");
        Keysets.create(dir.resolve("keyset.json"));
        Path config = dir.resolve("filter.yaml");
        Files.writeString(config, """
                listen: 127.0.0.1:0
                keyset: keyset.json
                keys:
                  provider: local
                policy:
                  encrypt: %s
                  unmatched: passthrough
                """.formatted(encrypt), StandardCharsets.UTF_8);
        FilterConfig filter = FilterConfig.load(config);
        ValueCipher cipher = KeyServices.cipher(filter);
        this.subjectKeys = subjectKeys ? new SubjectKeyStore(new MemorySubjectKeyLog(),
                ((ValueCipherV2) cipher).deks().provider(), SubjectKeyStore.Settings.defaults()) : null;
        KafkaProxy proxy = new KafkaProxy(filter.policy(), cipher, null,
                this.subjectKeys == null ? null : new SubjectValueCipher(this.subjectKeys),
                new BrokerAddresses(filter.brokers()), DataPathLimits.kafka(filter.limits()),
                DataPathLimits.heldBytes(filter.limits()));
        if (metrics) {
            // What Main wires when filter.yaml has an observability section (and no audit file).
            FilterMetrics filterMetrics = new FilterMetrics(100);
            proxy.auditTo(filterMetrics.records());
            proxy.timeRewritesWith(filterMetrics.rewriteTimers());
        }
        connection = proxy.open(name -> name.equals(KafkaProxy.BROKER_LISTENERS_HEADER) ? LISTENERS : null);
    }

    /** Client to broker, as the transport does it: a deferred frame (a data key on its way) is resumed when ready. */
    ByteString request(ByteString frame) throws Exception {
        return resumingDeferred(() -> connection.onRead(frame, false), connection::resumeRead);
    }

    /** Broker to client, resuming deferred frames as {@link #request} does. */
    ByteString response(ByteString frame) throws Exception {
        return resumingDeferred(() -> connection.onWrite(frame, false), connection::resumeWrite);
    }

    /**
     * A request, then its response, as a stream's task on the gRPC event loop handles them: with {@code arena}, in a
     * scope of the thread's {@link OutputArena}; each answer is sent as the transport sends it (gRPC copies every byte
     * into its buffers inside onNext, then the stream releases the arena bytes it carried), so the arena is reused as
     * in production. Without {@code arena} every rewrite allocates its output, as before the arena. Returns the bytes
     * sent.
     */
    int exchange(ByteString request, ByteString response, boolean arena) throws Exception {
        if (arena) {
            OutputArena.enter();
        }
        try {
            return send(request(request)) + send(response(response));
        } finally {
            if (arena) {
                OutputArena.exit();
            }
        }
    }

    private int send(ByteString answer) {
        int size = answer.size();
        if (size > wire.length) {
            wire = new byte[size];
        }
        answer.copyTo(wire, 0);
        OutputArena.sent();
        return size;
    }

    private interface Step {
        ByteString run() throws Exception;
    }

    private static ByteString resumingDeferred(Step first, Step resume) throws Exception {
        Step next = first;
        while (true) {
            try {
                return next.run();
            } catch (RewriteDeferred deferred) {
                try {
                    deferred.ready().toCompletableFuture().get(30, TimeUnit.SECONDS);
                } catch (ExecutionException e) {
                    // completed exceptionally: the retry sees the real error
                }
                next = resume;
            }
        }
    }

    @Override
    public void close() throws IOException {
        connection.onClose();
        if (subjectKeys != null) {
            subjectKeys.close();
        }
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }
}
