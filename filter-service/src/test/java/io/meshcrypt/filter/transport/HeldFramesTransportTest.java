package io.meshcrypt.filter.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.service.network_ext_proc.v3.Data;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse.ConnectionStatus;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.framing.FrameStream;
import io.meshcrypt.filter.framing.HeldBytesBudget;
import io.meshcrypt.filter.framing.KafkaFrameException;
import io.meshcrypt.filter.framing.RewriteDeferred;
import io.meshcrypt.filter.framing.RewriteEveryFrame;
import io.meshcrypt.filter.transport.ExtProcTestClient.Responses;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The held-bytes budget and the held-frame deadline through the real gRPC server, with a connection handler wired the
 * way KafkaConnection is to be: one budget account shared by both directions' FrameStreams, the oldest held frame
 * reported to the transport, everything released on close.
 */
class HeldFramesTransportTest {

    private static final long TIMEOUT_SECONDS = 10;

    private final List<AutoCloseable> resources = new ArrayList<>();

    @AfterEach
    void tearDown() throws Exception {
        for (int i = resources.size() - 1; i >= 0; i--) {
            resources.get(i).close();
        }
    }

    /** Rewrites every frame by prefixing its body with 'X'; wired to a budget like KafkaConnection. */
    static final class FramingHandler implements ConnectionHandler {
        private final HeldBytesBudget.Account account;
        private final FrameStream requests;
        private final FrameStream responses;

        FramingHandler(HeldBytesBudget budget) {
            this.account = budget.newAccount();
            RewriteEveryFrame rewriteAll = (frame, original) ->
                    ByteString.copyFrom(ByteBuffer.allocate(5).putInt(frame.remaining() + 1).put((byte) 'X').flip())
                            .concat(ByteString.copyFrom(frame));
            this.requests = new FrameStream(0, 1 << 20, rewriteAll, account);
            this.responses = new FrameStream(0, 1 << 20, rewriteAll, account);
        }

        @Override
        public ByteString onRead(ByteString data, boolean endOfStream) throws KafkaFrameException {
            return requests.accept(data);
        }

        @Override
        public ByteString onWrite(ByteString data, boolean endOfStream) throws KafkaFrameException {
            return responses.accept(data);
        }

        @Override
        public long heldFrameSinceNanos() {
            return FrameStream.oldestHeldSinceNanos(requests, responses);
        }

        @Override
        public void onClose() {
            requests.close();
            responses.close();
            account.close();
        }
    }

    private ExtProcServer start(HeldBytesBudget budget, Duration heldFrameTimeout) throws Exception {
        return start(headers -> new FramingHandler(budget), heldFrameTimeout);
    }

    private ExtProcServer start(ConnectionHandlerFactory factory, Duration heldFrameTimeout) throws Exception {
        ExtProcServer server = ExtProcServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0),
                factory, TestLimits.extProc().withWorkerThreads(1)
                        .withShutdownGrace(Duration.ofSeconds(1)).withHeldFrameTimeout(heldFrameTimeout));
        resources.add(server);
        return server;
    }

    /** Every request frame's rewrite defers, each time until the future {@code readiness} gives completes. */
    static final class DeferringHandler implements ConnectionHandler {
        final AtomicInteger rewrites = new AtomicInteger();
        private final FrameStream requests;

        DeferringHandler(Supplier<CompletionStage<?>> readiness) {
            this.requests = new FrameStream(0, 1 << 20, (RewriteEveryFrame) (frame, original) -> {
                rewrites.incrementAndGet();
                throw new RewriteDeferred("key not ready", readiness.get());
            });
        }

        @Override
        public ByteString onRead(ByteString data, boolean endOfStream) throws KafkaFrameException {
            return requests.accept(data);
        }

        @Override
        public ByteString resumeRead() throws KafkaFrameException {
            return requests.resume();
        }

        @Override
        public ByteString onWrite(ByteString data, boolean endOfStream) {
            return data;
        }

        @Override
        public long heldFrameSinceNanos() {
            return requests.heldSinceNanos();
        }

        @Override
        public void onClose() {
            requests.close();
        }
    }

    private StreamObserver<ProcessingRequest> open(ExtProcServer server, Responses responses) {
        return ExtProcTestClient.connect(server, resources).process(responses);
    }

    private static ProcessingRequest read(ByteString data) {
        return ProcessingRequest.newBuilder().setReadData(Data.newBuilder().setData(data)).build();
    }

    /** The size field announcing {@code size} bytes and the first {@code sent} of them. */
    private static ByteString announce(int size, int sent) {
        return ByteString.copyFrom(ByteBuffer.allocate(4 + sent).putInt(size).array());
    }

    private static void awaitTrue(java.util.function.BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_SECONDS);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for: " + what);
            }
            Thread.sleep(10);
        }
    }

    @Test
    void givenSilentConnectionsAnnouncedLargeFrames_whenAnotherConnectionAnnouncesOne_thenNoneIsResetAndSmallFramesFlow()
            throws Exception {
        // Three announcements together exceed the total: they used to be reserved up front, resetting the third.
        HeldBytesBudget budget = new HeldBytesBudget(300_000, 500_000, 3);
        ExtProcServer server = start(budget, Duration.ofSeconds(30));
        for (int i = 0; i < 3; i++) {
            Responses silent = new Responses();
            open(server, silent).onNext(read(announce(200_000, 10)));
            ProcessingResponse answer = silent.nextResponse();
            assertNotEquals(ConnectionStatus.CLOSE_RST, answer.getConnectionStatus());
            assertTrue(answer.getReadData().getData().isEmpty());
        }
        awaitTrue(() -> budget.heldBytes() == 3 * 14, "only the bytes received are charged to the total");
        Responses healthy = new Responses();
        StreamObserver<ProcessingRequest> healthyRequests = open(server, healthy);

        for (int i = 0; i < 10; i++) {
            healthyRequests.onNext(read(ByteString.copyFrom(ByteBuffer.allocate(7).putInt(3).put(new byte[] {1, 2, 3}).array())));
            assertEquals(ByteString.copyFrom(new byte[] {0, 0, 0, 4, 'X', 1, 2, 3}), healthy.nextResponse().getReadData().getData());
        }

        assertEquals(3 * 14, budget.heldBytes());
        assertEquals(0, server.metrics().handlerFailures());
    }

    @Test
    void givenDeferredFrameWhoseKeyNeverComes_whenTheHeldFrameTimeoutPasses_thenConnectionReset() throws Exception {
        ExtProcServer server = start(headers -> new DeferringHandler(CompletableFuture::new), Duration.ofMillis(300));
        Responses responses = new Responses();

        open(server, responses).onNext(read(ByteString.copyFrom(new byte[] {0, 0, 0, 2, 7, 7})));

        Object terminal = responses.next();
        assertEquals(Status.Code.DEADLINE_EXCEEDED, Status.fromThrowable(assertInstanceOf(Throwable.class, terminal)).getCode());
        assertEquals(1, server.metrics().heldFrameTimeouts());
    }

    @Test
    void givenFrameDeferredAgainAndAgain_whenTheHeldFrameTimeoutPasses_thenConnectionReset() throws Exception {
        DeferringHandler[] handler = new DeferringHandler[1];
        ExtProcServer server = start(headers -> handler[0] = new DeferringHandler(
                () -> CompletableFuture.runAsync(() -> { }, CompletableFuture.delayedExecutor(20, TimeUnit.MILLISECONDS))),
                Duration.ofMillis(300));
        Responses responses = new Responses();

        open(server, responses).onNext(read(ByteString.copyFrom(new byte[] {0, 0, 0, 2, 7, 7})));

        Object terminal = responses.next();
        assertEquals(Status.Code.DEADLINE_EXCEEDED, Status.fromThrowable(assertInstanceOf(Throwable.class, terminal)).getCode());
        assertTrue(handler[0].rewrites.get() > 2, "the frame was re-deferred several times before the deadline: "
                + handler[0].rewrites.get());
    }

    @Test
    void givenTrickledFrame_whenPeerStopsSending_thenResetAtTheDeadlineAndItsReservationReleased() throws Exception {
        HeldBytesBudget budget = new HeldBytesBudget(1 << 20, 1 << 20, 3);
        ExtProcServer server = start(budget, Duration.ofMillis(400));
        Responses trickler = new Responses();
        StreamObserver<ProcessingRequest> requests = open(server, trickler);

        requests.onNext(read(announce(100_000, 100)));
        trickler.nextResponse();
        requests.onNext(read(ByteString.copyFrom(new byte[100])));
        trickler.nextResponse();
        long heldWhileTrickling = budget.heldBytes();

        Object terminal = trickler.next();
        assertEquals(Status.Code.DEADLINE_EXCEEDED, Status.fromThrowable(assertInstanceOf(Throwable.class, terminal)).getCode());
        assertEquals(4 + 100 + 100, heldWhileTrickling, "what was received, not the announced 100 000 bytes");
        awaitTrue(() -> budget.heldBytes() == 0, "the reservation is released when the connection closes");
        assertEquals(1, server.metrics().heldFrameTimeouts());
    }
}
