package io.meshcrypt.filter.transport;

import io.envoyproxy.envoy.service.network_ext_proc.v3.NetworkExternalProcessorGrpc;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.netty.util.concurrent.EventExecutorGroup;
import java.time.Duration;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
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
    private final Duration heldFrameTimeout;
    private final AtomicLong streamIds = new AtomicLong();
    private final ConnectionLog connectionLog;
    /** The streams not yet over, for {@link #drain()}. */
    private final Set<NetworkExtProcStream> open = ConcurrentHashMap.newKeySet();

    /**
     * @param inboundWindow how many requests of one stream may be read ahead of the one being processed
     * @param heldFrameTimeout how long a connection may hold an incomplete frame before it is reset
     */
    public NetworkExtProcService(ConnectionHandlerFactory factory, EventExecutorGroup workers, int inboundWindow,
                                 TransportMetrics metrics, Duration heldFrameTimeout) {
        this(factory, workers, inboundWindow, metrics, heldFrameTimeout, ConnectionLog.TEXT);
    }

    /** @param connectionLog how each connection's end is logged */
    public NetworkExtProcService(ConnectionHandlerFactory factory, EventExecutorGroup workers, int inboundWindow,
                                 TransportMetrics metrics, Duration heldFrameTimeout, ConnectionLog connectionLog) {
        this.connectionLog = Objects.requireNonNull(connectionLog, "connectionLog");
        Objects.requireNonNull(heldFrameTimeout, "heldFrameTimeout");
        if (heldFrameTimeout.isNegative() || heldFrameTimeout.isZero()) {
            throw new IllegalArgumentException("heldFrameTimeout must be positive: " + heldFrameTimeout);
        }
        this.heldFrameTimeout = heldFrameTimeout;
        if (inboundWindow < 1) {
            throw new IllegalArgumentException("inboundWindow must be >= 1: " + inboundWindow);
        }
        this.factory = Objects.requireNonNull(factory, "factory");
        this.workers = Objects.requireNonNull(workers, "workers");
        this.inboundWindow = inboundWindow;
        this.metrics = Objects.requireNonNull(metrics, "metrics");
    }

    /**
     * The generated service, but with requests parsed by {@link AliasingRequestMarshaller}: each chunk is read where the
     * message was read, not copied out of it once more.
     */
    @SuppressWarnings("unchecked")
    private ServerServiceDefinition aliasingRequests() {
        ServerServiceDefinition generated = bindService();
        MethodDescriptor<ProcessingRequest, ProcessingResponse> process = NetworkExternalProcessorGrpc.getProcessMethod();
        ServerCallHandler<ProcessingRequest, ProcessingResponse> handler =
                (ServerCallHandler<ProcessingRequest, ProcessingResponse>) generated
                        .getMethod(process.getFullMethodName()).getServerCallHandler();
        return ServerServiceDefinition.builder(generated.getServiceDescriptor().getName())
                .addMethod(process.toBuilder(AliasingRequestMarshaller.INSTANCE, process.getResponseMarshaller()).build(),
                        handler)
                .build();
    }

    /** Carries each call's request headers into {@link #process}, which gRPC calls without them. */
    private static final Context.Key<Metadata> HEADERS = Context.key("meshcrypt-request-headers");

    /** This service, with the interceptor that makes each stream's request headers available to its handler. */
    ServerServiceDefinition withHeaders() {
        return ServerInterceptors.intercept(aliasingRequests(), new ServerInterceptor() {
            @Override
            public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
                return Contexts.interceptCall(Context.current().withValue(HEADERS, headers), call, headers, next);
            }
        });
    }

    @Override
    public StreamObserver<ProcessingRequest> process(StreamObserver<ProcessingResponse> responseObserver) {
        Metadata metadata = HEADERS.get();
        StreamHeaders headers = metadata == null ? StreamHeaders.NONE
                : name -> metadata.get(Metadata.Key.of(name, Metadata.ASCII_STRING_MARSHALLER));
        NetworkExtProcStream stream = new NetworkExtProcStream(streamIds.incrementAndGet(),
                (ServerCallStreamObserver<ProcessingResponse>) responseObserver, ExtProcStream.executorFor(workers), factory, headers,
                StreamIdentity.CURRENT.get(), inboundWindow, metrics, heldFrameTimeout, connectionLog);
        open.add(stream);
        stream.whenReleased(() -> open.remove(stream));
        stream.install();
        return stream;
    }

    /**
     * Closes every open connection at its next quiet point (between requests; {@link NetworkExtProcStream#drain}).
     * Call after the server stopped taking new streams.
     */
    void drain() {
        open.forEach(NetworkExtProcStream::drain);
    }

    /** Streams not yet over. */
    int openStreams() {
        return open.size();
    }
}
