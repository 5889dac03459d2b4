package io.meshcrypt.filter.kms;

import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The key a record needs is not available without waiting for the KMS: its DEK is being generated or unwrapped, the
 * set of known KEK ids is being refreshed, or the new-DEK rate limit has no token left. Nothing was decided about the
 * record: retry the same call once {@link #ready()} completes.
 *
 * <p>Contract:
 * <ul>
 *   <li>{@link #ready()} completes (normally, or exceptionally only if the key manager is closed) when a retry can
 *       make progress: the KMS call finished (successfully or not), {@code kmsTimeout} passed, or a rate-limit token
 *       became available. It completes on a meshcrypt KMS or timer thread: hop to the connection's own executor
 *       ({@code whenCompleteAsync(..., executor)}) and do no connection work on the completing thread.</li>
 *   <li>The retry then returns the key, or throws the real outcome: {@link TransientKmsException} (outage,
 *       backoff, timeout: transient), {@link KekRefusedException} (the KEK refused: permanent for that key),
 *       {@link UnknownKekException} (the envelope names a KEK the configuration does not know), or, rarely, another
 *       {@code KeyNotReadyException} (e.g. another connection took the rate-limit token first).</li>
 *   <li>It is a {@link TransientKmsException}: a caller that does not park and retry treats it as a transient KMS
 *       failure (Fetch answers a retriable error, Produce closes the connection and the client retries), never as
 *       corrupt data. Callers that do park must catch it before {@code TransientKmsException}.</li>
 * </ul>
 * No stack trace is filled in: it is control flow, thrown at most once per record batch.
 */
public final class KeyNotReadyException extends TransientKmsException {
    private final transient CompletableFuture<Void> ready;

    /** @param ready completes when a retry may succeed; the exception hands out a copy, so callers cannot complete it */
    public KeyNotReadyException(String message, CompletableFuture<Void> ready) {
        super(message, null);
        this.ready = ready.copy();
    }

    /** @return a future that completes when a retry of the same call may succeed (see the class contract) */
    public CompletableFuture<Void> ready() {
        return ready;
    }

    /** @return the {@code KeyNotReadyException} in {@code e}'s cause chain (e included), or null */
    public static KeyNotReadyException in(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof KeyNotReadyException k) {
                return k;
            }
        }
        return null;
    }

    @Override
    public synchronized Throwable fillInStackTrace() {
        return this;
    }

    /** One attempt of a call that may throw {@link KeyNotReadyException}. */
    @FunctionalInterface
    public interface Attempt<T> {
        T run() throws GeneralSecurityException;
    }

    /**
     * Blocking helper for callers that are allowed to wait (the CLI, tests, startup): runs {@code attempt}, waiting for
     * {@link #ready()} and retrying while it throws {@code KeyNotReadyException}, for at most {@code timeout} in total.
     * Never call it on a connection worker thread: that is exactly the stall this exception exists to avoid.
     *
     * @throws TransientKmsException when the key is still not ready after {@code timeout}
     */
    public static <T> T awaitBlocking(Attempt<T> attempt, Duration timeout) throws GeneralSecurityException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            try {
                return attempt.run();
            } catch (KeyNotReadyException e) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new TransientKmsException(e.getMessage() + " (still not ready after " + timeout.toMillis() + " ms)", e);
                }
                try {
                    e.ready().get(left, TimeUnit.NANOSECONDS);
                } catch (ExecutionException completedExceptionally) {
                    // Retry: the attempt reports the real outcome.
                } catch (TimeoutException timedOut) {
                    throw new TransientKmsException(e.getMessage() + " (still not ready after " + timeout.toMillis() + " ms)", e);
                } catch (InterruptedException interrupted) {
                    Thread.currentThread().interrupt();
                    throw new TransientKmsException("interrupted while waiting: " + e.getMessage(), interrupted);
                }
            }
        }
    }
}
