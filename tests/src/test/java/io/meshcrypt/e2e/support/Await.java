package io.meshcrypt.e2e.support;

import java.time.Duration;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/** Polls a condition instead of sleeping for a guessed duration. */
public final class Await {

    private static final long POLL_MILLIS = 20;

    private Await() {
    }

    /** Waits until {@code condition} holds; fails with {@code description} (evaluated lazily) on timeout. */
    public static void until(Duration timeout, BooleanSupplier condition, Supplier<String> description) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("Timed out after " + timeout + " waiting for: " + description.get());
            }
            try {
                Thread.sleep(POLL_MILLIS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("Interrupted while waiting for: " + description.get(), e);
            }
        }
    }
}
