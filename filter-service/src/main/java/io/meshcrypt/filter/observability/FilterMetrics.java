package io.meshcrypt.filter.observability;

import io.meshcrypt.filter.config.PolicyReloads;
import io.meshcrypt.filter.crypto.DekManager;
import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.crypto.ValueCipherV2;
import io.meshcrypt.filter.framing.HeldBytesBudget;
import io.meshcrypt.filter.kafka.RewriteTimers;
import io.meshcrypt.filter.kms.KeyMetrics;
import io.meshcrypt.filter.transport.TransportMetrics;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.FunctionTimer;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.MultiGauge;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.netty4.NettyAllocatorMetrics;
import io.micrometer.core.instrument.binder.netty4.NettyEventExecutorMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.netty.util.concurrent.EventExecutor;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.ToDoubleFunction;

/**
 * The filter-service's Micrometer registry, rendered as Prometheus text: record counts per topic
 * ({@link RecordCounters}), connection resets by reason ({@link ResetReasons}), the ext_proc transport's and the key
 * services' counters (read at scrape time from the adders they already keep), readiness, the JVM's, and the Netty
 * buffer pools' ({@link NettyPools}).
 * docs/operations.md lists every metric.
 */
public final class FilterMetrics implements AutoCloseable {
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final RecordCounters records;
    private final ResetReasons resets;
    private final JvmGcMetrics gc = new JvmGcMetrics();
    private final RewriteTimes rewriteTimes;
    /** {@code meshcrypt_policy_info{version}}, refreshed at scrape time: one series, the version in force. */
    private MultiGauge policyInfo;
    private PolicyReloads reloads;
    private String policyVersionShown;

    /** @param maxTopicLabels topics with a label of their own in {@code meshcrypt_records_total} */
    public FilterMetrics(int maxTopicLabels) {
        records = new RecordCounters(registry, maxTopicLabels);
        resets = new ResetReasons(registry);
        rewriteTimes = new RewriteTimes(registry);
        new JvmMemoryMetrics().bindTo(registry);
        gc.bindTo(registry);
        new JvmThreadMetrics().bindTo(registry);
        new ClassLoaderMetrics().bindTo(registry);
        new ProcessorMetrics().bindTo(registry);
        registry.config().meterFilter(NettyPools.UNITS);
        NettyPools.allocators().forEach(allocator -> new NettyAllocatorMetrics(allocator).bindTo(registry));
    }

    /** The trail that counts records: give it to the Kafka proxy (with the audit file's, if any). */
    public RecordCounters records() {
        return records;
    }

    /** The timers of {@code meshcrypt_rewrite_seconds}: give them to the Kafka proxy before it serves. */
    public RewriteTimers rewriteTimers() {
        return rewriteTimes;
    }

    /** The held-bytes budget of all connections: bytes and frames held for rewriting now, and the budget. */
    public void bind(HeldBytesBudget held) {
        Gauge.builder("meshcrypt.held", held, HeldBytesBudget::heldBytes).baseUnit("bytes")
                .description("Bytes of incomplete or deferred frames held for rewriting, all connections").register(registry);
        Gauge.builder("meshcrypt.held.limit", held, HeldBytesBudget::totalBytes).baseUnit("bytes")
                .description("The held-bytes budget of all connections (limits.maxHeldBytesTotal)").register(registry);
        gauge("meshcrypt.held.frames", "Frames held for rewriting (started, not yet rewritten), all connections", held,
                HeldBytesBudget::heldFrames);
    }

    /**
     * The ext_proc server's worker threads (its transport event loops): tasks waiting on each, a backlog that shows a
     * worker saturated by the rewrites of its connections.
     */
    public void bindWorkers(Iterable<EventExecutor> workers) {
        new NettyEventExecutorMetrics(workers).bindTo(registry);
    }

    /** The ext_proc streams, and why connections were reset. */
    public void bind(TransportMetrics transport) {
        gauge("meshcrypt.ext_proc.streams.active", "Proxied connections (ext_proc streams) open now", transport,
                TransportMetrics::streamsActive);
        counter("meshcrypt.ext_proc.streams.started", "ext_proc streams opened", transport, TransportMetrics::streamsStarted);
        counter("meshcrypt.ext_proc.streams.ended", "ext_proc streams ended, for any reason", transport,
                t -> t.streamsStarted() - t.streamsActive());
        counter("meshcrypt.ext_proc.streams.failed", "ext_proc streams reset: handler failure, held-frame timeout or"
                + " protocol violation", transport, t -> t.handlerFailures() + t.heldFrameTimeouts() + t.streamErrors());
        counter("meshcrypt.ext_proc.held_frame_timeouts", "connections reset because a held frame did not complete in"
                + " time", transport, TransportMetrics::heldFrameTimeouts);
        counter("meshcrypt.ext_proc.streams.drained", "connections closed between requests while the service shut down",
                transport, TransportMetrics::streamsDrained);
        counter("meshcrypt.ext_proc.stream_errors", "streams failed by an ext_proc protocol violation or an unexpected"
                + " stream error", transport, TransportMetrics::streamErrors);
        counter("meshcrypt.ext_proc.requests.received", "ProcessingRequests received", transport,
                TransportMetrics::requestsReceived);
        counter("meshcrypt.ext_proc.requests.answered", "ProcessingRequests answered", transport,
                TransportMetrics::requestsAnswered);
        counter("meshcrypt.ext_proc.rewrites.deferred", "frames parked until a data key was ready", transport,
                TransportMetrics::rewritesDeferred);
        transport.onHandlerFailure(resets);
        transport.describeResetsWith(cause -> ResetReasons.classify(cause).label());
    }

    /** The KMS and the DEK caches, when {@code cipher} uses envelope version 2 (none with a local keyset only). */
    public void bind(ValueCipher cipher) {
        if (!(cipher instanceof ValueCipherV2 v2)) {
            return;
        }
        DekManager deks = v2.deks();
        KeyMetrics keys = deks.metrics();
        FunctionTimer.builder("meshcrypt.kms.calls", keys, KeyMetrics::kmsCalls, KeyMetrics::kmsCallNanos,
                        TimeUnit.NANOSECONDS)
                .description("requests sent to the KMS (wrap, unwrap, KEK checks and listings) and the time they took")
                .register(registry);
        counter("meshcrypt.kms.failures", "KMS requests that failed", keys, KeyMetrics::kmsFailures);
        counter("meshcrypt.kms.skipped", "KMS requests not sent because the KMS was backing off", keys,
                KeyMetrics::kmsSkipped);
        gauge("meshcrypt.kms.consecutive_failures", "KMS requests failed in a row; above 0 the KMS is backing off",
                deks, DekManager::kmsConsecutiveFailures);
        counter("meshcrypt.deks.generated", "data keys generated (and wrapped) for encryption", keys,
                KeyMetrics::deksGenerated);
        counter("meshcrypt.deks.unwrapped", "data keys unwrapped by the KMS for decryption", keys, KeyMetrics::unwraps);
        counter("meshcrypt.dek_cache.misses", "decryption DEK cache misses that needed an unwrap", keys,
                KeyMetrics::cacheMisses);
        counter("meshcrypt.dek_cache.hits", "decryption DEK lookups served from the cache, one per run of records"
                + " under one DEK", keys, KeyMetrics::cacheHits);
        gauge("meshcrypt.dek_cache.size", "unwrapped data keys cached for decryption", deks,
                DekManager::cachedDecryptionKeys);
        gauge("meshcrypt.deks.encryption_topics", "topics with a current data key for encryption", deks,
                DekManager::encryptionTopics);
        counter("meshcrypt.keys.not_ready", "times a rewrite waited for a data key", keys, KeyMetrics::keysNotReady);
        counter("meshcrypt.keys.unknown_kek", "envelopes naming a KEK id that is not known", keys,
                KeyMetrics::unknownKeks);
    }

    /** {@code meshcrypt_policy_reloads_total{outcome}}: policy changes put in force, and versions refused. */
    public void bind(PolicyReloads reloads) {
        FunctionCounter.builder("meshcrypt.policy.reloads", reloads, PolicyReloads::appliedCount)
                .description("policy and HTTP rule changes put in force, or refused (the last good version stayed)")
                .tag("outcome", "applied").register(registry);
        FunctionCounter.builder("meshcrypt.policy.reloads", reloads, PolicyReloads::refusedCount)
                .description("policy and HTTP rule changes put in force, or refused (the last good version stayed)")
                .tag("outcome", "refused").register(registry);
        Gauge.builder("meshcrypt.policy.last_reload.timestamp", reloads, r -> r.inForceSinceMillis() / 1000.0)
                .baseUnit("seconds")
                .description("When the policy in force was put in force (start or last applied reload), Unix time")
                .register(registry);
        this.policyInfo = MultiGauge.builder("meshcrypt.policy.info")
                .description("1, labelled with the version of the policy in force (xDS version, or reloads of the"
                        + " policy file since start)")
                .register(registry);
        this.reloads = reloads;
        showPolicyVersion();
    }

    /** Longest version label shown; xDS versions are short, this only bounds a hostile or broken server. */
    private static final int MAX_VERSION_CHARS = 64;

    private synchronized void showPolicyVersion() {
        String version = reloads.version();
        if (!version.equals(policyVersionShown)) {
            String label = version.length() > MAX_VERSION_CHARS ? version.substring(0, MAX_VERSION_CHARS) : version;
            policyInfo.register(List.of(MultiGauge.Row.of(Tags.of("version", label), 1)), true);
            policyVersionShown = version;
        }
    }

    /** {@code meshcrypt_ready}: 1 when {@code readiness} says ready. */
    public void bind(Readiness readiness) {
        gauge("meshcrypt.ready", "1 when ready (keys loaded, policy in force, KMS reachable or keys cached)", readiness,
                r -> r.ready() ? 1 : 0);
    }

    /** @return the Prometheus text exposition of every metric */
    public String scrape() {
        if (reloads != null) {
            showPolicyVersion();
        }
        return registry.scrape();
    }

    MeterRegistry registry() {
        return registry;
    }

    private <T> void counter(String name, String description, T source, ToDoubleFunction<T> count) {
        FunctionCounter.builder(name, source, count).description(description).register(registry);
    }

    private <T> void gauge(String name, String description, T source, ToDoubleFunction<T> value) {
        Gauge.builder(name, source, value).description(description).register(registry);
    }

    @Override
    public void close() {
        gc.close();
        registry.close();
    }
}
