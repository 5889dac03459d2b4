package io.meshcrypt.filter.transport;

import io.envoyproxy.envoy.service.network_ext_proc.v3.NetworkExternalProcessorGrpc;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.netty.util.concurrent.EventExecutorGroup;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Envoy's network ext_proc service: each {@code Process} stream is one proxied TCP connection, handled by
 * one {@link ConnectionHandler} on one worker thread, picked when the stream starts.
 *
 * <p>Run it on a server with a direct executor: gRPC callbacks only hand work to the worker.
 */
public final class NetworkExtProcService extends NetworkExternalProcessorGrpc.NetworkExternalProcessorImplBase {

    private final ConnectionHandlerFactory factory;
    private final EventExecutorGroup workers;
    private final int inboundWindow;
    private final TransportMetrics metrics;
    private final AtomicLong streamIds = new AtomicLong();

    /**
     * @param inboundWindow how many requests of one stream may be read ahead of the one being processed
     */
    public NetworkExtProcService(ConnectionHandlerFactory factory, EventExecutorGroup workers, int inboundWindow,
                                 TransportMetrics metrics) {
        if (inboundWindow < 1) {
            throw new IllegalArgumentException("inboundWindow must be >= 1: " + inboundWindow);
        }
        this.factory = Objects.requireNonNull(factory, "factory");
        this.workers = Objects.requireNonNull(workers, "workers");
        this.inboundWindow = inboundWindow;
        this.metrics = Objects.requireNonNull(metrics, "metrics");
    }

    @Override
    public StreamObserver<ProcessingRequest> process(StreamObserver<ProcessingResponse> responseObserver) {
        ExtProcStream stream = new ExtProcStream(streamIds.incrementAndGet(),
                (ServerCallStreamObserver<ProcessingResponse>) responseObserver, workers.next(), factory,
                inboundWindow, metrics);
        stream.install();
        return stream;
    }
}
