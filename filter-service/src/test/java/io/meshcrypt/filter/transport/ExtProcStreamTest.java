package io.meshcrypt.filter.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.netty.util.concurrent.DefaultEventExecutor;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/** What the network and HTTP streams share, on a minimal stream that echoes requests (and defers "wait"). */
class ExtProcStreamTest {
    private static final long TIMEOUT_SECONDS = RecordingCall.TIMEOUT_SECONDS;

    private final DefaultEventExecutor worker = new DefaultEventExecutor();
    private final TransportMetrics metrics = new TransportMetrics();
    private final RecordingCall<String> call = new RecordingCall<>();
    private final CompletableFuture<Void> key = new CompletableFuture<>();
    private final AtomicInteger releases = new AtomicInteger();
    private final Echo stream = new Echo();

    @AfterEach
    void tearDown() throws Exception {
        worker.shutdownGracefully(0, 1, TimeUnit.SECONDS).await(TIMEOUT_SECONDS, TimeUnit.SECONDS);
    }

    @Test
    void givenEnvoyNotReadingResponses_whenRequestsAreAnswered_thenNoMoreIsReadUntilItIsReadyAgain() throws Exception {
        stream.install();
        assertEquals(1, call.nextRequest(), "the stream asks for its first request once open");
        call.ready = false;

        stream.onNext("a");
        stream.onNext("b");

        assertEquals("a", call.next());
        assertEquals("b", call.next());
        assertNull(call.requests.poll(200, TimeUnit.MILLISECONDS), "nothing is requested while responses pile up");
        call.ready = true;
        call.onReady.run();
        assertEquals(2, call.nextRequest(), "the owed requests are asked for at once");
        assertEquals(2, metrics.requestsAnswered());
    }

    @Test
    void givenADeferredAnswer_whenEnvoyCancelsBeforeItIsReady_thenItNeverRunsAndTheStateIsReleasedOnce() throws Exception {
        stream.install();
        call.nextRequest();
        stream.onNext("wait");
        awaitOnWorker();

        call.onCancel.run();
        key.complete(null);
        stream.onError(Status.CANCELLED.asRuntimeException());
        stream.onCompleted();
        awaitOnWorker();

        assertNull(call.events.poll(200, TimeUnit.MILLISECONDS), "no answer after the stream is over");
        assertEquals(1, releases.get());
        assertEquals(0, metrics.streamsActive());
        assertEquals(0, metrics.streamErrors(), "a cancellation is the normal end of a stream");
    }

    @Test
    void givenADeferredAnswer_whenItsKeyIsReady_thenTheSameRequestIsAnsweredOnTheWorker() throws Exception {
        stream.install();
        call.nextRequest();
        stream.onNext("wait");
        awaitOnWorker();
        assertNull(call.events.poll(100, TimeUnit.MILLISECONDS), "deferred, not answered");

        key.complete(null);

        assertEquals("waited", call.next());
        assertEquals(1, call.nextRequest(), "the next request once the deferred one is answered");
    }

    @Test
    void givenAStreamError_whenReported_thenCountedReleasedOnceAndLaterRequestsIgnored() throws Exception {
        stream.install();
        call.nextRequest();

        stream.onError(Status.UNAVAILABLE.asRuntimeException());
        stream.onNext("late");
        awaitOnWorker();

        assertNull(call.events.poll(200, TimeUnit.MILLISECONDS));
        assertEquals(1, metrics.streamErrors());
        assertEquals(1, releases.get());
        assertEquals(0, metrics.streamsActive());
    }

    @Test
    void givenAFailure_whenAnsweredAndFailed_thenTheLastAnswerThenTheErrorStatusAndNothingMore() throws Exception {
        stream.install();
        call.nextRequest();

        stream.onNext("refuse");
        stream.onNext("after");

        assertEquals("refused", call.next());
        StatusRuntimeException error = assertInstanceOf(StatusRuntimeException.class, call.next());
        assertEquals(Status.Code.ABORTED, error.getStatus().getCode());
        assertNull(call.events.poll(200, TimeUnit.MILLISECONDS));
        assertEquals(1, releases.get());
    }

    private void awaitOnWorker() throws Exception {
        worker.submit(() -> { }).get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
    }

    private final class Echo extends ExtProcStream<String, String> {
        Echo() {
            super(LoggerFactory.getLogger(ExtProcStreamTest.class), "test stream", 1, call, worker, metrics);
        }

        @Override
        protected void open() {
            request(1);
        }

        @Override
        protected void handle(String request) {
            switch (request) {
                case "wait" -> resumeWhen(key, () -> {
                    send("waited");
                    requestNext();
                });
                case "refuse" -> answerAndFail("refused", Status.ABORTED);
                default -> {
                    send(request);
                    requestNext();
                }
            }
        }

        @Override
        protected void onHalfClosed() {
            release();
            complete();
        }

        @Override
        protected void releaseState() {
            releases.incrementAndGet();
        }
    }
}
