package io.meshcrypt.filter.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.config.core.v3.HeaderMap;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.service.ext_proc.v3.ExternalProcessorGrpc;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpBody;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpHeaders;
import io.envoyproxy.envoy.service.network_ext_proc.v3.Data;
import io.envoyproxy.envoy.service.network_ext_proc.v3.NetworkExternalProcessorGrpc;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingRequest;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.http.HttpExtProcService;
import io.meshcrypt.filter.http.HttpProcessor;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.transport.ExtProcTestClient.Responses;
import io.meshcrypt.meshconfig.tls.TlsFiles;
import io.meshcrypt.meshconfig.tls.TlsMaterial;
import io.meshcrypt.pki.LocalCa;
import io.meshcrypt.meshconfig.http.HeaderChanges;
import io.meshcrypt.meshconfig.http.HttpRule;
import io.meshcrypt.meshconfig.http.HttpRules;
import io.meshcrypt.meshconfig.http.RouteMatch;
import io.meshcrypt.meshconfig.http.RuleSide;
import io.meshcrypt.meshconfig.policy.Identities;
import io.meshcrypt.meshconfig.transform.FieldOp;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.URI;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The ext_proc server on Unix domain sockets ({@code unixSockets:}), with a real gRPC client over each socket: every
 * stream carries its socket's configured identity and nothing the client sends changes it; the socket file has the
 * configured mode, replaces a stale socket, never replaces anything else, and goes away on close.
 */
class UnixSocketServerTest {
    private static final String ORDERS = "spiffe://meshcrypt.local/ns/default/sa/orders";
    private static final String BILLING = "spiffe://meshcrypt.local/ns/default/sa/billing";
    private static final Set<PosixFilePermission> OWNER_ONLY = PosixFilePermissions.fromString("rw-------");

    /** JUnit's temporary folders are short enough for sun_path (108 bytes). */
    @TempDir
    Path dir;

    private final List<AutoCloseable> resources = new ArrayList<>();
    /** Identity and thread of each network stream, as its handler saw them when it opened. */
    private final BlockingQueue<Opened> opened = new LinkedBlockingQueue<>();
    private EventLoopGroup clientLoop;
    private ExtProcServer server;
    private ValueCipherV1 cipher;
    private HttpProcessor http;

    private record Opened(String identity, Thread thread) {
    }

    @BeforeEach
    void setUp() throws Exception {
        clientLoop = new EpollEventLoopGroup(1, new DefaultThreadFactory("uds-test-client", true));
        Keysets.create(dir.resolve("keyset.json"));
        cipher = ValueCipherV1.fromKeysetFile(dir.resolve("keyset.json"));
        // HTTP responses' /card is decrypted for ORDERS only: the policy's readers, as HttpReadersTest has them
        RuleSide response = new RuleSide(List.of(new FieldOp.Decrypt(JsonPointer.parse("/card"), false)), List.of(),
                HeaderChanges.NONE, RuleSide.OnInvalid.REJECT);
        http = new HttpProcessor(new HttpRules(List.of(new HttpRule("orders", RouteMatch.ANY, "orders", RuleSide.NONE,
                response, Identities.of(List.of(ORDERS))))), cipher);
    }

    @AfterEach
    void tearDown() throws Exception {
        for (int i = resources.size() - 1; i >= 0; i--) {
            resources.get(i).close();
        }
        clientLoop.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(5, TimeUnit.SECONDS);
    }

    private ExtProcServer start(UnixSocket... sockets) throws IOException {
        return start(null, sockets);
    }

    /** @param tls mutual TLS on the TCP listener, or null for plaintext */
    private ExtProcServer start(TlsMaterial tls, UnixSocket... sockets) throws IOException {
        ConnectionHandlerFactory recording = new ConnectionHandlerFactory() {
            @Override
            public ConnectionHandler open(StreamHeaders headers) {
                return open(headers, null);
            }

            @Override
            public ConnectionHandler open(StreamHeaders headers, String identity) {
                opened.add(new Opened(identity, Thread.currentThread()));
                return new ExtProcServerTest.RecordingHandler();
            }
        };
        server = ExtProcServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), recording,
                TestLimits.extProc().withWorkerThreads(2).withShutdownGrace(Duration.ofSeconds(1)),
                List.of(workers -> new HttpExtProcService(http, workers)), tls,
                tls == null ? StreamIdentity.NONE : StreamIdentity.CERTIFICATE, ConnectionLog.TEXT, List.of(sockets));
        resources.add(server);
        return server;
    }

    private ManagedChannel channel(Path socket) {
        return channel(socket, clientLoop, resources);
    }

    /** A plaintext channel to {@code socket} on {@code clientLoop}; shut down with {@code resources}. */
    static ManagedChannel channel(Path socket, EventLoopGroup clientLoop, List<AutoCloseable> resources) {
        ManagedChannel channel = NettyChannelBuilder.forAddress(new DomainSocketAddress(socket.toFile()))
                .eventLoopGroup(clientLoop)
                .channelType(EpollDomainSocketChannel.class)
                .usePlaintext()
                .build();
        resources.add(() -> {
            channel.shutdownNow();
            channel.awaitTermination(ExtProcTestClient.TIMEOUT_SECONDS, TimeUnit.SECONDS);
        });
        return channel;
    }

    /** Opens a network stream on {@code socket} with {@code headers}, checks it is served, returns what its handler saw. */
    private Opened networkStream(Path socket, Metadata headers) throws Exception {
        Responses responses = new Responses();
        StreamObserver<ProcessingRequest> requests = NetworkExternalProcessorGrpc.newStub(channel(socket))
                .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers))
                .process(responses);
        requests.onNext(ProcessingRequest.newBuilder().setReadData(Data.newBuilder()
                .setData(ByteString.copyFromUtf8("hello"))).build());
        assertEquals("R:hello", responses.nextData());
        requests.onCompleted();
        Opened stream = opened.poll(ExtProcTestClient.TIMEOUT_SECONDS, TimeUnit.SECONDS);
        assertTrue(stream != null, "the stream reached its handler");
        return stream;
    }

    private static UnixSocket socket(Path path, String identity) {
        return new UnixSocket(path, identity, OWNER_ONLY);
    }

    @Test
    void givenTwoSockets_whenAStreamOpensOnEach_thenEachCarriesItsSocketsIdentityOnAWorkerThread() throws Exception {
        Path orders = dir.resolve("o.sock");
        Path anonymous = dir.resolve("a.sock");
        start(socket(orders, ORDERS), socket(anonymous, null));

        Opened onOrders = networkStream(orders, new Metadata());
        Opened onAnonymous = networkStream(anonymous, new Metadata());

        assertEquals(ORDERS, onOrders.identity());
        assertNull(onAnonymous.identity(), "a socket without identity gives its streams none");
        assertTrue(isWorker(onOrders.thread()), "the handler runs on the transport thread of its connection, a worker: "
                + onOrders.thread().getName());
    }

    private boolean isWorker(Thread thread) throws Exception {
        for (EventExecutor worker : server.workers()) {
            boolean[] same = new boolean[1];
            worker.submit(() -> same[0] = Thread.currentThread() == thread).get(5, TimeUnit.SECONDS);
            if (same[0]) {
                return true;
            }
        }
        return false;
    }

    @Test
    void givenAClientThatForwardsACertificateHeader_whenItsStreamOpens_thenTheSocketsIdentityStands() throws Exception {
        Path orders = dir.resolve("o.sock");
        Path anonymous = dir.resolve("a.sock");
        start(socket(orders, ORDERS), socket(anonymous, null));
        Metadata forged = new Metadata();
        forged.put(Metadata.Key.of(StreamIdentity.FORWARDED_CLIENT_CERT_HEADER, Metadata.ASCII_STRING_MARSHALLER),
                "By=spiffe://x;URI=" + BILLING);

        assertEquals(ORDERS, networkStream(orders, forged).identity());
        assertNull(networkStream(anonymous, forged).identity());
    }

    @Test
    void givenTheTcpListenerWithoutTls_whenAStreamOpensThere_thenItStillHasNoIdentity() throws Exception {
        start(socket(dir.resolve("o.sock"), ORDERS));
        Responses responses = new Responses();

        StreamObserver<ProcessingRequest> requests = ExtProcTestClient.connect(server, resources).process(responses);
        requests.onNext(ProcessingRequest.newBuilder().setReadData(Data.newBuilder()
                .setData(ByteString.copyFromUtf8("hi"))).build());

        assertEquals("R:hi", responses.nextData());
        assertNull(opened.poll(ExtProcTestClient.TIMEOUT_SECONDS, TimeUnit.SECONDS).identity());
    }

    @Test
    void givenMutualTlsOnListen_whenASidecarWithACertificateAndOneOnTheSocketStream_thenEachHasItsOwnIdentity()
            throws Exception {
        // with a socket configured the TCP listener runs on the epoll transport: mutual TLS must work there as on NIO
        LocalCa ca = LocalCa.openOrCreate(dir.resolve("pki"));
        LocalCa.Issued serverFiles = ca.issue("filter-service", LocalCa.spiffeId("filter-service"),
                List.of("localhost", "127.0.0.1"), Duration.ofHours(1));
        LocalCa.Issued sidecar = ca.issue("sidecar-billing", URI.create(BILLING), List.of(), Duration.ofHours(1));
        Path orders = dir.resolve("o.sock");
        start(TlsMaterial.load(new TlsFiles(serverFiles.certificate(), serverFiles.privateKey(), ca.caCertificate())),
                socket(orders, ORDERS));
        ManagedChannel tcp = NettyChannelBuilder.forAddress("127.0.0.1", server.port())
                .sslContext(GrpcSslContexts.forClient().trustManager(ca.caCertificate().toFile())
                        .keyManager(sidecar.certificate().toFile(), sidecar.privateKey().toFile()).build())
                .build();
        resources.add(() -> {
            tcp.shutdownNow();
            tcp.awaitTermination(ExtProcTestClient.TIMEOUT_SECONDS, TimeUnit.SECONDS);
        });
        Responses responses = new Responses();

        NetworkExternalProcessorGrpc.newStub(tcp).process(responses).onNext(ProcessingRequest.newBuilder()
                .setReadData(Data.newBuilder().setData(ByteString.copyFromUtf8("tls"))).build());

        assertEquals("R:tls", responses.nextData());
        assertEquals(BILLING, opened.poll(ExtProcTestClient.TIMEOUT_SECONDS, TimeUnit.SECONDS).identity(),
                "the certificate's SPIFFE id, as without sockets");
        assertEquals(ORDERS, networkStream(orders, new Metadata()).identity());
    }

    @Test
    void givenAnHttpRuleWithReaders_whenResponsesPassTwoSockets_thenOnlyTheReadersSocketGetsThePlaintext() throws Exception {
        Path orders = dir.resolve("o.sock");
        Path billing = dir.resolve("b.sock");
        start(socket(orders, ORDERS), socket(billing, BILLING));

        assertEquals("{\"card\":\"4111\"}", httpResponseBody(orders));
        // not a reader: Envoy is told to send the stored body, envelope and all
        assertEquals("", httpResponseBody(billing));
    }

    /** The response body the HTTP ext_proc service tells Envoy to send, "" when it is the original. */
    private String httpResponseBody(Path socket) throws Exception {
        ByteBuffer envelope = cipher.encrypt("orders", ByteBuffer.wrap("\"4111\"".getBytes(StandardCharsets.UTF_8)));
        byte[] bytes = new byte[envelope.remaining()];
        envelope.get(bytes);
        String storedCard = Base64.getEncoder().encodeToString(bytes);
        BlockingQueue<Object> answers = new LinkedBlockingQueue<>();
        StreamObserver<io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest> requests =
                ExternalProcessorGrpc.newStub(channel(socket)).process(new StreamObserver<>() {
                    @Override
                    public void onNext(io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse value) {
                        answers.add(value);
                    }

                    @Override
                    public void onError(Throwable t) {
                        answers.add(t);
                    }

                    @Override
                    public void onCompleted() {
                    }
                });
        requests.onNext(io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest.newBuilder()
                .setRequestHeaders(HttpHeaders.newBuilder().setHeaders(HeaderMap.newBuilder()
                        .addHeaders(HeaderValue.newBuilder().setKey(":method").setValue("GET"))
                        .addHeaders(HeaderValue.newBuilder().setKey(":path").setValue("/orders/1")))
                        .setEndOfStream(true)).build());
        requests.onNext(io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest.newBuilder()
                .setResponseHeaders(HttpHeaders.newBuilder().setHeaders(HeaderMap.newBuilder()
                        .addHeaders(HeaderValue.newBuilder().setKey(":status").setValue("200"))
                        .addHeaders(HeaderValue.newBuilder().setKey("content-type").setValue("application/json"))))
                .build());
        requests.onNext(io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest.newBuilder()
                .setResponseBody(HttpBody.newBuilder().setBody(ByteString.copyFromUtf8("{\"card\":\"" + storedCard + "\"}"))
                        .setEndOfStream(true)).build());
        io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse last = null;
        for (int i = 0; i < 3; i++) {
            Object answer = answers.poll(ExtProcTestClient.TIMEOUT_SECONDS, TimeUnit.SECONDS);
            last = assertInstanceOf(io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse.class, answer,
                    "answer " + i + ": " + answer);
        }
        requests.onCompleted();
        return last.getResponseBody().getResponse().getBodyMutation().getBody().toStringUtf8();
    }

    @Test
    void givenAConfiguredMode_whenTheServerStarts_thenTheSocketFileHasItAndTheBindFolderIsGone() throws Exception {
        Path path = dir.resolve("run").resolve("m.sock");
        Set<PosixFilePermission> mode = PosixFilePermissions.fromString("rw-rw----");

        start(new UnixSocket(path, ORDERS, mode));

        assertEquals(mode, Files.getPosixFilePermissions(path, LinkOption.NOFOLLOW_LINKS));
        assertTrue(isSocket(path));
        try (var entries = Files.list(path.getParent())) {
            assertEquals(List.of(path), entries.toList(), "only the socket: its bind folder was removed");
        }
    }

    @Test
    void givenAStaleSocketAtThePath_whenTheServerStarts_thenItIsReplacedAndServes() throws Exception {
        Path path = dir.resolve("s.sock");
        try (ServerSocketChannel stale = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            stale.bind(UnixDomainSocketAddress.of(path));
        }
        assertTrue(isSocket(path), "closing a JDK socket leaves its file: a stale socket");

        start(socket(path, ORDERS));

        assertEquals(ORDERS, networkStream(path, new Metadata()).identity());
    }

    @Test
    void givenASocketSomeoneListensOn_whenTheServerStarts_thenItIsRefusedAndTheOtherKeepsIt() throws Exception {
        Path path = dir.resolve("l.sock");
        try (ServerSocketChannel other = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            other.bind(UnixDomainSocketAddress.of(path));

            IOException e = assertThrows(IOException.class, () -> start(socket(path, ORDERS)));

            assertTrue(e.getMessage().contains("another process is listening"), e.getMessage());
            assertTrue(isSocket(path));
        }
    }

    @Test
    void givenARegularFileAtThePath_whenTheServerStarts_thenItIsRefusedAndTheFileIsLeftIntact() throws Exception {
        Path path = dir.resolve("f.sock");
        Files.writeString(path, "not a socket");

        IOException e = assertThrows(IOException.class, () -> start(socket(path, ORDERS)));

        assertTrue(e.getMessage().contains("exists and is not a socket (a regular file)"), e.getMessage());
        assertEquals("not a socket", Files.readString(path));
        try (var entries = Files.list(dir)) {
            assertEquals(List.of("f.sock", "keyset.json"), entries.map(p -> p.getFileName().toString()).sorted().toList(),
                    "no bind folder left behind");
        }
    }

    @Test
    void givenASymbolicLinkAtThePath_whenTheServerStarts_thenItIsRefusedAndTheLinkIsLeft() throws Exception {
        Path target = Files.writeString(dir.resolve("target"), "x");
        Path path = Files.createSymbolicLink(dir.resolve("l.sock"), target);

        IOException e = assertThrows(IOException.class, () -> start(socket(path, ORDERS)));

        assertTrue(e.getMessage().contains("a symbolic link"), e.getMessage());
        assertTrue(Files.isSymbolicLink(path));
    }

    @Test
    void givenARunningServer_whenItCloses_thenTheSocketFileIsRemoved() throws Exception {
        Path path = dir.resolve("c.sock");
        ExtProcServer started = start(socket(path, ORDERS));
        assertTrue(isSocket(path));

        started.close();

        assertFalse(Files.exists(path, LinkOption.NOFOLLOW_LINKS));
    }

    private static boolean isSocket(Path path) throws IOException {
        int mode = (Integer) Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
        return (mode & 0170000) == 0140000;
    }
}
