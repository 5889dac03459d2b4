package io.meshcrypt.filter.transport;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.service.network_ext_proc.v3.Data;
import io.envoyproxy.envoy.service.network_ext_proc.v3.NetworkExternalProcessorGrpc;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import io.meshcrypt.filter.TestLimits;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/** The Envoy side of the transport tests: a plaintext gRPC client and what one stream of it observed. */
final class ExtProcTestClient {
    static final long TIMEOUT_SECONDS = 10;

    private ExtProcTestClient() {
    }

    /**
     * A stub to a new server of one worker, so that every stream is served on the same thread, each connection
     * handled by what {@code factory} opens; server and channel are closed with {@code resources}.
     */
    static NetworkExternalProcessorGrpc.NetworkExternalProcessorStub oneWorker(ConnectionHandlerFactory factory,
                                                                               List<AutoCloseable> resources)
            throws Exception {
        ExtProcServer server = ExtProcServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), factory,
                TestLimits.extProc().withWorkerThreads(1).withShutdownGrace(Duration.ofSeconds(2)));
        resources.add(server);
        return connect(server, resources);
    }

    /** A request carrying {@code data} from the client. */
    static ProcessingRequest read(String data) {
        return ProcessingRequest.newBuilder().setReadData(Data.newBuilder().setData(ByteString.copyFromUtf8(data))).build();
    }

    /** A stub on a new channel to {@code server}; the channel is shut down with {@code resources}. */
    static NetworkExternalProcessorGrpc.NetworkExternalProcessorStub connect(ExtProcServer server,
                                                                             List<AutoCloseable> resources) {
        ManagedChannel channel = NettyChannelBuilder
                .forAddress(InetAddress.getLoopbackAddress().getHostAddress(), server.port())
                .usePlaintext()
                .build();
        resources.add(() -> {
            channel.shutdownNow();
            channel.awaitTermination(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        });
        return NetworkExternalProcessorGrpc.newStub(channel);
    }

    /** What the client side of one stream observed: responses, then at most one terminal event. */
    static final class Responses implements StreamObserver<ProcessingResponse> {
        static final Object COMPLETED = new Object();
        final BlockingQueue<Object> events = new LinkedBlockingQueue<>();

        @Override
        public void onNext(ProcessingResponse value) {
            events.add(value);
        }

        @Override
        public void onError(Throwable t) {
            events.add(t);
        }

        @Override
        public void onCompleted() {
            events.add(COMPLETED);
        }

        Object next() throws InterruptedException {
            Object event = events.poll(TIMEOUT_SECONDS, TimeUnit.SECONDS);
            if (event == null) {
                throw new AssertionError("no event from the server within " + TIMEOUT_SECONDS + " s");
            }
            return event;
        }

        ProcessingResponse nextResponse() throws InterruptedException {
            return assertInstanceOf(ProcessingResponse.class, next());
        }

        /** The data of the next response, whichever direction it answers. */
        String nextData() throws InterruptedException {
            ProcessingResponse r = nextResponse();
            return (r.hasReadData() ? r.getReadData() : r.getWriteData()).getData().toStringUtf8();
        }
    }
}
