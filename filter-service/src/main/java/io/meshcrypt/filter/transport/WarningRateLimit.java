package io.meshcrypt.filter.transport;

import java.util.function.LongSupplier;

/**
 * Rate limit for warnings a peer can cause at will: a peer that opens connections only to have them reset, or sends
 * request after request a rule rejects, must not flood the log. Up to {@code perWindow} warnings per window are logged;
 * the rest are counted, and the next warning logged says how many were left out. Thread-safe (an error path, never
 * per byte).
 */
public final class WarningRateLimit {
    /** The warnings naming why a connection was reset, shared by all streams. */
    static final WarningRateLimit RESETS = new WarningRateLimit("reset", 20, 10_000_000_000L, System::nanoTime);

    private final String what;

    private final int perWindow;
    private final long windowNanos;
    private final LongSupplier nanoTime;
    private long windowStart;
    private int logged;
    private long skipped;

    /** @param what names the warnings in the note that counts those left out ("reset": "reset warning(s)") */
    public static WarningRateLimit perTenSeconds(String what, int perWindow) {
        return new WarningRateLimit(what, perWindow, 10_000_000_000L, System::nanoTime);
    }

    WarningRateLimit(String what, int perWindow, long windowNanos, LongSupplier nanoTime) {
        this.what = what;
        this.perWindow = perWindow;
        this.windowNanos = windowNanos;
        this.nanoTime = nanoTime;
        this.windowStart = nanoTime.getAsLong();
    }

    /**
     * @return null when this warning is to be left out (it is counted); else what to append to it: empty, or how many
     *     warnings were left out since the last one logged
     */
    public synchronized String admit() {
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
        String note = " (" + skipped + " earlier " + what + " warning(s) not logged: more than " + perWindow + " per "
                + windowNanos / 1_000_000_000L + " s)";
        skipped = 0;
        return note;
    }
}
