package io.meshcrypt.filter.config;

import java.time.Duration;
import java.util.function.BooleanSupplier;

/** Polls for what a background thread (a file watcher, an xDS stream) brings about. */
final class Await {

    private static final Duration TIMEOUT = Duration.ofSeconds(10);

    private Await() {
    }

    static void until(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(10);
        }
    }
}
