package io.meshcrypt.filter.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static io.meshcrypt.filter.transport.ExtProcTestClient.read;
import static org.junit.jupiter.api.Assertions.assertNull;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.service.network_ext_proc.v3.Data;
import io.envoyproxy.envoy.service.network_ext_proc.v3.NetworkExternalProcessorGrpc;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse.ConnectionStatus;
import io.grpc.stub.StreamObserver;
import io.meshcrypt.filter.framing.KafkaFrameException;
import io.meshcrypt.filter.framing.RewriteDeferred;
import io.meshcrypt.filter.transport.ExtProcTestClient.Responses;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** A chunk whose rewrite waits for a key is parked without blocking the worker, and answered in order once ready. */
class ExtProcDeferralTest {
    private static final long TIMEOUT_SECONDS = 10;

    private final List<AutoCloseable> resources = new ArrayList<>();
    /** Completed by the test: the "key" the deferred chunk waits for. */
    private final CompletableFuture<Void> key = new CompletableFuture<>();

    @AfterEach
    void tearDown() throws Exception {
        for (int i = resources.size() - 1; i >= 0; i--) {
            resources.get(i).close();
        }
    }

    /** Echoes with a direction prefix; read data "wait" defers until {@link #key} completes, "fail-after" then fails. */
    private final class DeferringHandler implements ConnectionHandler {
        private ByteString parked;

        @Override
        public ByteString onRead(ByteString data, boolean endOfStream) throws Exception {
            if (data.toStringUtf8().startsWith("wait")) {
                parked = data;
                throw new RewriteDeferred("waiting for a key", key);
            }
            return ByteString.copyFromUtf8("R:").concat(data);
        }

        @Override
        public ByteString resumeRead() throws Exception {
            if (parked.toStringUtf8().equals("wait-fail")) {
                throw new KafkaFrameException("the key never came");
            }
            return ByteString.copyFromUtf8("R:").concat(parked);
        }

        @Override
        public ByteString onWrite(ByteString data, boolean endOfStream) {
            return ByteString.copyFromUtf8("W:").concat(data);
        }

        @Override
        public void onClose() {
        }
    }

    private NetworkExternalProcessorGrpc.NetworkExternalProcessorStub client() throws Exception {
        // One worker: if a parked chunk blocked it, the second stream below could not be answered.
        return ExtProcTestClient.oneWorker(headers -> new DeferringHandler(), resources);
    }

    private static ProcessingRequest write(String data) {
        return ProcessingRequest.newBuilder().setWriteData(Data.newBuilder().setData(ByteString.copyFromUtf8(data))).build();
    }

    @Test
    void givenParkedChunk_whenLaterChunksAndAnotherStreamArrive_thenOtherStreamAnsweredAndParkedStreamAnsweredInOrderOnceReady()
            throws Exception {
        NetworkExternalProcessorGrpc.NetworkExternalProcessorStub stub = client();
        Responses parked = new Responses();
        StreamObserver<ProcessingRequest> parkedStream = stub.process(parked);
        Responses other = new Responses();
        StreamObserver<ProcessingRequest> otherStream = stub.process(other);

        // Given a stream whose first chunk waits for a key, followed by two more chunks
        parkedStream.onNext(read("before"));
        parkedStream.onNext(read("wait"));
        parkedStream.onNext(write("response"));
        parkedStream.onNext(read("after"));
        assertEquals("R:before", parked.nextData());

        // When another stream on the same (single) worker sends data, it is answered while the first one waits
        otherStream.onNext(read("hello"));
        assertEquals("R:hello", other.nextData());
        assertNull(parked.events.poll(300, TimeUnit.MILLISECONDS), "nothing is answered while the key is missing");

        // Then, once the key is ready, the parked chunk and everything queued behind it are answered in order
        key.complete(null);
        assertEquals("R:wait", parked.nextData());
        assertEquals("W:response", parked.nextData());
        assertEquals("R:after", parked.nextData());
        parkedStream.onCompleted();
        otherStream.onCompleted();
    }

    @Test
    void givenParkedChunk_whenTheRetryFails_thenConnectionResetAndQueuedChunksNeverForwarded() throws Exception {
        Responses responses = new Responses();
        StreamObserver<ProcessingRequest> stream = client().process(responses);

        stream.onNext(read("wait-fail"));
        stream.onNext(read("queued plaintext"));
        key.completeExceptionally(new IllegalStateException("KMS unreachable"));

        ProcessingResponse reset = assertInstanceOf(ProcessingResponse.class, responses.next());
        assertEquals(ConnectionStatus.CLOSE_RST, reset.getConnectionStatus());
        assertEquals(ByteString.EMPTY, reset.getReadData().getData());
        assertInstanceOf(Throwable.class, responses.next(), "the stream ends with an error status");
        assertNull(responses.events.poll(300, TimeUnit.MILLISECONDS), "the queued chunk is never answered");
    }
}
