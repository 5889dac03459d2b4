package io.meshcrypt.filter.kms;

import java.security.GeneralSecurityException;
import java.util.List;
import java.util.Objects;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Counts the requests that reach a {@link KekProvider} and their failures, and logs the key counters once a minute.
 * Innermost decorator ({@code new ResilientKekProvider(new InstrumentedKekProvider(kms), ...)}), so it counts what was
 * actually sent, not the calls backoff refused.
 */
public final class InstrumentedKekProvider implements KekProvider {
    private static final Logger log = LoggerFactory.getLogger(InstrumentedKekProvider.class);

    private final KekProvider inner;
    private final KeyMetrics metrics;

    public InstrumentedKekProvider(KekProvider inner, KeyMetrics metrics) {
        this.inner = Objects.requireNonNull(inner, "inner");
        this.metrics = Objects.requireNonNull(metrics, "metrics");
    }

    private interface Call<T> {
        T call() throws GeneralSecurityException;
    }

    private <T> T counted(Call<T> call) throws GeneralSecurityException {
        metrics.kmsCalls.increment();
        long start = System.nanoTime();
        try {
            return call.call();
        } catch (GeneralSecurityException | RuntimeException e) {
            metrics.kmsFailures.increment();
            throw e;
        } finally {
            metrics.kmsCallNanos.add(System.nanoTime() - start);
        }
    }

    @Override
    public String name() {
        return inner.name();
    }

    @Override
    public String currentKekId() throws GeneralSecurityException {
        return counted(inner::currentKekId);
    }

    @Override
    public WrappedDek wrap(byte[] dek, DekContext context) throws GeneralSecurityException {
        return counted(() -> inner.wrap(dek, context));
    }

    @Override
    public byte[] unwrap(String kekId, byte[] wrapped, DekContext context) throws GeneralSecurityException {
        byte[] dek = counted(() -> inner.unwrap(kekId, wrapped, context));
        metrics.unwraps.increment();
        return dek;
    }

    @Override
    public String create() throws GeneralSecurityException {
        return counted(inner::create);
    }

    @Override
    public String rotate() throws GeneralSecurityException {
        return counted(inner::rotate);
    }

    @Override
    public List<KekInfo> list() throws GeneralSecurityException {
        return counted(inner::list);
    }

    @Override
    public void close() {
        inner.close();
    }

    /** @return a task that logs the counters when they changed since it last ran (scheduled once a minute) */
    public Runnable metricsLog() {
        return new Runnable() {
            private String previous = "";

            @Override
            public void run() {
                String now = metrics.toString();
                if (!now.equals(previous)) {
                    log.info("keys: {}", now);
                    previous = now;
                }
            }
        };
    }
}
