package io.meshcrypt.filter.observability;

import io.meshcrypt.filter.config.PolicyReloads;
import io.meshcrypt.filter.crypto.DekManager;
import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.crypto.ValueCipherV2;
import io.meshcrypt.filter.kms.KeyMetrics;
import io.meshcrypt.filter.transport.TransportMetrics;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.FunctionTimer;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.util.concurrent.TimeUnit;
import java.util.function.ToDoubleFunction;

/**
 * The filter-service's Micrometer registry, rendered as Prometheus text: record counts per topic
 * ({@link RecordCounters}), connection resets by reason ({@link ResetReasons}), the ext_proc transport's and the key
 * services' counters (read at scrape time from the adders they already keep), readiness, and the JVM's.
 * docs/operations.md lists every metric.
 */
public final class FilterMetrics implements AutoCloseable {
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final RecordCounters records;
    private final ResetReasons resets;
    private final JvmGcMetrics gc = new JvmGcMetrics();

    /** @param maxTopicLabels topics with a label of their own in {@code meshcrypt_records_total} */
    public FilterMetrics(int maxTopicLabels) {
        records = new RecordCounters(registry, maxTopicLabels);
        resets = new ResetReasons(registry);
        new JvmMemoryMetrics().bindTo(registry);
        gc.bindTo(registry);
        new JvmThreadMetrics().bindTo(registry);
        new ClassLoaderMetrics().bindTo(registry);
        new ProcessorMetrics().bindTo(registry);
    }

    /** The trail that counts records: give it to the Kafka proxy (with the audit file's, if any). */
    public RecordCounters records() {
        return records;
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
        counter("meshcrypt.ext_proc.stream_errors", "streams failed by an ext_proc protocol violation or an unexpected"
                + " stream error", transport, TransportMetrics::streamErrors);
        counter("meshcrypt.ext_proc.requests.received", "ProcessingRequests received", transport,
                TransportMetrics::requestsReceived);
        counter("meshcrypt.ext_proc.requests.answered", "ProcessingRequests answered", transport,
                TransportMetrics::requestsAnswered);
        counter("meshcrypt.ext_proc.rewrites.deferred", "frames parked until a data key was ready", transport,
                TransportMetrics::rewritesDeferred);
        transport.onHandlerFailure(resets);
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
    }

    /** {@code meshcrypt_ready}: 1 when {@code readiness} says ready. */
    public void bind(Readiness readiness) {
        gauge("meshcrypt.ready", "1 when ready (keys loaded, policy in force, KMS reachable or keys cached)", readiness,
                r -> r.ready() ? 1 : 0);
    }

    /** @return the Prometheus text exposition of every metric */
    public String scrape() {
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
