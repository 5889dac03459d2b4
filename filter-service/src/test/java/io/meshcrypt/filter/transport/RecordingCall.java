package io.meshcrypt.filter.transport;

import io.grpc.stub.ServerCallStreamObserver;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The server side of a call, without gRPC: records what the stream sends (responses, then an error or
 * {@code "completed"}) and how many requests it asks for; the test sets readiness and fires the handlers.
 */
class RecordingCall<R> extends ServerCallStreamObserver<R> {
    static final long TIMEOUT_SECONDS = 10;

    final BlockingQueue<Object> events = new LinkedBlockingQueue<>();
    final BlockingQueue<Integer> requests = new LinkedBlockingQueue<>();
    volatile boolean ready = true;
    volatile Runnable onReady = () -> { };
    volatile Runnable onCancel = () -> { };

    @Override
    public void onNext(R value) {
        events.add(value);
    }

    @Override
    public void onError(Throwable t) {
        events.add(t);
    }

    @Override
    public void onCompleted() {
        events.add("completed");
    }

    @Override
    public boolean isCancelled() {
        return false;
    }

    @Override
    public void setOnCancelHandler(Runnable handler) {
        onCancel = handler;
    }

    @Override
    public void setCompression(String compression) {
    }

    @Override
    public boolean isReady() {
        return ready;
    }

    @Override
    public void setOnReadyHandler(Runnable handler) {
        onReady = handler;
    }

    @Override
    public void disableAutoInboundFlowControl() {
    }

    @Override
    public void disableAutoRequest() {
    }

    @Override
    public void request(int count) {
        requests.add(count);
    }

    @Override
    public void setMessageCompression(boolean enable) {
    }

    Object next() throws InterruptedException {
        return poll(events, "event");
    }

    int nextRequest() throws InterruptedException {
        return poll(requests, "request");
    }

    private static <T> T poll(BlockingQueue<T> queue, String what) throws InterruptedException {
        T item = queue.poll(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        if (item == null) {
            throw new AssertionError("no " + what + " from the stream within " + TIMEOUT_SECONDS + " s");
        }
        return item;
    }
}
