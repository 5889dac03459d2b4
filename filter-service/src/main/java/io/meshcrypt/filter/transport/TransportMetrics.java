package io.meshcrypt.filter.transport;

import java.util.Objects;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Consumer;
import java.util.function.Function;

/** Counters of the ext_proc transport, safe to read from any thread. */
public final class TransportMetrics {

    private final LongAdder streamsStarted = new LongAdder();
    private final LongAdder streamsActive = new LongAdder();
    private final LongAdder requestsReceived = new LongAdder();
    private final LongAdder requestsAnswered = new LongAdder();
    private final LongAdder handlerFailures = new LongAdder();
    private final LongAdder streamErrors = new LongAdder();
    private final LongAdder rewritesDeferred = new LongAdder();
    private final LongAdder heldFrameTimeouts = new LongAdder();
    private final LongAdder streamsDrained = new LongAdder();

    void streamStarted() {
        streamsStarted.increment();
        streamsActive.increment();
    }

    void streamDrained() {
        streamsDrained.increment();
    }

    void streamEnded() {
        streamsActive.decrement();
    }

    void requestReceived() {
        requestsReceived.increment();
    }

    void requestAnswered() {
        requestsAnswered.increment();
    }

    private volatile Consumer<Throwable> handlerFailureListener = cause -> { };

    /** Tells {@code listener} why each handler failure reset its connection (metrics by reason); called on the failing stream's worker, rarely. */
    public void onHandlerFailure(Consumer<Throwable> listener) {
        handlerFailureListener = Objects.requireNonNull(listener, "listener");
    }

    private volatile Function<Throwable, String> resetReasons = cause -> "internal_error";

    /** Names why a handler failure reset its connection, for the connection's end line (the metrics' reason label). */
    public void describeResetsWith(Function<Throwable, String> reasons) {
        resetReasons = Objects.requireNonNull(reasons, "reasons");
    }

    String resetReason(Throwable cause) {
        return resetReasons.apply(cause);
    }

    void handlerFailed(Throwable cause) {
        handlerFailures.increment();
        handlerFailureListener.accept(cause);
    }

    void streamError() {
        streamErrors.increment();
    }

    void rewriteDeferred() {
        rewritesDeferred.increment();
    }

    /** Chunks parked because a frame's rewrite waited for a data key (the worker thread never waits). */
    public long rewritesDeferred() {
        return rewritesDeferred.sum();
    }

    void heldFrameTimedOut() {
        heldFrameTimeouts.increment();
    }

    /** gRPC streams (proxied connections) opened since start. */
    public long streamsStarted() {
        return streamsStarted.sum();
    }

    /** Streams whose connection handler is still open. */
    public long streamsActive() {
        return streamsActive.sum();
    }

    /** ProcessingRequests taken off the wire (bounded per stream by the inbound window). */
    public long requestsReceived() {
        return requestsReceived.sum();
    }

    /** ProcessingRequests answered with the bytes to forward. */
    public long requestsAnswered() {
        return requestsAnswered.sum();
    }

    /** Connections closed with CLOSE_RST because their handler threw. */
    public long handlerFailures() {
        return handlerFailures.sum();
    }

    /**
     * Streams failed for another reason than a handler exception or Envoy's normal cancellation: a handler
     * that could not be opened, a request that violates the protocol, or an unexpected stream error.
     */
    public long streamErrors() {
        return streamErrors.sum();
    }

    /** Connections reset because a frame they held was not complete within the held-frame timeout. */
    public long heldFrameTimeouts() {
        return heldFrameTimeouts.sum();
    }

    /** Connections closed between requests because the filter-service was shutting down. */
    public long streamsDrained() {
        return streamsDrained.sum();
    }
}
