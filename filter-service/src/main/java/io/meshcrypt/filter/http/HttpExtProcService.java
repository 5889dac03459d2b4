package io.meshcrypt.filter.http;

import io.envoyproxy.envoy.service.ext_proc.v3.ExternalProcessorGrpc;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.EventExecutorGroup;
import java.util.Objects;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Envoy's HTTP ext_proc service ({@code envoy.service.ext_proc.v3.ExternalProcessor}): one stream per HTTP request.
 * Like the network service it runs on a direct-executor server, so callbacks only hop onto the stream's worker,
 * which parses, transforms and answers; JSON and crypto never run on gRPC's transport threads.
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
    private final AtomicLong streamIds = new AtomicLong();

    public HttpExtProcService(HttpProcessor processor, EventExecutorGroup workers) {
        this.processor = Objects.requireNonNull(processor, "processor");
        this.workers = Objects.requireNonNull(workers, "workers");
    }

    @Override
    public StreamObserver<ProcessingRequest> process(StreamObserver<ProcessingResponse> responseObserver) {
        Stream stream = new Stream(streamIds.incrementAndGet(), (ServerCallStreamObserver<ProcessingResponse>) responseObserver,
                workers.next(), processor.open());
        stream.install();
        return stream;
    }

    /** Every field is confined to {@link #executor}. */
    private static final class Stream implements StreamObserver<ProcessingRequest> {
        private final long id;
        private final ServerCallStreamObserver<ProcessingResponse> call;
        private final EventExecutor executor;
        private final HttpExchange exchange;
        private boolean done;

        Stream(long id, ServerCallStreamObserver<ProcessingResponse> call, EventExecutor executor, HttpExchange exchange) {
            this.id = id;
            this.call = call;
            this.executor = executor;
            this.exchange = exchange;
        }

        void install() {
            // Envoy sends the next message only after our answer; one request at a time bounds memory per stream.
            call.disableAutoRequest();
            call.setOnCancelHandler(() -> hop(() -> done = true));
            call.request(1);
        }

        @Override
        public void onNext(ProcessingRequest request) {
            hop(() -> handle(request));
        }

        @Override
        public void onError(Throwable t) {
            hop(() -> {
                if (!done && Status.fromThrowable(t).getCode() != Status.Code.CANCELLED) {
                    log.warn("http ext_proc stream {}: stream failed: {}", id, Status.fromThrowable(t));
                }
                done = true;
            });
        }

        @Override
        public void onCompleted() {
            hop(() -> {
                if (!done) {
                    done = true;
                    call.onCompleted();
                }
            });
        }

        private void handle(ProcessingRequest request) {
            if (done) {
                return;
            }
            ProcessingResponse response;
            try {
                response = exchange.handle(request);
            } catch (KeyWait wait) {
                // The worker never waits for the KMS: answer this message again once its data key is ready (Envoy
                // sends nothing else meanwhile; its message_timeout bounds the wait).
                wait.ready().whenComplete((ignored, error) -> hop(() -> handle(request)));
                return;
            } catch (RuntimeException e) {
                log.warn("http ext_proc stream {}: processing failed, answering 500", id, e);
                response = HttpExchange.internalError();
            }
            try {
                call.onNext(response);
                if (response.hasImmediateResponse()) {
                    done = true;
                    call.onError(Status.ABORTED.withDescription("request answered by meshcrypt").asRuntimeException());
                } else {
                    call.request(1);
                }
            } catch (RuntimeException e) {
                done = true;
                log.debug("http ext_proc stream {}: could not answer, the stream is gone", id, e);
            }
        }

        private void hop(Runnable task) {
            try {
                executor.execute(task);
            } catch (RejectedExecutionException e) {
                log.debug("http ext_proc stream {}: worker already shut down", id);
            }
        }
    }
}
