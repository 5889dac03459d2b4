package io.meshcrypt.filter.transport;

import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.meshcrypt.filter.records.OutputArena;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.EventExecutorGroup;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;

/**
 * What the network and the HTTP ext_proc streams share. Everything a stream does runs on {@link #executor}, in order, so
 * its state needs no locks. The gRPC server's transport threads are the workers ({@link ExtProcServer}), and a stream's
 * executor is the event loop of its HTTP/2 connection: gRPC callbacks run at once on the thread that read them (no
 * hand-off, no wake-up per message), unless a task of the stream is running or queued, in which case they queue behind
 * it. Completions from other threads (a data key from the KMS) and timers always queue. Requests are read only as fast
 * as Envoy takes the responses (flow control), a stream ends once, and its state is released once, however it ends.
 *
 * <p>Fail closed: Envoy treats a stream that ends OK as "continue unprocessed", so a stream that fails ends with an
 * error status (see {@link #answerAndFail}, {@link #reset}).
 *
 * @param <Q> the ProcessingRequest type of the service
 * @param <R> its ProcessingResponse type
 */
public abstract class ExtProcStream<Q, R> implements StreamObserver<Q> {

    protected final Logger log;
    /** How log lines name this stream's kind, e.g. "ext_proc stream". */
    protected final String label;
    protected final long id;
    private final ServerCallStreamObserver<R> call;
    private final EventExecutor executor;
    private final TransportMetrics metrics;

    /** Set once the stream is over (closed, cancelled or failed): later messages are ignored, never forwarded. */
    private boolean done;
    private boolean released;
    /** Inbound messages processed while the response side was not ready; requested once it is. */
    private int owedRequests;
    /** A task of this stream is running on {@link #executor}: a callback arriving now must queue, not nest. */
    private boolean running;
    /** Tasks of this stream queued on {@link #executor} and not yet run: a callback must queue behind them. */
    private final AtomicInteger queued = new AtomicInteger();

    protected ExtProcStream(Logger log, String label, long id, ServerCallStreamObserver<R> call, EventExecutor executor,
                            TransportMetrics metrics) {
        this.log = log;
        this.label = label;
        this.id = id;
        this.call = call;
        this.executor = executor;
        this.metrics = metrics;
    }

    /** Called by the service before it returns this observer to gRPC, on the transport thread. */
    public final void install() {
        call.disableAutoRequest();
        call.setOnCancelHandler(() -> hop(this::onCancelled));
        call.setOnReadyHandler(() -> hop(this::onResponseSideReady));
        metrics.streamStarted();
        hop(this::open);
    }

    @Override
    public final void onNext(Q request) {
        metrics.requestReceived();
        hop(() -> {
            if (!done) {
                handle(request);
            }
        });
    }

    @Override
    public final void onError(Throwable t) {
        hop(() -> onStreamError(t));
    }

    @Override
    public final void onCompleted() {
        hop(() -> {
            if (!done) {
                done = true;
                onHalfClosed();
            }
        });
    }

    /** First on the worker: prepares the stream and asks for its first requests ({@link #request}), or fails it. */
    protected abstract void open();

    /** One request, on the worker, while the stream is not done; answers it (now or later) or ends the stream. */
    protected abstract void handle(Q request);

    /**
     * Envoy half-closed its side; the stream is already marked done. Ends ours (release the state with {@link #release}).
     */
    protected abstract void onHalfClosed();

    /** Frees what the stream holds; called once, on the worker, when the stream is over. */
    protected abstract void releaseState();

    /** Why the stream ended, when this class ends it for a reason other than Envoy's cancellation; on the worker. */
    protected void ending(String reason) {
    }

    protected final boolean isDone() {
        return done;
    }

    /** Marks the stream over: later messages, timers and resumptions are ignored. */
    protected final void markDone() {
        done = true;
    }

    /** Reads {@code count} more requests. */
    protected final void request(int count) {
        call.request(count);
    }

    /**
     * Sends the answer to one request; then {@link #requestNext()}. gRPC has serialised the response when
     * {@code onNext} returns, so the rewritten records it carries may be reused ({@link OutputArena#sent()}).
     */
    protected final void send(R response) {
        call.onNext(response);
        OutputArena.sent();
        metrics.requestAnswered();
    }

    /**
     * Reads the next request, unless Envoy is not reading responses: then no more requests are read until it does,
     * so neither side piles up.
     */
    protected final void requestNext() {
        if (call.isReady()) {
            call.request(1);
        } else {
            owedRequests++;
        }
    }

    /**
     * Runs {@code resume} on this stream's worker once {@code ready} completes, whatever the outcome (a failed key
     * fetch then surfaces as the real error), unless the stream is over by then. The worker never waits.
     */
    protected final void resumeWhen(CompletionStage<?> ready, Runnable resume) {
        // Always queued: a future already complete would otherwise resume the stream inside the call that parked it.
        ready.whenComplete((ignored, error) -> enqueue(() -> {
            if (!done) {
                resume.run();
            }
        }));
    }

    /**
     * Sends {@code last} (the answer that tells Envoy to refuse or reset), then ends the stream with {@code status}:
     * with failure_mode_allow off, the error fails the exchange even if {@code last} were lost. Releases the state.
     */
    protected final void answerAndFail(R last, Status status) {
        done = true;
        try {
            call.onNext(last);
            OutputArena.sent();
            call.onError(status.asRuntimeException());
        } catch (Throwable sendFailure) {
            log.debug("{} {}: could not send the reset, the stream is already gone", label, id, sendFailure);
        }
        release();
    }

    /** Ends the stream OK: only once Envoy has half-closed, since OK before that means "forward unprocessed". */
    protected final void complete() {
        try {
            call.onCompleted();
        } catch (Throwable sendFailure) {
            log.debug("{} {}: could not end the stream, it is already gone", label, id, sendFailure);
        }
    }

    /** Ends the stream with {@code status}, sending nothing else; does not release the state. */
    protected final void fail(Status status) {
        try {
            call.onError(status.asRuntimeException());
        } catch (Throwable sendFailure) {
            log.debug("{} {}: could not fail the stream, it is already gone", label, id, sendFailure);
        }
    }

    /**
     * Resets the connection when there is no request to answer: the error status makes Envoy (with failure_mode_allow
     * off) close it, and nothing more is processed or forwarded. The warning naming the reason is rate-limited.
     */
    protected final void reset(Status status, String reason) {
        done = true;
        try {
            String note = WarningRateLimit.RESETS.admit();
            if (note != null) {
                log.warn("{} {}: {}; resetting the connection{}", label, id, reason, note);
            }
        } catch (Throwable logFailure) {
            // Logging may fail (an OutOfMemoryError): the reset below matters more.
        }
        fail(status);
        release();
    }

    /** Frees the stream's state once, however many paths end it. */
    protected final void release() {
        if (released) {
            return;
        }
        released = true;
        metrics.streamEnded();
        releaseState();
    }

    protected final TransportMetrics metrics() {
        return metrics;
    }

    /**
     * Runs {@code task} on this stream's worker: at once when called there and nothing of this stream is running or
     * queued (the order of the stream's tasks is the order of the calls either way), else queued.
     */
    protected final void hop(Runnable task) {
        if (executor.inEventLoop() && !running && queued.get() == 0) {
            run(task);
            return;
        }
        enqueue(task);
    }

    /** Queues {@code task} on this stream's worker, behind whatever runs there now. */
    private void enqueue(Runnable task) {
        queued.incrementAndGet();
        try {
            executor.execute(() -> {
                queued.decrementAndGet();
                run(task);
            });
        } catch (RejectedExecutionException e) {
            queued.decrementAndGet();
            // Only during shutdown, after the gRPC server has stopped: nothing is left to forward to.
            log.debug("{} {}: worker already shut down", label, id);
        }
    }

    /**
     * Runs one task of this stream in a scope of the thread's {@link OutputArena}: records rewritten for a response the
     * task sends live there until it is sent; those the task keeps unsent (a parked frame) are left to it.
     */
    private void run(Runnable task) {
        running = true;
        OutputArena.enter();
        try {
            task.run();
        } finally {
            OutputArena.exit();
            running = false;
        }
    }

    /**
     * The executor for a new stream: the event loop of {@code workers} that runs the calling thread (the gRPC transport
     * thread of the stream's connection), else the next one.
     */
    public static EventExecutor executorFor(EventExecutorGroup workers) {
        for (EventExecutor worker : workers) {
            if (worker.inEventLoop()) {
                return worker;
            }
        }
        return workers.next();
    }

    /** Schedules {@code task} on this stream's worker. */
    protected final ScheduledFuture<?> schedule(Runnable task, long delayNanos) {
        return executor.schedule(() -> run(task), delayNanos, TimeUnit.NANOSECONDS);
    }

    protected static String describe(Throwable e) {
        return e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage());
    }

    private void onResponseSideReady() {
        if (!done && owedRequests > 0 && call.isReady()) {
            int owed = owedRequests;
            owedRequests = 0;
            call.request(owed);
        }
    }

    /** Envoy cancels the stream when the connection (or HTTP exchange) closes: the normal end of a stream. */
    private void onCancelled() {
        if (!done) {
            done = true;
            log.debug("{} {}: cancelled by Envoy, connection closed", label, id);
            release();
        }
    }

    private void onStreamError(Throwable t) {
        if (done) {
            return;
        }
        done = true;
        Status status = Status.fromThrowable(t);
        if (status.getCode() == Status.Code.CANCELLED) {
            log.debug("{} {}: cancelled, connection closed", label, id);
        } else {
            metrics.streamError();
            ending("stream error: " + status.getCode());
            log.warn("{} {}: stream failed: {}", label, id, status);
        }
        release();
    }
}
