package io.meshcrypt.filter.transport;

import java.util.function.LongSupplier;

/**
 * Rate limit for the warnings that name why a connection was reset: a peer that opens connections only to have them
 * reset must not flood the log. Up to {@code perWindow} warnings per window are logged; the rest are counted, and the
 * next warning logged says how many were left out. Shared by all streams; thread-safe (an error path, never per byte).
 */
final class ResetWarnings {
    static final ResetWarnings SHARED = new ResetWarnings(20, 10_000_000_000L, System::nanoTime);

    private final int perWindow;
    private final long windowNanos;
    private final LongSupplier nanoTime;
    private long windowStart;
    private int logged;
    private long skipped;

    ResetWarnings(int perWindow, long windowNanos, LongSupplier nanoTime) {
        this.perWindow = perWindow;
        this.windowNanos = windowNanos;
        this.nanoTime = nanoTime;
        this.windowStart = nanoTime.getAsLong();
    }

    /**
     * @return null when this warning is to be left out (it is counted); else what to append to it: empty, or how many
     *     warnings were left out since the last one logged
     */
    synchronized String admit() {
        long now = nanoTime.getAsLong();
        if (now - windowStart >= windowNanos) {
            windowStart = now;
            logged = 0;
        }
        if (logged >= perWindow) {
            skipped++;
            return null;
        }
        logged++;
        if (skipped == 0) {
            return "";
        }
        String note = " (" + skipped + " earlier reset warning(s) not logged: more than " + perWindow + " per "
                + windowNanos / 1_000_000_000L + " s)";
        skipped = 0;
        return note;
    }
}
