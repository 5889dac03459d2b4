package io.meshcrypt.filter.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.service.network_ext_proc.v3.Data;
import io.envoyproxy.envoy.service.network_ext_proc.v3.NetworkExternalProcessorGrpc;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse.ConnectionStatus;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.framing.HeldBytesBudget;
import io.meshcrypt.filter.transport.ExtProcTestClient.Responses;
import io.meshcrypt.filter.transport.HeldFramesTransportTest.FramingHandler;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A hostile local process on the filter-service's Unix domain socket ({@code unixSockets:}): the socket has no TLS, so
 * whoever may open its file speaks straight to the gRPC server. It gets the limits {@code listen} has (the TCP tests of
 * each are in ExtProcServerTest and HeldFramesTransportTest): garbage ends its connection, a message over
 * {@code maxInboundMessageBytes} ends its stream with RESOURCE_EXHAUSTED, a partial Kafka frame held past
 * {@code heldFrameTimeout} ends its stream with DEADLINE_EXCEEDED. Meanwhile a well-behaved stream on the same socket,
 * opened before the attack and served by the same single worker thread, keeps getting correct answers, and so does
 * one opened after it.
 */
class UnixSocketHostileClientTest {
    private static final int MAX_MESSAGE_BYTES = 4096;
    private static final Duration HELD_FRAME_TIMEOUT = Duration.ofMillis(500);
    /** The HTTP/2 client connection preface (RFC 9113, 3.4). */
    private static final String PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    /** JUnit's temporary folders are short enough for sun_path (108 bytes). */
    @TempDir
    Path dir;

    private final List<AutoCloseable> resources = new ArrayList<>();
    /** Streams the server opened a connection handler for. */
    private final AtomicInteger streamsOpened = new AtomicInteger();
    private EventLoopGroup clientLoop;
    private HeldBytesBudget budget;
    private ExtProcServer server;
    private Path socket;

    @BeforeEach
    void startTheServerOnASocket() throws IOException {
        clientLoop = new EpollEventLoopGroup(1, new DefaultThreadFactory("uds-hostile-client", true));
        budget = new HeldBytesBudget(1 << 20, 1 << 20, 3);
        socket = dir.resolve("h.sock");
        // one worker: the attacker's connection and the healthy one are served by the same thread
        server = ExtProcServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), headers -> {
            streamsOpened.incrementAndGet();
            return new FramingHandler(budget);
        }, TestLimits.extProc().withWorkerThreads(1).withShutdownGrace(Duration.ofSeconds(1))
                .withMaxInboundMessageBytes(MAX_MESSAGE_BYTES).withHeldFrameTimeout(HELD_FRAME_TIMEOUT),
                List.of(), null, StreamIdentity.NONE, ConnectionLog.TEXT,
                List.of(new UnixSocket(socket, null, PosixFilePermissions.fromString("rw-------"))));
        resources.add(server);
    }

    @AfterEach
    void tearDown() throws Exception {
        for (int i = resources.size() - 1; i >= 0; i--) {
            resources.get(i).close();
        }
        clientLoop.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(5, TimeUnit.SECONDS);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"an HTTP/1.1 request", "random bytes", "the HTTP/2 preface, then a 16 MiB frame header"})
    void givenAHealthyStream_whenALocalProcessWritesNonGrpcBytesToTheSocket_thenItsConnectionIsClosedWithoutAStreamAndOthersAreAnswered(
            String garbage) throws Exception {
        Healthy before = answeredHealthyStream();
        int streamsBefore = streamsOpened.get();

        try (SocketChannel peer = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            peer.connect(UnixDomainSocketAddress.of(socket));
            try {
                peer.write(ByteBuffer.wrap(bytes(garbage)));
            } catch (IOException closedWhileWriting) {
                // the server may close the connection before all of it is written: what is checked next
            }

            awaitClosedByServer(peer, "the connection that sent " + garbage);
        }

        assertEquals(streamsBefore, streamsOpened.get(), "no stream was opened for " + garbage);
        assertHealthyStreamsAnswered(before);
    }

    @Test
    void givenAHealthyStream_whenALocalProcessSendsAMessageOverMaxInboundMessageBytes_thenItsStreamEndsResourceExhaustedAndOthersAreAnswered()
            throws Exception {
        Healthy before = answeredHealthyStream();

        Responses attacked = streamSending(ByteString.copyFrom(new byte[MAX_MESSAGE_BYTES + 1]));

        assertStreamEnds(Status.Code.RESOURCE_EXHAUSTED, attacked, "the oversized message's stream");
        assertEquals(0, budget.heldBytes(), "the handler held nothing of the oversized message");
        assertHealthyStreamsAnswered(before);
    }

    @Test
    void givenAHealthyStream_whenALocalProcessHoldsAPartialKafkaFrameAndGoesSilent_thenItsStreamEndsAtTheHeldFrameTimeoutAndOthersAreAnswered()
            throws Exception {
        Healthy before = answeredHealthyStream();

        // a Kafka frame announcing 100,000 bytes, of which 10 come, then nothing more on that stream
        Responses attacked = streamSending(ByteString.copyFrom(ByteBuffer.allocate(4 + 10).putInt(100_000).array()));

        ProcessingResponse held = attacked.nextResponse();
        assertNotEquals(ConnectionStatus.CLOSE_RST, held.getConnectionStatus(), "a partial frame is held, not refused");
        assertTrue(held.getReadData().getData().isEmpty(), "nothing of the partial frame is forwarded");
        before.assertAnswered();
        assertStreamEnds(Status.Code.DEADLINE_EXCEEDED, attacked, "the silent stream");
        assertEquals(1, server.metrics().heldFrameTimeouts());
        awaitHeldBytes(0);
        assertHealthyStreamsAnswered(before);
    }

    /** A new healthy stream that got its first answer: the stream the attack must not hurt. */
    private Healthy answeredHealthyStream() throws InterruptedException {
        Healthy healthy = new Healthy();
        healthy.assertAnswered();
        return healthy;
    }

    /** The healthy stream opened before the attack, and a new one opened after it, are answered correctly. */
    private void assertHealthyStreamsAnswered(Healthy before) throws InterruptedException {
        before.assertAnswered();
        new Healthy().assertAnswered();
    }

    private static void assertStreamEnds(Status.Code code, Responses stream, String what) throws InterruptedException {
        Object terminal = stream.next();
        assertEquals(code, Status.fromThrowable(assertInstanceOf(Throwable.class, terminal, what + " ends in an error: "
                + terminal)).getCode(), what);
    }

    /** A well-behaved stream on a connection of its own to the socket: each Kafka frame it sends comes back rewritten. */
    private final class Healthy {
        private final Responses responses = new Responses();
        private final StreamObserver<ProcessingRequest> requests = stub().process(responses);
        private byte next;

        void assertAnswered() throws InterruptedException {
            byte[] body = {next++, 2, 3};
            requests.onNext(read(ByteString.copyFrom(ByteBuffer.allocate(4 + body.length).putInt(body.length).put(body).array())));
            ProcessingResponse answer = responses.nextResponse();
            assertEquals(ByteString.copyFrom(ByteBuffer.allocate(4 + 1 + body.length).putInt(body.length + 1).put((byte) 'X')
                    .put(body).array()), answer.getReadData().getData(), "the healthy stream's frame, rewritten");
        }
    }

    /** A stream on a new connection to the socket that sends {@code data} from the client, and what it observes. */
    private Responses streamSending(ByteString data) {
        Responses responses = new Responses();
        stub().process(responses).onNext(read(data));
        return responses;
    }

    /** A stub on a new connection to the socket. */
    private NetworkExternalProcessorGrpc.NetworkExternalProcessorStub stub() {
        return NetworkExternalProcessorGrpc.newStub(UnixSocketServerTest.channel(socket, clientLoop, resources));
    }

    private static ProcessingRequest read(ByteString data) {
        return ProcessingRequest.newBuilder().setReadData(Data.newBuilder().setData(data)).build();
    }

    private static byte[] bytes(String garbage) {
        return switch (garbage) {
            case "an HTTP/1.1 request" -> "GET /envoy.service.network_ext_proc.v3.NetworkExternalProcessor/Process HTTP/1.1\r\nHost: fs\r\n\r\n"
                    .getBytes(StandardCharsets.US_ASCII);
            case "random bytes" -> {
                byte[] random = new byte[64 << 10];
                new Random(14).nextBytes(random);
                yield random;
            }
            // an empty SETTINGS frame, then a DATA frame header on stream 1 announcing 2^24 - 1 bytes (max is 16 KiB)
            case "the HTTP/2 preface, then a 16 MiB frame header" -> ByteBuffer.allocate(PREFACE.length() + 9 + 9)
                    .put(PREFACE.getBytes(StandardCharsets.US_ASCII))
                    .put(new byte[] {0, 0, 0, 4, 0, 0, 0, 0, 0})
                    .put(new byte[] {(byte) 0xFF, (byte) 0xFF, (byte) 0xFF, 0, 0, 0, 0, 0, 1})
                    .array();
            default -> throw new IllegalArgumentException(garbage);
        };
    }

    /** Reads (and drops, e.g. a GOAWAY) what the server sends until it closes the connection; fails if it does not. */
    private static void awaitClosedByServer(SocketChannel peer, String what) throws Exception {
        CompletableFuture<Void> closed = CompletableFuture.runAsync(() -> {
            ByteBuffer sink = ByteBuffer.allocate(4096);
            try {
                while (peer.read(sink.clear()) >= 0) {
                    // until end of stream
                }
            } catch (IOException reset) {
                // a reset ends the connection too
            }
        });
        try {
            closed.get(ExtProcTestClient.TIMEOUT_SECONDS, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            throw new AssertionError(what + " is still open after " + ExtProcTestClient.TIMEOUT_SECONDS + " s", e);
        }
    }

    private void awaitHeldBytes(long expected) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(ExtProcTestClient.TIMEOUT_SECONDS);
        while (budget.heldBytes() != expected) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("held bytes " + budget.heldBytes() + ", expected " + expected);
            }
            Thread.sleep(10);
        }
    }
}
