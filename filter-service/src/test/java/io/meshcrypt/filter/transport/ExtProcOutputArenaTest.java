package io.meshcrypt.filter.transport;

import static io.meshcrypt.filter.transport.ExtProcTestClient.read;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import io.envoyproxy.envoy.service.network_ext_proc.v3.NetworkExternalProcessorGrpc;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse.ConnectionStatus;
import io.grpc.stub.StreamObserver;
import io.meshcrypt.filter.framing.RewriteDeferred;
import io.meshcrypt.filter.records.OutputArena;
import io.meshcrypt.filter.records.RecordBatchRewriter;
import io.meshcrypt.filter.records.RecordBatchRewriter.TruncatedTail;
import io.meshcrypt.filter.records.ValueRewriter;
import io.meshcrypt.filter.transport.ExtProcTestClient.Responses;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.Record;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The records a stream rewrites live in the worker's {@link OutputArena} only until gRPC has serialised the response
 * that carries them: through the real Netty gRPC server (one worker, so every stream shares one thread and one arena),
 * each response arrives with its own bytes although the arena was reused, and scribbled over, right after the send;
 * a chunk parked for a data key keeps its rewritten bytes while other streams reuse the arena.
 *
 * <p>Not the in-process transport: it hands the response object itself to the client, serialising nothing, so the
 * premise (bytes copied inside {@code onNext}) holds for the Netty transport the filter-service serves on, not for it.
 */
class ExtProcOutputArenaTest {
    private static final long TIMEOUT_SECONDS = 10;
    private static final int VALUE_BYTES = 4096;

    private final List<AutoCloseable> resources = new ArrayList<>();
    /** Completed by the test: the "data key" a parked chunk waits for. */
    private final CompletableFuture<Void> key = new CompletableFuture<>();
    /** What each rewrite returned, in order, as the server saw it (arena views). */
    private final List<ByteBuffer> rewritten = new ArrayList<>();
    /** The rewritten bytes of the parked chunk; guarded by {@link #rewritten}. */
    private ByteBuffer parkedBytes;

    @AfterEach
    void tearDown() throws Exception {
        for (int i = resources.size() - 1; i >= 0; i--) {
            resources.get(i).close();
        }
    }

    /** Upper-cases each value, as a rewrite of the chunk's text as one record's value. */
    private static final ValueRewriter UPPER = value -> {
        ByteBuffer out = ByteBuffer.allocate(value.remaining());
        for (int i = value.position(); i < value.limit(); i++) {
            byte b = value.get(i);
            out.put(b >= 'a' && b <= 'z' ? (byte) (b - 32) : b);
        }
        return out.flip();
    };

    /**
     * Each chunk is a record value, answered as the upper-cased record batch, which is written into the arena. Before
     * each rewrite the previous one's bytes (sent by now) are scribbled over. Read data "wait..." is rewritten, kept,
     * and deferred until {@link #key} completes, as a frame stream keeps the frames before a deferred one.
     */
    private final class RewritingHandler implements ConnectionHandler {
        private ByteString kept;

        @Override
        public ByteString onRead(ByteString data, boolean endOfStream) throws Exception {
            ByteString out = rewrite(data);
            if (data.toStringUtf8().startsWith("reuse-early")) {
                // A bug's effect: the arena's bytes released while this answer still carries them.
                OutputArena.sent();
            }
            if (data.toStringUtf8().startsWith("wait")) {
                kept = out;
                throw new RewriteDeferred("waiting for a key", key);
            }
            return out;
        }

        @Override
        public ByteString resumeRead() {
            return kept;
        }

        @Override
        public ByteString onWrite(ByteString data, boolean endOfStream) throws Exception {
            return rewrite(data);
        }

        @Override
        public void onClose() {
        }

        private ByteString rewrite(ByteString data) throws Exception {
            synchronized (rewritten) {
                if (!rewritten.isEmpty()) {
                    ByteBuffer previous = rewritten.get(rewritten.size() - 1);
                    // Sent by now, so scribbling over it must change nothing; a parked chunk's bytes are not sent yet.
                    if (previous != parkedBytes) {
                        Arrays.fill(previous.array(), previous.arrayOffset(), previous.arrayOffset() + previous.limit(),
                                (byte) '#');
                    }
                }
                MemoryRecords in = MemoryRecords.withRecords(Compression.NONE, new SimpleRecord(data.toByteArray()));
                MemoryRecords out = RecordBatchRewriter.rewrite(in, UPPER, null, TruncatedTail.PASS_THROUGH, 1 << 20);
                ByteBuffer bytes = out.buffer();
                rewritten.add(bytes);
                if (data.toStringUtf8().startsWith("wait")) {
                    parkedBytes = bytes;
                }
                return UnsafeByteOperations.unsafeWrap(bytes);
            }
        }
    }

    private NetworkExternalProcessorGrpc.NetworkExternalProcessorStub client() throws Exception {
        return ExtProcTestClient.oneWorker(headers -> new RewritingHandler(), resources);
    }

    private static String text(int i) {
        char[] value = new char[VALUE_BYTES];
        Arrays.fill(value, (char) ('a' + i % 26));
        return "chunk-" + i + "-" + new String(value);
    }

    /** The single record value of the batch a response forwards. */
    private static String value(ProcessingResponse response) {
        ByteString data = (response.hasReadData() ? response.getReadData() : response.getWriteData()).getData();
        Record record = MemoryRecords.readableRecords(data.asReadOnlyByteBuffer()).records().iterator().next();
        byte[] value = new byte[record.valueSize()];
        record.value().get(value);
        return new String(value, StandardCharsets.UTF_8);
    }

    @Test
    void givenManyChunksSentAtOnce_whenTheArenaIsReusedAndScribbledOverAfterEachSend_thenEveryResponseCarriesItsOwnBytes()
            throws Exception {
        Responses responses = new Responses();
        StreamObserver<ProcessingRequest> stream = client().process(responses);
        int chunks = 20;

        // Given chunks sent without waiting for their answers
        for (int i = 0; i < chunks; i++) {
            stream.onNext(read(text(i)));
        }

        // Then each answer holds its own rewrite, although the server wrote the next one where it was
        for (int i = 0; i < chunks; i++) {
            assertEquals(text(i).toUpperCase(), value(responses.nextResponse()), "chunk " + i);
        }
        synchronized (rewritten) {
            assertEquals(chunks, rewritten.size());
            for (ByteBuffer b : rewritten) {
                assertSame(rewritten.get(0).array(), b.array(), "every rewrite reused the arena");
                assertEquals(rewritten.get(0).arrayOffset(), b.arrayOffset(), "at the bytes of the one sent before");
            }
        }
        stream.onCompleted();
    }

    @Test
    void givenTheArenaReleasedBeforeTheAnswerWasSent_whenTheStreamAnswers_thenTheConnectionIsResetAndNothingForwarded()
            throws Exception {
        Responses responses = new Responses();
        StreamObserver<ProcessingRequest> stream = client().process(responses);

        stream.onNext(read("reuse-early-" + text(1)));

        ProcessingResponse reset = responses.nextResponse();
        assertEquals(ConnectionStatus.CLOSE_RST, reset.getConnectionStatus());
        assertEquals(ByteString.EMPTY, reset.getReadData().getData());
        assertInstanceOf(Throwable.class, responses.next(), "the stream ends with an error status");
    }

    @Test
    void givenAChunkParkedWithItsRewrittenBytes_whenOtherStreamsRewriteAndSendMeanwhile_thenTheParkedChunkIsAnsweredIntact()
            throws Exception {
        NetworkExternalProcessorGrpc.NetworkExternalProcessorStub stub = client();
        Responses parked = new Responses();
        StreamObserver<ProcessingRequest> parkedStream = stub.process(parked);
        Responses other = new Responses();
        StreamObserver<ProcessingRequest> otherStream = stub.process(other);

        // Given a chunk rewritten into the arena, then parked for a key
        parkedStream.onNext(read("wait-" + text(0)));
        assertNull(parked.events.poll(300, TimeUnit.MILLISECONDS), "nothing is answered while the key is missing");

        // When another stream on the same worker rewrites and is answered, again and again
        for (int i = 1; i <= 5; i++) {
            otherStream.onNext(read("other-" + text(i)));
            assertEquals(("other-" + text(i)).toUpperCase(), value(other.nextResponse()));
        }

        // Then the parked chunk's bytes were left alone
        key.complete(null);
        assertEquals(("wait-" + text(0)).toUpperCase(), value(parked.nextResponse()));
        synchronized (rewritten) {
            assertTrue(rewritten.get(0).array() != rewritten.get(1).array(), "the parked chunk kept its array");
        }
        parkedStream.onCompleted();
        otherStream.onCompleted();
    }
}
