package io.meshcrypt.filter.kms;

import java.security.GeneralSecurityException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ScheduledFuture;

/**
 * One KMS operation running on the {@link ResilientKekProvider}'s pool, which per-record callers may ask about without
 * waiting: its result when done, else a {@link KeyNotReadyException} carrying {@link #ready}.
 */
public final class KmsWork<T> {

    /** A KMS operation, run on the KMS pool. */
    @FunctionalInterface
    public interface Task<T> {
        T call() throws GeneralSecurityException;
    }

    private final String providerName;
    private final long timeoutMillis;
    private final KeyMetrics metrics;
    /** What the work provides, for messages ("a new DEK for topic 'x'"). */
    private final String what;
    private final CompletableFuture<T> result = new CompletableFuture<>();
    private final CompletableFuture<Void> ready = new CompletableFuture<>();
    private volatile boolean timedOut;
    volatile ScheduledFuture<?> timeout;

    KmsWork(String providerName, long timeoutMillis, KeyMetrics metrics, String what) {
        this.providerName = providerName;
        this.timeoutMillis = timeoutMillis;
        this.metrics = metrics;
        this.what = what;
    }

    void run(Task<T> task) {
        try {
            finish(task.call(), null);
        } catch (GeneralSecurityException | RuntimeException e) {
            finish(null, e);
        } catch (Error e) {
            finish(null, new TransientKmsException("KMS call failed: " + e, e));
            throw e;
        }
    }

    void finish(T value, Throwable error) {
        if (error == null) {
            result.complete(value);
        } else {
            result.completeExceptionally(error);
        }
        ScheduledFuture<?> t = timeout;
        if (t != null) {
            t.cancel(false);
        }
        ready.complete(null);
    }

    void timedOut() {
        timedOut = true;
        ready.complete(null);
    }

    public boolean running() {
        return !result.isDone();
    }

    public boolean succeeded() {
        return result.isDone() && !result.isCompletedExceptionally();
    }

    /**
     * @return a future that completes when the work has finished (after its own bookkeeping) or when {@code kmsTimeout}
     *     has passed, whichever comes first; hand out copies only
     */
    public CompletableFuture<Void> ready() {
        return ready;
    }

    /**
     * @return the result when the work succeeded
     * @throws GeneralSecurityException its error when it failed; {@link TransientKmsException} when it has run
     *     longer than {@code kmsTimeout}; {@link KeyNotReadyException} while it runs
     */
    public T poll() throws GeneralSecurityException {
        if (result.isDone()) {
            if (!result.isCompletedExceptionally()) {
                return result.getNow(null);
            }
            Throwable cause = result.exceptionNow();
            if (cause instanceof GeneralSecurityException g) {
                throw g;
            }
            throw new TransientKmsException("cannot get " + what + ": " + cause, cause);
        }
        if (timedOut) {
            throw new TransientKmsException("KMS " + providerName + " did not provide " + what
                    + " within " + timeoutMillis + " ms", null);
        }
        metrics.keysNotReady.increment();
        throw new KeyNotReadyException("waiting for KMS " + providerName + " to provide " + what, ready);
    }
}
