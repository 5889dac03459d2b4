package io.meshcrypt.filter.transport;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.service.network_ext_proc.v3.Data;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse.ConnectionStatus;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse.DataProcessedStatus;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.meshcrypt.filter.framing.RewriteDeferred;
import io.netty.util.concurrent.EventExecutor;
import java.util.ArrayDeque;
import java.util.concurrent.RejectedExecutionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One gRPC stream, i.e. one proxied TCP connection. gRPC callbacks arrive on transport threads and only
 * hop onto {@link #executor}; every field below the constructor's is confined to that one thread, which is
 * also the only thread that talks to the {@link ConnectionHandler} and sends responses.
 */
final class ExtProcStream implements StreamObserver<ProcessingRequest> {

    private static final Logger log = LoggerFactory.getLogger(ExtProcStream.class);

    private final long id;
    private final ServerCallStreamObserver<ProcessingResponse> call;
    private final EventExecutor executor;
    private final ConnectionHandlerFactory factory;
    private final StreamHeaders headers;
    private final int inboundWindow;
    private final TransportMetrics metrics;

    private ConnectionHandler handler;
    /** Set once the connection is over (closed, cancelled or failed): later messages are ignored, never forwarded. */
    private boolean done;
    /** Inbound messages processed while the response side was not ready; requested once it is. */
    private int owedRequests;
    /**
     * The request whose chunk waits for a deferred rewrite (a data key still on its way from the KMS), with the
     * response built so far; requests arriving meanwhile queue behind it, because Envoy matches responses to
     * requests by order alone. The queue is bounded by the inbound window: no more is requested while parked.
     */
    private ProcessingRequest parked;
    private ProcessingResponse.Builder parkedResponse;
    private boolean parkedOnRead;
    private final ArrayDeque<ProcessingRequest> queued = new ArrayDeque<>();

    ExtProcStream(long id, ServerCallStreamObserver<ProcessingResponse> call, EventExecutor executor,
                  ConnectionHandlerFactory factory, StreamHeaders headers, int inboundWindow, TransportMetrics metrics) {
        this.id = id;
        this.headers = headers;
        this.call = call;
        this.executor = executor;
        this.factory = factory;
        this.inboundWindow = inboundWindow;
        this.metrics = metrics;
    }

    /** Called by the service before it returns this observer to gRPC, on the transport thread. */
    void install() {
        call.disableAutoRequest();
        call.setOnCancelHandler(() -> hop(this::onCancelled));
        call.setOnReadyHandler(() -> hop(this::onResponseSideReady));
        metrics.streamStarted();
        hop(this::open);
    }

    @Override
    public void onNext(ProcessingRequest request) {
        metrics.requestReceived();
        hop(() -> handle(request));
    }

    @Override
    public void onError(Throwable t) {
        hop(() -> onStreamError(t));
    }

    @Override
    public void onCompleted() {
        hop(this::onHalfClosed);
    }

    private void open() {
        try {
            handler = factory.open(headers);
            if (handler == null) {
                throw new IllegalStateException("connection handler factory returned null");
            }
        } catch (RuntimeException e) {
            log.warn("ext_proc stream {}: cannot open a connection handler, closing the connection", id, e);
            metrics.streamError();
            done = true;
            metrics.streamEnded();
            call.onError(Status.INTERNAL.withDescription("connection handler unavailable").asRuntimeException());
            return;
        }
        // Nothing is read before the handler exists; from here on at most inboundWindow requests are in flight.
        call.request(inboundWindow);
    }

    private void handle(ProcessingRequest request) {
        if (done) {
            return;
        }
        if (parked != null) {
            queued.add(request);
            return;
        }
        ProcessingResponse.Builder response = ProcessingResponse.newBuilder()
                // Envoy never reads this field; MODIFIED states what is true: the data field holds what to forward.
                .setDataProcessingStatus(DataProcessedStatus.MODIFIED);
        String direction = "read";
        try {
            if (!request.hasReadData() && !request.hasWriteData()) {
                throw new ProtocolViolation("request carries neither read_data nor write_data");
            }
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
        } catch (Exception e) {
            failClosed(request, direction, e);
            return;
        }
        send(response);
    }

    /** Answers the request's write data into {@code response}; false when it was parked instead. */
    private boolean writeInto(ProcessingRequest request, ProcessingResponse.Builder response, boolean resuming)
            throws Exception {
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

    private void send(ProcessingResponse.Builder response) {
        call.onNext(response.build());
        metrics.requestAnswered();
        if (call.isReady()) {
            call.request(1);
        } else {
            // Envoy is not reading responses: stop reading requests until it does, so neither side piles up.
            owedRequests++;
        }
    }

    private void park(ProcessingRequest request, ProcessingResponse.Builder response, boolean onRead, RewriteDeferred d) {
        parked = request;
        parkedResponse = response;
        parkedOnRead = onRead;
        metrics.rewriteDeferred();
        log.debug("ext_proc stream {}: {} rewrite deferred: {}", id, onRead ? "read" : "write", d.getMessage());
        // Whatever the outcome, retry on this stream's thread: a failed key fetch then surfaces as the real error.
        d.ready().whenComplete((ignored, error) -> hop(this::resumeParked));
    }

    private void resumeParked() {
        if (done || parked == null) {
            return;
        }
        ProcessingRequest request = parked;
        ProcessingResponse.Builder response = parkedResponse;
        boolean onRead = parkedOnRead;
        parked = null;
        parkedResponse = null;
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
        } catch (Exception e) {
            failClosed(request, onRead ? "read" : "write", e);
            return;
        }
        send(response);
        while (!done && parked == null && !queued.isEmpty()) {
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
    private void failClosed(ProcessingRequest request, String direction, Exception e) {
        done = true;
        String reason = e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage());
        if (e instanceof ProtocolViolation) {
            metrics.streamError();
            log.warn("ext_proc stream {}: protocol violation, resetting the connection: {}", id, reason);
        } else {
            metrics.handlerFailed();
            if (e instanceof RuntimeException) {
                // Unchecked means a bug rather than bad traffic: keep the stack trace.
                log.warn("ext_proc stream {}: {} handler failed, resetting the connection: {}", id, direction, reason, e);
            } else {
                log.warn("ext_proc stream {}: {} handler failed, resetting the connection: {}", id, direction, reason);
            }
        }
        ProcessingResponse.Builder reset = ProcessingResponse.newBuilder()
                .setDataProcessingStatus(DataProcessedStatus.MODIFIED)
                .setConnectionStatus(ConnectionStatus.CLOSE_RST);
        if (request.hasWriteData()) {
            reset.setWriteData(Data.getDefaultInstance());
        }
        if (request.hasReadData() || !request.hasWriteData()) {
            reset.setReadData(Data.getDefaultInstance());
        }
        try {
            call.onNext(reset.build());
            call.onError(Status.INTERNAL.withDescription("connection handler failed; connection reset").asRuntimeException());
        } catch (RuntimeException sendFailure) {
            log.debug("ext_proc stream {}: could not send the reset, the stream is already gone", id, sendFailure);
        }
        closeHandler();
    }

    private void onResponseSideReady() {
        if (!done && owedRequests > 0 && call.isReady()) {
            int owed = owedRequests;
            owedRequests = 0;
            call.request(owed);
        }
    }

    /** Envoy cancels the stream when the connection closes: the normal end of a connection. */
    private void onCancelled() {
        if (!done) {
            done = true;
            log.debug("ext_proc stream {}: cancelled by Envoy, connection closed", id);
            closeHandler();
        }
    }

    private void onStreamError(Throwable t) {
        if (done) {
            return;
        }
        done = true;
        Status status = Status.fromThrowable(t);
        if (status.getCode() == Status.Code.CANCELLED) {
            log.debug("ext_proc stream {}: cancelled, connection closed", id);
        } else {
            metrics.streamError();
            log.warn("ext_proc stream {}: stream failed: {}", id, status);
        }
        closeHandler();
    }

    private void onHalfClosed() {
        if (done) {
            return;
        }
        done = true;
        closeHandler();
        call.onCompleted();
    }

    private void closeHandler() {
        metrics.streamEnded();
        parked = null;
        parkedResponse = null;
        queued.clear();
        if (handler == null) {
            return;
        }
        try {
            handler.onClose();
        } catch (RuntimeException e) {
            log.warn("ext_proc stream {}: connection handler failed to close", id, e);
        }
    }

    private void hop(Runnable task) {
        try {
            executor.execute(task);
        } catch (RejectedExecutionException e) {
            // Only during shutdown, after the gRPC server has stopped: nothing is left to forward to.
            log.debug("ext_proc stream {}: worker already shut down", id);
        }
    }

    /** Envoy sent something the protocol does not allow; handled like a handler failure, counted apart. */
    private static final class ProtocolViolation extends Exception {
        ProtocolViolation(String message) {
            super(message);
        }
    }
}
