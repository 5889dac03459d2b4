package io.meshcrypt.filter.kafka;

import org.apache.kafka.common.protocol.ApiKeys;

/**
 * Where the time each decoded-and-rewritten frame took is reported, per API and direction. The proxy asks for every
 * timer once, before any connection, so the data path only looks one up in an array and records a duration.
 */
@FunctionalInterface
public interface RewriteTimers {
    /** Nothing is timed. */
    RewriteTimers NONE = (api, request) -> Timer.NONE;

    /** One API and direction's timer. Called from connection threads: thread-safe, no allocation per call. */
    @FunctionalInterface
    interface Timer {
        Timer NONE = nanos -> { };

        void record(long nanos);
    }

    /** @param request true for client-to-broker frames, false for the broker's responses */
    Timer timer(ApiKeys api, boolean request);
}
