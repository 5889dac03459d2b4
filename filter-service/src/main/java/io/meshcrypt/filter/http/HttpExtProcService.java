package io.meshcrypt.filter.http;

import io.envoyproxy.envoy.service.ext_proc.v3.ExternalProcessorGrpc;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.meshcrypt.filter.transport.ExtProcStream;
import io.meshcrypt.filter.transport.StreamIdentity;
import io.meshcrypt.filter.transport.TransportMetrics;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.EventExecutorGroup;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Envoy's HTTP ext_proc service ({@code envoy.service.ext_proc.v3.ExternalProcessor}): one stream per HTTP request.
 * Like the network service it runs on a direct-executor server, so callbacks only hop onto the stream's worker
 * ({@link ExtProcStream}), which parses, transforms and answers; JSON and crypto never run on gRPC's transport threads.
 *
 * <p>Fail closed: Envoy treats a stream that ends OK as "continue unprocessed", so this side never completes a
 * stream before Envoy does. A rejected body or an internal error is answered with an ImmediateResponse and the stream
 * is then ended with an error status, so even a lost ImmediateResponse (with failure_mode_allow off) fails the
 * request instead of forwarding it.
 */
public final class HttpExtProcService extends ExternalProcessorGrpc.ExternalProcessorImplBase {

    private static final Logger log = LoggerFactory.getLogger(HttpExtProcService.class);

    private final HttpProcessor processor;
    private final EventExecutorGroup workers;
    /** Counted like the network streams' but not published: the HTTP side has no metrics of its own yet. */
    private final TransportMetrics metrics = new TransportMetrics();
    private final AtomicLong streamIds = new AtomicLong();

    public HttpExtProcService(HttpProcessor processor, EventExecutorGroup workers) {
        this.processor = Objects.requireNonNull(processor, "processor");
        this.workers = Objects.requireNonNull(workers, "workers");
    }

    @Override
    public StreamObserver<ProcessingRequest> process(StreamObserver<ProcessingResponse> responseObserver) {
        Stream stream = new Stream(streamIds.incrementAndGet(), (ServerCallStreamObserver<ProcessingResponse>) responseObserver,
                ExtProcStream.executorFor(workers), metrics, processor.open(StreamIdentity.CURRENT.get()));
        stream.install();
        return stream;
    }

    /** One HTTP exchange; {@link #exchange} is confined to the stream's worker. */
    private static final class Stream extends ExtProcStream<ProcessingRequest, ProcessingResponse> {
        private final HttpExchange exchange;

        Stream(long id, ServerCallStreamObserver<ProcessingResponse> call, EventExecutor executor, TransportMetrics metrics,
               HttpExchange exchange) {
            super(HttpExtProcService.log, "http ext_proc stream", id, call, executor, metrics);
            this.exchange = exchange;
        }

        @Override
        protected void open() {
            // Envoy sends the next message only after our answer; one request at a time bounds memory per stream.
            request(1);
        }

        /** Envoy is done with the exchange: ending OK now forwards nothing unprocessed. */
        @Override
        protected void onHalfClosed() {
            release();
            complete();
        }

        @Override
        protected void releaseState() {
            // The exchange holds nothing beyond the stream's life.
        }

        @Override
        protected void handle(ProcessingRequest request) {
            ProcessingResponse response;
            try {
                response = exchange.handle(request);
            } catch (KeyWait wait) {
                // The worker never waits for the KMS: answer this message again once its data key is ready (Envoy
                // sends nothing else meanwhile; its message_timeout bounds the wait).
                resumeWhen(wait.ready(), () -> handle(request));
                return;
            } catch (RuntimeException e) {
                log.warn("http ext_proc stream {}: processing failed, answering 500", id, e);
                response = HttpExchange.internalError();
            }
            if (response.hasImmediateResponse()) {
                answerAndFail(response, Status.ABORTED.withDescription("request answered by meshcrypt"));
                return;
            }
            try {
                send(response);
                requestNext();
            } catch (RuntimeException e) {
                markDone();
                log.debug("http ext_proc stream {}: could not answer, the stream is gone", id, e);
                release();
            }
        }
    }
}
