package io.meshcrypt.filter.transport;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.service.network_ext_proc.v3.Data;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse.ConnectionStatus;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse.DataProcessedStatus;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.meshcrypt.filter.framing.RewriteDeferred;
import io.meshcrypt.filter.records.OutputArena;
import io.netty.util.concurrent.EventExecutor;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One network ext_proc stream, i.e. one proxied TCP connection, on the shared {@link ExtProcStream} threading: every
 * field below is confined to the stream's worker, which is also the only thread that talks to the
 * {@link ConnectionHandler} and sends responses. Up to the inbound window of requests is read ahead.
 */
final class NetworkExtProcStream extends ExtProcStream<ProcessingRequest, ProcessingResponse> {

    private static final Logger log = LoggerFactory.getLogger(NetworkExtProcStream.class);

    private final ConnectionHandlerFactory factory;
    private final StreamHeaders headers;
    /** The workload identity the filter-service authenticated on this stream, or null. */
    private final String identity;
    private final int inboundWindow;
    private final long heldFrameTimeoutNanos;

    private ConnectionHandler handler;
    /**
     * The request whose chunk waits for a deferred rewrite (a data key still on its way from the KMS), with the
     * response built so far; requests arriving meanwhile queue behind it, because Envoy matches responses to
     * requests by order alone. The queue is bounded by the inbound window: no more is requested while parked.
     */
    private ProcessingRequest parked;
    private ProcessingResponse.Builder parkedResponse;
    private boolean parkedOnRead;
    private final ArrayDeque<ProcessingRequest> queued = new ArrayDeque<>();
    /**
     * {@link OutputArena#resets()} when the handler began on the request being answered: the records it rewrote are
     * sent only if none of the thread's arena bytes were reused since ({@link #answer}).
     */
    private long arenaResets;
    /** Fires at the deadline of the oldest held frame; at most one is pending. */
    private ScheduledFuture<?> heldFrameTimer;
    private final ConnectionLog connectionLog;
    private final long startNanos = System.nanoTime();
    private long bytesFromClient;
    private long bytesFromUpstream;
    /** The first reason seen for the connection's end (who closed, or why it was reset); null: Envoy closed it. */
    private String closeReason;
    /** The filter-service is shutting down: close the connection at its next quiet point ({@link #drain}). */
    private boolean draining;
    /** Run once when the stream's state is released (its service forgets it). */
    private Runnable onReleased = () -> { };

    /**
     * @param heldFrameTimeout how long a frame the handler holds may take to complete, from its first byte; past it
     *     the connection is reset even if the peer sends nothing more
     */
    NetworkExtProcStream(long id, ServerCallStreamObserver<ProcessingResponse> call, EventExecutor executor,
                         ConnectionHandlerFactory factory, StreamHeaders headers, String identity,
                         int inboundWindow, TransportMetrics metrics, Duration heldFrameTimeout,
                         ConnectionLog connectionLog) {
        super(log, "ext_proc stream", id, call, executor, metrics);
        this.connectionLog = connectionLog;
        this.heldFrameTimeoutNanos = heldFrameTimeout.toNanos();
        this.headers = headers;
        this.identity = identity;
        this.factory = factory;
        this.inboundWindow = inboundWindow;
    }

    /** Sets what runs once when the stream is over; before {@link #install()}. */
    void whenReleased(Runnable onReleased) {
        this.onReleased = onReleased;
    }

    /**
     * From any thread: closes the connection at its next quiet point ({@link ConnectionHandler#isQuiet}): at once if it
     * is quiet now, else right after the response that makes it so. Envoy closes the client's connection with a FIN
     * after flushing what it was sent, so the client sees an ordinary disconnect between requests and reconnects
     * (through another replica). A connection that never gets quiet is cancelled when the drain's grace period ends.
     */
    void drain() {
        hop(() -> {
            if (!isDone()) {
                draining = true;
                closeIfDrainedAndQuiet();
            }
        });
    }

    private void closeIfDrainedAndQuiet() {
        if (!draining || isDone() || handler == null || parked != null || !queued.isEmpty()) {
            return;
        }
        boolean quiet;
        try {
            quiet = handler.isQuiet();
        } catch (Throwable e) {
            quiet = false;
        }
        if (!quiet) {
            return;
        }
        ending("drained: filter-service shutting down");
        metrics().streamDrained();
        // CLOSE is acted on before anything else in a response, so it travels alone, after the last answer. The error
        // that follows ends the stream at once (never OK, which would mean "forward unprocessed"): with
        // failure_mode_allow off it closes the connection too, should the CLOSE be lost.
        answerAndFail(ProcessingResponse.newBuilder().setConnectionStatus(ConnectionStatus.CLOSE).build(),
                Status.UNAVAILABLE.withDescription("filter-service draining: connection closed between requests"));
    }

    @Override
    protected void open() {
        try {
            handler = factory.open(headers, identity);
            if (handler == null) {
                throw new IllegalStateException("connection handler factory returned null");
            }
        } catch (Throwable e) {
            // Throwable: an Error here must still end this stream (Envoy would otherwise wait on it forever), and
            // must not escape into the worker, which serves other connections.
            markDone();
            handler = null;
            ending("reset: no connection handler");
            try {
                log.warn("ext_proc stream {}: cannot open a connection handler, closing the connection", id, e);
                metrics().streamError();
            } catch (Throwable logFailure) {
                // The stream must end all the same.
            }
            fail(Status.INTERNAL.withDescription("connection handler unavailable"));
            release();
            return;
        }
        // Nothing is read before the handler exists; from here on at most inboundWindow requests are in flight.
        request(inboundWindow);
    }

    @Override
    protected void handle(ProcessingRequest request) {
        if (parked != null) {
            queued.add(request);
            return;
        }
        arenaResets = OutputArena.resets();
        ProcessingResponse.Builder response = ProcessingResponse.newBuilder()
                // Envoy never reads this field; MODIFIED states what is true: the data field holds what to forward.
                .setDataProcessingStatus(DataProcessedStatus.MODIFIED);
        String direction = "read";
        long heldSince;
        try {
            if (!request.hasReadData() && !request.hasWriteData()) {
                throw new ProtocolViolation("request carries neither read_data nor write_data");
            }
            count(request);
            if (request.hasReadData()) {
                Data in = request.getReadData();
                try {
                    response.setReadData(answer(handler.onRead(in.getData(), in.getEndOfStream()), in));
                } catch (RewriteDeferred d) {
                    park(request, response, true, d);
                    return;
                }
            }
            if (request.hasWriteData()) {
                direction = "write";
                if (!writeInto(request, response, false)) {
                    return;
                }
            }
            direction = "held-frame";
            heldSince = handler.heldFrameSinceNanos();
            if (heldSince != ConnectionHandler.NOT_HOLDING && System.nanoTime() - heldSince >= heldFrameTimeoutNanos) {
                throw new HeldFrameTimeout(System.nanoTime() - heldSince);
            }
        } catch (Throwable e) {
            // Throwable, not Exception: a StackOverflowError or AssertionError in one connection's handler (or an
            // OutOfMemoryError the JVM survives) resets that connection only. Escaping into the worker would leave
            // this stream unanswered and not done while the worker goes on serving the others.
            failClosed(request, direction, e);
            return;
        }
        answer(request, response, heldSince);
    }

    /**
     * Sends the response and arms the held-frame timer. Inside a try like the handler calls: a Throwable from building
     * or sending the response (or from scheduling the timer) resets this connection, never escapes into the worker, and
     * never leaves this stream unanswered and not done (queued requests behind it would wait forever).
     */
    private void answer(ProcessingRequest request, ProcessingResponse.Builder response, long heldSince) {
        boolean answered = false;
        try {
            // Fails closed (the connection is reset) rather than send rewritten records whose bytes were reused.
            OutputArena.requireNoResetSince(arenaResets);
            send(response.build());
            answered = true;
            requestNext();
            armHeldFrameTimer(heldSince);
            closeIfDrainedAndQuiet();
        } catch (Throwable e) {
            if (answered) {
                // The request has its response: a second one (CLOSE_RST) would answer a request Envoy never sent.
                metrics().handlerFailed(e);
                ending("reset: " + metrics().resetReason(e));
                reset(Status.INTERNAL.withDescription("connection reset after its response"),
                        "failed after answering a request: " + describe(e));
            } else {
                failClosed(request, "send", e);
            }
        }
    }

    /** Answers the request's write data into {@code response}; false when it was parked instead. */
    private boolean writeInto(ProcessingRequest request, ProcessingResponse.Builder response, boolean resuming)
            throws Throwable {
        Data in = request.getWriteData();
        try {
            ByteString forward = resuming ? handler.resumeWrite() : handler.onWrite(in.getData(), in.getEndOfStream());
            response.setWriteData(answer(forward, in));
            return true;
        } catch (RewriteDeferred d) {
            park(request, response, false, d);
            return false;
        }
    }

    /**
     * A peer that announces a large frame and then trickles it (or stops) sends nothing that would let
     * {@link #handle} notice the deadline, so a timer checks it on this stream's own executor.
     */
    private void armHeldFrameTimer(long heldSince) {
        if (heldSince == ConnectionHandler.NOT_HOLDING || heldFrameTimer != null || isDone()) {
            return;
        }
        long delay = Math.max(0, heldSince + heldFrameTimeoutNanos - System.nanoTime());
        heldFrameTimer = schedule(this::onHeldFrameTimer, delay);
    }

    private void onHeldFrameTimer() {
        heldFrameTimer = null;
        if (isDone()) {
            return;
        }
        long heldSince;
        try {
            heldSince = handler.heldFrameSinceNanos();
        } catch (Throwable e) {
            ending("reset: " + metrics().resetReason(e));
            reset(Status.INTERNAL.withDescription("connection handler failed; connection reset"),
                    "connection handler failed: " + describe(e));
            return;
        }
        if (heldSince == ConnectionHandler.NOT_HOLDING) {
            return;
        }
        long heldNanos = System.nanoTime() - heldSince;
        if (heldNanos >= heldFrameTimeoutNanos) {
            metrics().heldFrameTimedOut();
            ending("reset: " + HeldFrameTimeout.REASON);
            reset(Status.DEADLINE_EXCEEDED.withDescription("held frame incomplete; connection reset"),
                    new HeldFrameTimeout(heldNanos).getMessage());
            return;
        }
        // The frame that armed the timer completed and a newer one is held: wait for the newer one's deadline.
        armHeldFrameTimer(heldSince);
    }

    private void park(ProcessingRequest request, ProcessingResponse.Builder response, boolean onRead, RewriteDeferred d) {
        parked = request;
        parkedResponse = response;
        parkedOnRead = onRead;
        metrics().rewriteDeferred();
        log.debug("ext_proc stream {}: {} rewrite deferred: {}", id, onRead ? "read" : "write", d.getMessage());
        // A deferred frame counts as held (the handler reports when it was first deferred): the held-frame deadline
        // bounds how long, and so how often, one frame may wait, even if its future never completes. Called from
        // inside the callers' try blocks: a failure here resets the connection.
        armHeldFrameTimer(handler.heldFrameSinceNanos());
        resumeWhen(d.ready(), this::resumeParked);
    }

    private void resumeParked() {
        if (parked == null) {
            return;
        }
        ProcessingRequest request = parked;
        ProcessingResponse.Builder response = parkedResponse;
        boolean onRead = parkedOnRead;
        parked = null;
        parkedResponse = null;
        // What the request's first attempt rewrote is in an array its task left to the parked response (OutputArena).
        arenaResets = OutputArena.resets();
        long heldSince;
        try {
            if (onRead) {
                try {
                    response.setReadData(answer(handler.resumeRead(), request.getReadData()));
                } catch (RewriteDeferred d) {
                    park(request, response, true, d);
                    return;
                }
                if (request.hasWriteData() && !writeInto(request, response, false)) {
                    return;
                }
            } else if (!writeInto(request, response, true)) {
                return;
            }
            heldSince = handler.heldFrameSinceNanos();
        } catch (Throwable e) {
            failClosed(request, onRead ? "read" : "write", e);
            return;
        }
        answer(request, response, heldSince);
        while (!isDone() && parked == null && !queued.isEmpty()) {
            handle(queued.poll());
        }
    }

    private static Data answer(ByteString forward, Data in) {
        if (forward == null) {
            throw new IllegalStateException("connection handler returned null instead of the bytes to forward");
        }
        return Data.newBuilder().setData(forward).setEndOfStream(in.getEndOfStream()).build();
    }

    /**
     * Answers the failed request with CLOSE_RST and nothing to forward, then ends the stream with an error.
     * Ending it OK would make Envoy forward later bytes unprocessed; with failure_mode_allow off, the error
     * closes the connection even if the CLOSE_RST response were lost.
     */
    private void failClosed(ProcessingRequest request, String direction, Throwable e) {
        markDone();
        try {
            logFailure(direction, e);
        } catch (Throwable logFailure) {
            // Logging may fail in the same way (an OutOfMemoryError): the reset below matters more.
        }
        answerAndFail(resetAnswer(request), Status.INTERNAL.withDescription("connection handler failed; connection reset"));
    }

    private void logFailure(String direction, Throwable e) {
        String reason = describe(e);
        if (e instanceof ProtocolViolation) {
            metrics().streamError();
            ending("reset: protocol violation");
        } else if (e instanceof HeldFrameTimeout) {
            metrics().heldFrameTimedOut();
            ending("reset: " + HeldFrameTimeout.REASON);
        } else {
            metrics().handlerFailed(e);
            ending("reset: " + metrics().resetReason(e));
        }
        String note = WarningRateLimit.RESETS.admit();
        if (note == null) {
            return;
        }
        if (e instanceof ProtocolViolation) {
            log.warn("ext_proc stream {}: protocol violation, resetting the connection: {}{}", id, reason, note);
        } else if (e instanceof HeldFrameTimeout) {
            log.warn("ext_proc stream {}: {}; resetting the connection{}", id, reason, note);
        } else if (e instanceof StackOverflowError) {
            // Its trace is a thousand repeated frames; the top few name the recursion.
            StackTraceElement[] trace = e.getStackTrace();
            log.warn("ext_proc stream {}: {} handler failed, resetting the connection: {} at {}{}", id, direction,
                    reason, Arrays.asList(trace).subList(0, Math.min(8, trace.length)), note);
        } else if (e instanceof RuntimeException || e instanceof Error) {
            // Unchecked means a bug rather than bad traffic: keep the stack trace.
            log.warn("ext_proc stream {}: {} handler failed, resetting the connection: {}{}", id, direction, reason, note, e);
        } else {
            log.warn("ext_proc stream {}: {} handler failed, resetting the connection: {}{}", id, direction, reason, note);
        }
    }

    /** CLOSE_RST with nothing to forward, in the direction(s) of the failed request. */
    private static ProcessingResponse resetAnswer(ProcessingRequest request) {
        ProcessingResponse.Builder reset = ProcessingResponse.newBuilder()
                .setDataProcessingStatus(DataProcessedStatus.MODIFIED)
                .setConnectionStatus(ConnectionStatus.CLOSE_RST);
        if (request.hasWriteData()) {
            reset.setWriteData(Data.getDefaultInstance());
        }
        if (request.hasReadData() || !request.hasWriteData()) {
            reset.setReadData(Data.getDefaultInstance());
        }
        return reset.build();
    }

    /**
     * Envoy half-closed its side. Completing ours OK would tell Envoy processing is over, and it would forward any
     * later bytes of the connection unprocessed: end with an error instead, after the handler released its state.
     */
    @Override
    protected void onHalfClosed() {
        ending("envoy ended the stream");
        release();
        fail(Status.ABORTED.withDescription("request stream ended by Envoy; processing over, connection must close"));
    }

    @Override
    protected void releaseState() {
        if (heldFrameTimer != null) {
            heldFrameTimer.cancel(false);
            heldFrameTimer = null;
        }
        parked = null;
        parkedResponse = null;
        queued.clear();
        if (handler != null) {
            try {
                handler.onClose();
            } catch (Throwable e) {
                log.warn("ext_proc stream {}: connection handler failed to close", id, e);
            }
        }
        try {
            connectionLog.ended(id, headers, identity, System.nanoTime() - startNanos, bytesFromClient,
                    bytesFromUpstream, handler, closeReason);
        } catch (Throwable e) {
            log.warn("ext_proc stream {}: could not log the connection's end", id, e);
        }
        onReleased.run();
    }

    @Override
    protected void ending(String reason) {
        if (closeReason == null) {
            closeReason = reason;
        }
    }

    /** The bytes each way, and which side's end of stream came first (who closed the connection). */
    private void count(ProcessingRequest request) {
        if (request.hasReadData()) {
            bytesFromClient += request.getReadData().getData().size();
            if (request.getReadData().getEndOfStream()) {
                ending("client closed");
            }
        }
        if (request.hasWriteData()) {
            bytesFromUpstream += request.getWriteData().getData().size();
            if (request.getWriteData().getEndOfStream()) {
                ending("broker closed");
            }
        }
    }

    /** A frame the handler holds was not complete within the held-frame timeout. */
    private static final class HeldFrameTimeout extends Exception {
        static final String REASON = "held frame timeout";

        HeldFrameTimeout(long heldNanos) {
            super("a held frame is still incomplete after " + TimeUnit.NANOSECONDS.toMillis(heldNanos)
                    + " ms (limits.heldFrameTimeout): the peer announced more bytes than it sends");
        }
    }

    /** Envoy sent something the protocol does not allow; handled like a handler failure, counted apart. */
    private static final class ProtocolViolation extends Exception {
        ProtocolViolation(String message) {
            super(message);
        }
    }
}
