package io.meshcrypt.filter.observability;

import io.meshcrypt.filter.kafka.RewriteTimers;
import io.micrometer.core.instrument.MeterRegistry;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.common.protocol.ApiKeys;

/**
 * {@code meshcrypt_rewrite_seconds{api, direction}}: how long decoding, rewriting and re-encoding one Kafka frame took,
 * as a Prometheus histogram with a few fixed buckets (no percentiles computed in the process). Frames passed through
 * are not timed. The proxy asks for each timer once, so a rewritten frame costs two clock reads and one record.
 */
final class RewriteTimes implements RewriteTimers {
    static final String NAME = "meshcrypt.rewrite";
    /** From a small Metadata response to a Fetch response of many MiB with a KMS-free cache hit per batch. */
    private static final Duration[] BUCKETS = {Duration.ofNanos(100_000), Duration.ofNanos(500_000),
            Duration.ofMillis(1), Duration.ofMillis(5), Duration.ofMillis(10), Duration.ofMillis(50),
            Duration.ofMillis(100), Duration.ofMillis(500), Duration.ofSeconds(1)};

    private final MeterRegistry registry;

    RewriteTimes(MeterRegistry registry) {
        this.registry = registry;
    }

    @Override
    public RewriteTimers.Timer timer(ApiKeys api, boolean request) {
        io.micrometer.core.instrument.Timer timer = io.micrometer.core.instrument.Timer.builder(NAME)
                .description("Time to decode, rewrite and encode one Kafka frame the filter rewrites, per API and"
                        + " direction")
                .tag("api", api.name().toLowerCase(Locale.ROOT))
                .tag("direction", request ? "request" : "response")
                .serviceLevelObjectives(BUCKETS)
                .register(registry);
        return nanos -> timer.record(nanos, TimeUnit.NANOSECONDS);
    }
}
