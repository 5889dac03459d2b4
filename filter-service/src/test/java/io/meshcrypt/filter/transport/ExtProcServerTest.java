package io.meshcrypt.filter.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.service.network_ext_proc.v3.Data;
import io.envoyproxy.envoy.service.network_ext_proc.v3.NetworkExternalProcessorGrpc;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse.ConnectionStatus;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse.DataProcessedStatus;
import io.meshcrypt.filter.framing.RewriteDeferred;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.transport.ExtProcTestClient.Responses;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class ExtProcServerTest {

    private static final long TIMEOUT_SECONDS = 10;

    private final List<AutoCloseable> resources = new ArrayList<>();
    private final List<RecordingHandler> handlers = new CopyOnWriteArrayList<>();

    @AfterEach
    void tearDown() throws Exception {
        for (int i = resources.size() - 1; i >= 0; i--) {
            resources.get(i).close();
        }
    }

    /**
     * Prefixes read bytes with "R:" and write bytes with "W:", throws on data "boom", and holds data "hold"
     * at {@link #gate} to simulate slow work. Data "overflow" throws a StackOverflowError, "assert" an AssertionError.
     * Data "hold-frame" starts holding an incomplete frame (see {@link ConnectionHandler#heldFrameSinceNanos}),
     * "frame-done" completes it. Records every call and the thread it came on.
     */
    static final class RecordingHandler implements ConnectionHandler {
        final List<String> calls = new CopyOnWriteArrayList<>();
        final Set<Thread> threads = ConcurrentHashMap.newKeySet();
        final CountDownLatch closed = new CountDownLatch(1);
        final CountDownLatch gate = new CountDownLatch(1);
        /** What a "defer" chunk waits for (a data key on its way, as the real handler would say). */
        final CompletableFuture<Void> keyReady = new CompletableFuture<>();
        volatile long heldSince = ConnectionHandler.NOT_HOLDING;
        /** Between requests: data "quiet" makes it so, "busy" ends it (as a request in flight would). */
        volatile boolean quiet;

        @Override
        public ByteString resumeRead() {
            calls.add("R:resumed");
            return ByteString.copyFromUtf8("R:defer");
        }

        @Override
        public ByteString onRead(ByteString data, boolean endOfStream) throws Exception {
            return handle("R:", data, endOfStream);
        }

        @Override
        public ByteString onWrite(ByteString data, boolean endOfStream) throws Exception {
            return handle("W:", data, endOfStream);
        }

        private ByteString handle(String prefix, ByteString data, boolean endOfStream) throws Exception {
            threads.add(Thread.currentThread());
            calls.add(prefix + data.toStringUtf8() + (endOfStream ? "|eos" : ""));
            if (data.toStringUtf8().equals("hold") && !gate.await(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                throw new IllegalStateException("gate never opened");
            }
            switch (data.toStringUtf8()) {
                case "defer" -> throw new RewriteDeferred("simulated data key on its way", keyReady);
                case "boom" -> throw new Exception("simulated rewrite failure");
                case "overflow" -> throw new StackOverflowError("simulated recursion in a decoder");
                case "assert" -> throw new AssertionError("simulated broken invariant");
                case "hold-frame" -> {
                    if (heldSince == ConnectionHandler.NOT_HOLDING) {
                        heldSince = System.nanoTime();
                    }
                    return ByteString.EMPTY;
                }
                case "frame-done" -> heldSince = ConnectionHandler.NOT_HOLDING;
                case "quiet" -> quiet = true;
                case "busy" -> quiet = false;
                default -> { }
            }
            return ByteString.copyFromUtf8(prefix).concat(data);
        }

        @Override
        public long heldFrameSinceNanos() {
            return heldSince;
        }

        @Override
        public boolean isQuiet() {
            return quiet;
        }

        @Override
        public void onClose() {
            threads.add(Thread.currentThread());
            calls.add("close");
            closed.countDown();
        }
    }

    private ExtProcServer startServer(ExtProcServer.Limits limits) throws Exception {
        ExtProcServer server = ExtProcServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), headers -> {
            RecordingHandler handler = new RecordingHandler();
            handlers.add(handler);
            return handler;
        }, limits);
        resources.add(server);
        return server;
    }

    private ExtProcServer startServer() throws Exception {
        return startServer(TestLimits.extProc().withWorkerThreads(2).withShutdownGrace(Duration.ofSeconds(2)));
    }

    private NetworkExternalProcessorGrpc.NetworkExternalProcessorStub client(ExtProcServer server) {
        return ExtProcTestClient.connect(server, resources);
    }

    private static ProcessingRequest read(String data, boolean endOfStream) {
        return ProcessingRequest.newBuilder()
                .setReadData(Data.newBuilder().setData(ByteString.copyFromUtf8(data)).setEndOfStream(endOfStream))
                .build();
    }

    private static ProcessingRequest write(String data, boolean endOfStream) {
        return ProcessingRequest.newBuilder()
                .setWriteData(Data.newBuilder().setData(ByteString.copyFromUtf8(data)).setEndOfStream(endOfStream))
                .build();
    }

    @Test
    void givenStreamWithRequestHeaders_whenItOpens_thenTheFactorySeesThemAndAStreamWithoutSeesNone() throws Exception {
        BlockingQueue<String> seen = new LinkedBlockingQueue<>();
        ExtProcServer server = ExtProcServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), headers -> {
            seen.add(String.valueOf(headers.get("x-meshcrypt-broker-listeners")));
            return new RecordingHandler();
        }, TestLimits.extProc());
        resources.add(server);
        Metadata sent = new Metadata();
        sent.put(Metadata.Key.of("x-meshcrypt-broker-listeners", Metadata.ASCII_STRING_MARSHALLER), "1=127.0.0.1:19193");

        client(server).withInterceptors(MetadataUtils.newAttachHeadersInterceptor(sent)).process(new Responses())
                .onNext(read("a", false));
        assertEquals("1=127.0.0.1:19193", seen.poll(TIMEOUT_SECONDS, TimeUnit.SECONDS));
        client(server).process(new Responses()).onNext(read("b", false));
        assertEquals("null", seen.poll(TIMEOUT_SECONDS, TimeUnit.SECONDS));
    }

    private RecordingHandler onlyHandler() throws InterruptedException {
        awaitTrue(() -> handlers.size() == 1, "handler opened");
        return handlers.get(0);
    }

    private static void awaitTrue(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_SECONDS);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for: " + what);
            }
            Thread.sleep(1);
        }
    }

    @Test
    void givenPipelinedRequestsBothDirections_whenProcessed_thenOneResponseEachInOrderWithHandlerBytes() throws Exception {
        ExtProcServer server = startServer();
        Responses responses = new Responses();
        StreamObserver<ProcessingRequest> requests = client(server).process(responses);

        int count = 200;
        for (int i = 0; i < count; i++) {
            requests.onNext(i % 3 == 0 ? write("w" + i, false) : read("r" + i, false));
        }

        for (int i = 0; i < count; i++) {
            ProcessingResponse response = responses.nextResponse();
            assertEquals(DataProcessedStatus.MODIFIED, response.getDataProcessingStatus());
            assertEquals(ConnectionStatus.CONTINUE, response.getConnectionStatus());
            if (i % 3 == 0) {
                assertTrue(response.hasWriteData() && !response.hasReadData(), "response " + i);
                assertEquals("W:w" + i, response.getWriteData().getData().toStringUtf8());
            } else {
                assertTrue(response.hasReadData() && !response.hasWriteData(), "response " + i);
                assertEquals("R:r" + i, response.getReadData().getData().toStringUtf8());
            }
        }
        RecordingHandler handler = onlyHandler();
        assertEquals(1, handler.threads.size(), "one connection is handled on one thread");
        assertTrue(handler.threads.iterator().next().getName().startsWith("extproc-worker"));
        assertEquals(count, server.metrics().requestsAnswered());
    }

    @Test
    void givenHandlerThrows_whenRequestProcessed_thenCloseRstThenErrorStatusAndLaterBytesNeverForwarded() throws Exception {
        ExtProcServer server = startServer();
        Responses responses = new Responses();
        StreamObserver<ProcessingRequest> requests = client(server).process(responses);

        requests.onNext(read("a", false));
        requests.onNext(read("boom", false));
        requests.onNext(read("plaintext-after-fault", false));
        requests.onNext(write("also-after-fault", false));

        assertEquals("R:a", responses.nextResponse().getReadData().getData().toStringUtf8());
        ProcessingResponse reset = responses.nextResponse();
        assertEquals(ConnectionStatus.CLOSE_RST, reset.getConnectionStatus());
        assertTrue(reset.hasReadData(), "the failed direction's sub-message is set");
        assertTrue(reset.getReadData().getData().isEmpty(), "nothing of the failed chunk is forwarded");
        Object terminal = responses.next();
        assertInstanceOf(Throwable.class, terminal, "the stream must end with an error, never OK");
        assertEquals(Status.Code.INTERNAL, Status.fromThrowable((Throwable) terminal).getCode());
        RecordingHandler handler = onlyHandler();
        assertTrue(handler.closed.await(TIMEOUT_SECONDS, TimeUnit.SECONDS));
        assertEquals(List.of("R:a", "R:boom", "close"), handler.calls, "later requests never reach the handler");
        assertNull(responses.events.poll(), "nothing follows the error status");
        assertEquals(1, server.metrics().handlerFailures());
    }

    @Test
    void givenEndOfStream_whenProcessed_thenEchoedWithDataAndWhenEmpty() throws Exception {
        ExtProcServer server = startServer();
        Responses responses = new Responses();
        StreamObserver<ProcessingRequest> requests = client(server).process(responses);

        requests.onNext(read("last", true));
        requests.onNext(write("", true));

        ProcessingResponse first = responses.nextResponse();
        assertTrue(first.getReadData().getEndOfStream());
        assertEquals("R:last", first.getReadData().getData().toStringUtf8());
        ProcessingResponse second = responses.nextResponse();
        assertTrue(second.hasWriteData());
        assertTrue(second.getWriteData().getEndOfStream());
        assertEquals("W:", second.getWriteData().getData().toStringUtf8());
        assertEquals(List.of("R:last|eos", "W:|eos"), onlyHandler().calls);
    }

    @Test
    void givenEmptyDataRequests_whenProcessed_thenAnsweredWithSubMessageSet() throws Exception {
        ConnectionHandler forwardsNothing = new ConnectionHandler() {
            @Override
            public ByteString onRead(ByteString data, boolean endOfStream) {
                return ByteString.EMPTY;
            }

            @Override
            public ByteString onWrite(ByteString data, boolean endOfStream) {
                return ByteString.EMPTY;
            }

            @Override
            public void onClose() {
            }
        };
        ExtProcServer server = ExtProcServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0),
                headers -> forwardsNothing, TestLimits.extProc().withWorkerThreads(1));
        resources.add(server);
        Responses responses = new Responses();
        StreamObserver<ProcessingRequest> requests = client(server).process(responses);

        requests.onNext(ProcessingRequest.newBuilder().setReadData(Data.getDefaultInstance()).build());
        requests.onNext(ProcessingRequest.newBuilder().setWriteData(Data.getDefaultInstance()).build());
        requests.onNext(read("held-by-handler", false));

        ProcessingResponse emptyRead = responses.nextResponse();
        assertTrue(emptyRead.hasReadData());
        assertFalse(emptyRead.hasWriteData());
        ProcessingResponse emptyWrite = responses.nextResponse();
        assertTrue(emptyWrite.hasWriteData());
        assertFalse(emptyWrite.hasReadData());
        ProcessingResponse held = responses.nextResponse();
        assertTrue(held.hasReadData(), "a response forwarding nothing still carries read_data");
        assertTrue(held.getReadData().getData().isEmpty());
        assertEquals(DataProcessedStatus.MODIFIED, held.getDataProcessingStatus());
    }

    @Test
    void givenRequestWithoutData_whenProcessed_thenConnectionResetAndStreamFailed() throws Exception {
        ExtProcServer server = startServer();
        Responses responses = new Responses();
        StreamObserver<ProcessingRequest> requests = client(server).process(responses);

        requests.onNext(ProcessingRequest.getDefaultInstance());

        ProcessingResponse reset = responses.nextResponse();
        assertEquals(ConnectionStatus.CLOSE_RST, reset.getConnectionStatus());
        assertTrue(reset.hasReadData());
        assertInstanceOf(Throwable.class, responses.next());
        assertTrue(onlyHandler().closed.await(TIMEOUT_SECONDS, TimeUnit.SECONDS));
        assertEquals(1, server.metrics().streamErrors());
    }

    @Test
    void givenClientCancels_whenStreamCancelled_thenHandlerClosedOnItsThread() throws Exception {
        ExtProcServer server = startServer();
        Responses responses = new Responses();
        StreamObserver<ProcessingRequest> requests = client(server).process(responses);
        requests.onNext(read("x", false));
        responses.nextResponse();

        ((ClientCallStreamObserver<ProcessingRequest>) requests).cancel("connection closed", null);

        RecordingHandler handler = onlyHandler();
        assertTrue(handler.closed.await(TIMEOUT_SECONDS, TimeUnit.SECONDS));
        assertEquals(List.of("R:x", "close"), handler.calls);
        assertEquals(1, handler.threads.size());
        awaitTrue(() -> server.metrics().streamsActive() == 0, "stream no longer active");
        assertEquals(0, server.metrics().streamErrors(), "cancellation is a normal close");
    }

    @Test
    void givenClientCompletes_whenHalfClosed_thenHandlerClosedAndStreamEndsWithErrorNeverOk() throws Exception {
        ExtProcServer server = startServer();
        Responses responses = new Responses();
        StreamObserver<ProcessingRequest> requests = client(server).process(responses);
        requests.onNext(read("x", false));

        requests.onCompleted();

        assertEquals("R:x", responses.nextResponse().getReadData().getData().toStringUtf8());
        Object terminal = responses.next();
        // OK would tell Envoy processing is over, and it would forward later bytes of the connection unprocessed.
        assertInstanceOf(Throwable.class, terminal, "half-close must end the stream with an error, never OK");
        assertEquals(Status.Code.ABORTED, Status.fromThrowable((Throwable) terminal).getCode());
        RecordingHandler handler = onlyHandler();
        assertTrue(handler.closed.await(TIMEOUT_SECONDS, TimeUnit.SECONDS));
        assertEquals(List.of("R:x", "close"), handler.calls);
    }

    @Test
    void givenHandlerThrowsStackOverflowError_whenOtherStreamShareItsWorker_thenOnlyThatConnectionResetAndOtherKeepsBeingAnswered()
            throws Exception {
        ExtProcServer server = startServer(TestLimits.extProc().withWorkerThreads(1)
                .withShutdownGrace(Duration.ofSeconds(2)));
        Responses healthy = new Responses();
        StreamObserver<ProcessingRequest> healthyRequests = client(server).process(healthy);
        healthyRequests.onNext(read("before", false));
        assertEquals("R:before", healthy.nextResponse().getReadData().getData().toStringUtf8());
        Responses attacked = new Responses();
        StreamObserver<ProcessingRequest> attackedRequests = client(server).process(attacked);

        attackedRequests.onNext(write("overflow", false));
        attackedRequests.onNext(write("after-the-error", false));

        ProcessingResponse reset = attacked.nextResponse();
        assertEquals(ConnectionStatus.CLOSE_RST, reset.getConnectionStatus());
        assertTrue(reset.hasWriteData() && reset.getWriteData().getData().isEmpty(), "nothing of the failed chunk is forwarded");
        Object terminal = attacked.next();
        assertInstanceOf(Throwable.class, terminal, "the stream must end with an error, never OK");
        assertEquals(Status.Code.INTERNAL, Status.fromThrowable((Throwable) terminal).getCode());
        RecordingHandler attackedHandler = handlers.get(1);
        assertTrue(attackedHandler.closed.await(TIMEOUT_SECONDS, TimeUnit.SECONDS));
        assertEquals(List.of("W:overflow", "close"), attackedHandler.calls, "later requests never reach the handler");
        // The same (only) worker goes on serving the healthy connection, in both directions.
        for (int i = 0; i < 20; i++) {
            healthyRequests.onNext(read("r" + i, false));
            healthyRequests.onNext(write("w" + i, false));
            assertEquals("R:r" + i, healthy.nextResponse().getReadData().getData().toStringUtf8());
            assertEquals("W:w" + i, healthy.nextResponse().getWriteData().getData().toStringUtf8());
        }
        assertEquals(1, server.metrics().handlerFailures());
        assertEquals(1, handlers.get(0).threads.size());
        assertEquals(handlers.get(0).threads, attackedHandler.threads, "both streams ran on the one worker");
    }

    @Test
    void givenHandlerThrowsAssertionError_whenRequestProcessed_thenCloseRstAndErrorStatus() throws Exception {
        ExtProcServer server = startServer();
        Responses responses = new Responses();
        StreamObserver<ProcessingRequest> requests = client(server).process(responses);

        requests.onNext(read("assert", false));

        assertEquals(ConnectionStatus.CLOSE_RST, responses.nextResponse().getConnectionStatus());
        assertEquals(Status.Code.INTERNAL, Status.fromThrowable(assertInstanceOf(Throwable.class, responses.next())).getCode());
        assertTrue(onlyHandler().closed.await(TIMEOUT_SECONDS, TimeUnit.SECONDS));
    }

    @Test
    void givenFactoryThrowsError_whenStreamOpens_thenStreamFailsAndWorkerServesTheNextStream() throws Exception {
        java.util.concurrent.atomic.AtomicInteger opened = new java.util.concurrent.atomic.AtomicInteger();
        ExtProcServer server = ExtProcServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), headers -> {
            if (opened.incrementAndGet() == 1) {
                throw new StackOverflowError("simulated");
            }
            RecordingHandler handler = new RecordingHandler();
            handlers.add(handler);
            return handler;
        }, TestLimits.extProc().withWorkerThreads(1).withShutdownGrace(Duration.ofSeconds(2)));
        resources.add(server);
        Responses first = new Responses();
        client(server).process(first).onNext(read("x", false));
        assertEquals(Status.Code.INTERNAL, Status.fromThrowable(assertInstanceOf(Throwable.class, first.next())).getCode());

        Responses second = new Responses();
        client(server).process(second).onNext(read("y", false));

        assertEquals("R:y", second.nextResponse().getReadData().getData().toStringUtf8());
    }

    @Test
    void givenHeldFrameNeverCompleted_whenPeerSendsNothingMore_thenStreamFailsAfterTimeoutAndHandlerClosed() throws Exception {
        ExtProcServer server = startServer(TestLimits.extProc().withWorkerThreads(1)
                .withShutdownGrace(Duration.ofSeconds(2)).withHeldFrameTimeout(Duration.ofMillis(300)));
        Responses responses = new Responses();
        StreamObserver<ProcessingRequest> requests = client(server).process(responses);
        long start = System.nanoTime();

        requests.onNext(read("hold-frame", false));

        assertTrue(responses.nextResponse().getReadData().getData().isEmpty(), "nothing of the held frame is forwarded");
        Object terminal = responses.next();
        long elapsedMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertInstanceOf(Throwable.class, terminal, "a trickling peer's stream ends with an error");
        assertEquals(Status.Code.DEADLINE_EXCEEDED, Status.fromThrowable((Throwable) terminal).getCode());
        assertTrue(elapsedMillis >= 300, "not before the timeout: " + elapsedMillis + " ms");
        RecordingHandler handler = onlyHandler();
        assertTrue(handler.closed.await(TIMEOUT_SECONDS, TimeUnit.SECONDS));
        assertEquals(List.of("R:hold-frame", "close"), handler.calls);
        assertEquals(1, server.metrics().heldFrameTimeouts());
        awaitTrue(() -> server.metrics().streamsActive() == 0, "stream no longer active");
    }

    @Test
    void givenHeldFrameTrickled_whenNextChunkArrivesPastTimeout_thenCloseRstForThatChunk() throws Exception {
        ExtProcServer server = startServer(TestLimits.extProc().withWorkerThreads(1)
                .withShutdownGrace(Duration.ofSeconds(2)).withHeldFrameTimeout(Duration.ofMillis(400)));
        Responses responses = new Responses();
        StreamObserver<ProcessingRequest> requests = client(server).process(responses);
        requests.onNext(read("hold-frame", false));
        responses.nextResponse();
        RecordingHandler handler = onlyHandler();
        // Hold the worker past the deadline, so the next chunk is processed before the timer can run.
        requests.onNext(read("hold", false));
        Thread.sleep(600);
        requests.onNext(read("hold-frame", false));

        handler.gate.countDown();

        ProcessingResponse reset = responses.nextResponse();
        assertEquals(ConnectionStatus.CLOSE_RST, reset.getConnectionStatus());
        assertTrue(reset.getReadData().getData().isEmpty());
        assertInstanceOf(Throwable.class, responses.next());
        assertTrue(handler.closed.await(TIMEOUT_SECONDS, TimeUnit.SECONDS));
        assertEquals(1, server.metrics().heldFrameTimeouts());
    }

    @Test
    void givenHeldFramesEachCompletedInTime_whenLongerThanTimeoutOverall_thenConnectionKeepsWorking() throws Exception {
        ExtProcServer server = startServer(TestLimits.extProc().withWorkerThreads(1)
                .withShutdownGrace(Duration.ofSeconds(2)).withHeldFrameTimeout(Duration.ofMillis(500)));
        Responses responses = new Responses();
        StreamObserver<ProcessingRequest> requests = client(server).process(responses);

        for (int i = 0; i < 4; i++) {
            requests.onNext(read("hold-frame", false));
            responses.nextResponse();
            Thread.sleep(200);
            requests.onNext(read("frame-done", false));
            assertEquals("R:frame-done", responses.nextResponse().getReadData().getData().toStringUtf8());
        }
        Thread.sleep(600);

        assertNull(responses.events.poll(), "no reset: every frame completed within its own deadline");
        assertEquals(0, server.metrics().heldFrameTimeouts());
        assertEquals(1, server.metrics().streamsActive());
    }

    @Test
    void givenARewriteParked_whenManyRequestsPipelined_thenOnlyTheInboundWindowIsReadAndAllAnsweredInOrder()
            throws Exception {
        int window = 4;
        ExtProcServer server = startServer(TestLimits.extProc().withInboundWindow(window).withWorkerThreads(1));
        Responses responses = new Responses();
        StreamObserver<ProcessingRequest> requests = client(server).process(responses);
        requests.onNext(read("first", false));
        responses.nextResponse();

        // Given a chunk whose rewrite waits for a data key, and many requests behind it
        requests.onNext(read("defer", false));
        int more = 50;
        for (int i = 0; i < more; i++) {
            requests.onNext(read("m" + i, false));
        }
        RecordingHandler handler = onlyHandler();
        awaitTrue(() -> handler.calls.contains("R:defer"), "the second request parked");
        Thread.sleep(500);

        // Then only the window was read while parked: the first request, and the window from the parked one on
        long receivedWhileParked = server.metrics().requestsReceived();
        assertEquals(1 + window, receivedWhileParked, "requests read while a rewrite is parked");

        // When the key is ready, everything is answered, in order
        handler.keyReady.complete(null);
        assertEquals("R:defer", responses.nextResponse().getReadData().getData().toStringUtf8());
        for (int i = 0; i < more; i++) {
            assertEquals("R:m" + i, responses.nextResponse().getReadData().getData().toStringUtf8());
        }
    }

    @Test
    void givenMessageAboveLimit_whenSent_thenStreamFailsAndHandlerClosedWithoutSeeingIt() throws Exception {
        ExtProcServer server = startServer(TestLimits.extProc().withMaxInboundMessageBytes(1024).withWorkerThreads(1));
        Responses responses = new Responses();
        StreamObserver<ProcessingRequest> requests = client(server).process(responses);

        requests.onNext(read("x".repeat(4096), false));

        Object terminal = responses.next();
        assertInstanceOf(Throwable.class, terminal);
        assertEquals(Status.Code.RESOURCE_EXHAUSTED, Status.fromThrowable((Throwable) terminal).getCode());
        RecordingHandler handler = onlyHandler();
        assertTrue(handler.closed.await(TIMEOUT_SECONDS, TimeUnit.SECONDS));
        assertEquals(List.of("close"), handler.calls);
    }

    @Test
    void givenOpenStreams_whenServerClosed_thenHandlersClosed() throws Exception {
        ExtProcServer server = startServer(TestLimits.extProc().withWorkerThreads(1)
                .withShutdownGrace(Duration.ofMillis(200)));
        Responses responses = new Responses();
        StreamObserver<ProcessingRequest> requests = client(server).process(responses);
        requests.onNext(read("x", false));
        responses.nextResponse();

        server.close();

        assertTrue(onlyHandler().closed.await(TIMEOUT_SECONDS, TimeUnit.SECONDS));
        assertInstanceOf(Throwable.class, responses.next(), "open streams are cancelled, never completed OK");
    }

    @Test
    void givenAQuietConnection_whenTheServerDrains_thenItIsClosedWithAFinAtOnceAndTheStreamEndsInError() throws Exception {
        ExtProcServer server = drainingServer();
        Responses responses = new Responses();
        client(server).process(responses).onNext(write("quiet", false));
        assertEquals("W:quiet", responses.nextResponse().getWriteData().getData().toStringUtf8());
        long start = System.nanoTime();

        server.close();

        ProcessingResponse close = responses.nextResponse();
        assertEquals(ConnectionStatus.CLOSE, close.getConnectionStatus());
        assertFalse(close.hasReadData() || close.hasWriteData(), "CLOSE travels alone: Envoy acts on it before any data");
        assertEquals(Status.Code.UNAVAILABLE, Status.fromThrowable((Throwable) responses.next()).getCode());
        assertTrue(onlyHandler().closed.await(TIMEOUT_SECONDS, TimeUnit.SECONDS));
        assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(30), "the drain did not wait for the grace period");
        assertEquals(1, server.metrics().streamsDrained());
    }

    @Test
    void givenARequestInFlight_whenTheServerDrains_thenTheConnectionKeepsServingAndClosesRightAfterTheAnswer() throws Exception {
        ExtProcServer server = drainingServer();
        Responses responses = new Responses();
        StreamObserver<ProcessingRequest> requests = client(server).process(responses);
        requests.onNext(read("busy", false));
        assertEquals("R:busy", responses.nextResponse().getReadData().getData().toStringUtf8());
        Thread closing = new Thread(server::close, "closing");
        closing.start();
        // close() has stopped the server and asked the stream to drain; it now waits for the streams to end
        awaitTrue(() -> closing.getState() == Thread.State.TIMED_WAITING, "close() waiting for the drain");
        assertEquals(1, server.metrics().streamsActive());

        requests.onNext(read("busy", false));
        requests.onNext(write("quiet", false));

        assertEquals("R:busy", responses.nextResponse().getReadData().getData().toStringUtf8());
        assertEquals("W:quiet", responses.nextResponse().getWriteData().getData().toStringUtf8());
        assertEquals(ConnectionStatus.CLOSE, responses.nextResponse().getConnectionStatus());
        assertInstanceOf(Throwable.class, responses.next());
        closing.join(TimeUnit.SECONDS.toMillis(TIMEOUT_SECONDS));
        assertFalse(closing.isAlive(), "close() returns once the last connection is drained");
        assertEquals(List.of("R:busy", "R:busy", "W:quiet", "close"), onlyHandler().calls);
    }

    /** One worker, and a grace period far longer than any test waits: a drain that waited for it would time out. */
    private ExtProcServer drainingServer() throws Exception {
        return startServer(TestLimits.extProc().withWorkerThreads(1).withShutdownGrace(Duration.ofSeconds(60)));
    }
}
