package io.meshcrypt.filter.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.service.network_ext_proc.v3.Data;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse.ConnectionStatus;
import io.meshcrypt.filter.framing.RewriteDeferred;
import io.netty.util.concurrent.DefaultEventExecutor;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A Throwable from sending a response (building it, or gRPC's onNext) resets that connection like a handler failure:
 * it never escapes into the worker, and the stream never stays unanswered and not done.
 */
class ExtProcStreamSendFailureTest {
    private static final long TIMEOUT_SECONDS = 10;

    private final DefaultEventExecutor worker = new DefaultEventExecutor();

    @AfterEach
    void tearDown() throws Exception {
        worker.shutdownGracefully(0, 1, TimeUnit.SECONDS).await(TIMEOUT_SECONDS, TimeUnit.SECONDS);
    }

    /** The server side of a call whose first {@code failures} data responses throw from onNext. */
    private static final class FailingCall extends RecordingCall<ProcessingResponse> {
        final AtomicInteger failures;
        /** When set, asking for the next request after a response throws (flow control after onNext). */
        volatile boolean failRequestAfterResponse;

        FailingCall(int failures) {
            this.failures = new AtomicInteger(failures);
        }

        @Override
        public void onNext(ProcessingResponse value) {
            if (value.getConnectionStatus() != ConnectionStatus.CLOSE_RST && failures.getAndDecrement() > 0) {
                throw new OutOfMemoryError("simulated: serializing the response");
            }
            super.onNext(value);
        }

        @Override
        public void request(int count) {
            if (count == 1 && failRequestAfterResponse) {
                throw new IllegalStateException("simulated: call already closed");
            }
            super.request(count);
        }
    }

    /** Echoes read data; "wait" defers until {@link #key} completes. Counts closes. */
    private static final class Handler implements ConnectionHandler {
        final CountDownLatch closed = new CountDownLatch(1);
        final CompletableFuture<Void> key = new CompletableFuture<>();
        final AtomicInteger reads = new AtomicInteger();
        private ByteString parked;

        @Override
        public ByteString onRead(ByteString data, boolean endOfStream) throws Exception {
            reads.incrementAndGet();
            if (data.toStringUtf8().equals("wait")) {
                parked = data;
                throw new RewriteDeferred("waiting for a key", key);
            }
            return data;
        }

        @Override
        public ByteString resumeRead() {
            return parked;
        }

        @Override
        public ByteString onWrite(ByteString data, boolean endOfStream) {
            return data;
        }

        @Override
        public void onClose() {
            closed.countDown();
        }
    }

    private NetworkExtProcStream stream(FailingCall call, Handler handler) {
        NetworkExtProcStream stream = new NetworkExtProcStream(1, call, worker, headers -> handler, StreamHeaders.NONE, null, 8,
                new TransportMetrics(), Duration.ofSeconds(30), ConnectionLog.TEXT);
        stream.install();
        return stream;
    }

    private static ProcessingRequest read(String data) {
        return ProcessingRequest.newBuilder().setReadData(Data.newBuilder().setData(ByteString.copyFromUtf8(data))).build();
    }

    @Test
    void givenSendingTheResponseThrows_whenAChunkIsAnswered_thenConnectionResetAndLaterChunksNeverForwarded()
            throws Exception {
        FailingCall call = new FailingCall(1);
        Handler handler = new Handler();
        NetworkExtProcStream stream = stream(call, handler);

        stream.onNext(read("first"));
        stream.onNext(read("second, never forwarded"));

        ProcessingResponse reset = assertInstanceOf(ProcessingResponse.class, call.next());
        assertEquals(ConnectionStatus.CLOSE_RST, reset.getConnectionStatus());
        assertEquals(ByteString.EMPTY, reset.getReadData().getData());
        assertInstanceOf(Throwable.class, call.next(), "the stream ends with an error status");
        assertTrue(handler.closed.await(TIMEOUT_SECONDS, TimeUnit.SECONDS), "the handler released its state");
        assertNull(call.events.poll(300, TimeUnit.MILLISECONDS), "nothing after the reset");
        assertEquals(1, handler.reads.get(), "the stream is done: the second chunk never reaches the handler");
    }

    @Test
    void givenSendingTheResumedResponseThrows_whenAParkedChunkIsResumed_thenConnectionResetAndQueuedChunksDropped()
            throws Exception {
        FailingCall call = new FailingCall(1);
        Handler handler = new Handler();
        NetworkExtProcStream stream = stream(call, handler);
        stream.onNext(read("wait"));
        stream.onNext(read("queued plaintext"));

        handler.key.complete(null);

        ProcessingResponse reset = assertInstanceOf(ProcessingResponse.class, call.next());
        assertEquals(ConnectionStatus.CLOSE_RST, reset.getConnectionStatus());
        assertInstanceOf(Throwable.class, call.next(), "the stream ends with an error status");
        assertTrue(handler.closed.await(TIMEOUT_SECONDS, TimeUnit.SECONDS), "the handler released its state");
        assertNull(call.events.poll(300, TimeUnit.MILLISECONDS), "the queued chunk is never answered");
        assertEquals(1, handler.reads.get(), "the queued chunk never reaches the handler");
    }

    @Test
    void givenFailureAfterTheResponseWasSent_whenAnswering_thenStreamEndsWithAnErrorWithoutASecondResponse()
            throws Exception {
        FailingCall call = new FailingCall(0);
        call.failRequestAfterResponse = true;
        Handler handler = new Handler();
        NetworkExtProcStream stream = stream(call, handler);

        stream.onNext(read("first"));

        ProcessingResponse answer = assertInstanceOf(ProcessingResponse.class, call.next());
        assertEquals(ByteString.copyFromUtf8("first"), answer.getReadData().getData());
        assertInstanceOf(Throwable.class, call.next(), "the stream ends with an error status, no CLOSE_RST for it");
        assertTrue(handler.closed.await(TIMEOUT_SECONDS, TimeUnit.SECONDS), "the handler released its state");
        assertNull(call.events.poll(300, TimeUnit.MILLISECONDS));
    }
}
