package io.meshcrypt.filter.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.service.network_ext_proc.v3.Data;
import io.envoyproxy.envoy.service.network_ext_proc.v3.NetworkExternalProcessorGrpc;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingRequest;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.transport.ExtProcTestClient.Responses;
import io.meshcrypt.meshconfig.tls.TlsFiles;
import io.meshcrypt.meshconfig.tls.TlsMaterial;
import io.meshcrypt.pki.LocalCa;
import io.netty.handler.ssl.SslContext;
import java.math.BigInteger;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import javax.net.ssl.KeyManager;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The ext_proc server with {@code tls:}: an "oracle" client (one that sends a captured envelope and hopes for its
 * plaintext) gets nothing without a certificate from the mesh CA; a sidecar with one does; rotated server files serve
 * new connections without a restart.
 */
class MutualTlsTest {

    private static final String TOPIC = "orders";
    private static final Duration DAY = Duration.ofHours(24);

    @TempDir
    Path dir;

    private final List<AutoCloseable> resources = new ArrayList<>();
    private final AtomicInteger streamsOpened = new AtomicInteger();
    private final AtomicReference<String> streamIdentity = new AtomicReference<>();
    private LocalCa meshCa;
    private ValueCipher cipher;
    private ExtProcServer server;

    @BeforeEach
    void startTlsServer() throws Exception {
        meshCa = LocalCa.openOrCreate(dir.resolve("pki"));
        LocalCa.Issued serverFiles = meshCa.issue("filter-service", LocalCa.spiffeId("filter-service"),
                List.of("localhost", "127.0.0.1"), DAY);
        Path keyset = dir.resolve("keyset.json");
        Keysets.create(keyset);
        cipher = ValueCipherV1.fromKeysetFile(keyset);
        TlsMaterial tls = TlsMaterial.load(new TlsFiles(serverFiles.certificate(), serverFiles.privateKey(), meshCa.caCertificate()));
        // decrypts what the client reads: the data path an oracle would like to use
        ConnectionHandlerFactory decrypting = headers -> {
            streamsOpened.incrementAndGet();
            return new ConnectionHandler() {
                @Override
                public ByteString onRead(ByteString data, boolean endOfStream) throws Exception {
                    return ByteString.copyFrom(cipher.decrypt(TOPIC, data.asReadOnlyByteBuffer()));
                }

                @Override
                public ByteString onWrite(ByteString data, boolean endOfStream) {
                    return data;
                }

                @Override
                public void onClose() {
                }
            };
        };
        ConnectionHandlerFactory recordingIdentity = new ConnectionHandlerFactory() {
            @Override
            public ConnectionHandler open(StreamHeaders headers) {
                return decrypting.open(headers);
            }

            @Override
            public ConnectionHandler open(StreamHeaders headers, String identity) {
                streamIdentity.set(identity);
                return decrypting.open(headers);
            }
        };
        server = ExtProcServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), recordingIdentity,
                TestLimits.extProc().withWorkerThreads(1).withShutdownGrace(Duration.ofSeconds(1)), List.of(), tls);
        resources.add(server);
    }

    @AfterEach
    void tearDown() throws Exception {
        for (int i = resources.size() - 1; i >= 0; i--) {
            resources.get(i).close();
        }
    }

    @Test
    void givenAClientWithoutACertificate_whenItSendsACapturedEnvelope_thenTheHandshakeIsRefusedAndNoStreamOpens() throws Exception {
        SslContext noCertificate = GrpcSslContexts.forClient().trustManager(meshCa.caCertificate().toFile()).build();

        Status status = failedStatus(noCertificate);

        assertEquals(Status.Code.UNAVAILABLE, status.getCode(), status.toString());
        assertEquals(0, streamsOpened.get());
    }

    @Test
    void givenAPlaintextClient_whenItSendsACapturedEnvelope_thenNoStreamOpens() throws Exception {
        Status status = failedStatus(null);

        assertEquals(Status.Code.UNAVAILABLE, status.getCode(), status.toString());
        assertEquals(0, streamsOpened.get());
    }

    @Test
    void givenAClientWithACertificateFromAForeignCa_whenItSendsACapturedEnvelope_thenTheHandshakeIsRefusedAndNoStreamOpens() throws Exception {
        LocalCa foreignCa = LocalCa.openOrCreate(dir.resolve("foreign"));
        LocalCa.Issued foreign = foreignCa.issue("sidecar-kafka-apps", LocalCa.spiffeId("sidecar/kafka-apps"), List.of(), DAY);
        SslContext foreignCertificate = GrpcSslContexts.forClient().trustManager(meshCa.caCertificate().toFile())
                .keyManager(foreign.certificate().toFile(), foreign.privateKey().toFile()).build();

        Status status = failedStatus(foreignCertificate);

        assertEquals(Status.Code.UNAVAILABLE, status.getCode(), status.toString());
        assertEquals(0, streamsOpened.get());
    }

    @Test
    void givenASidecarWithAMeshCertificate_whenItSendsAnEnvelope_thenItGetsThePlaintext() throws Exception {
        LocalCa.Issued sidecar = meshCa.issue("sidecar-kafka-apps", LocalCa.spiffeId("sidecar/kafka-apps"), List.of(), DAY);
        SslContext mesh = GrpcSslContexts.forClient().trustManager(meshCa.caCertificate().toFile())
                .keyManager(sidecar.certificate().toFile(), sidecar.privateKey().toFile()).build();
        Responses responses = new Responses();

        stub(mesh).process(responses).onNext(capturedEnvelope());

        assertEquals("card 4111", responses.nextData());
        assertEquals(1, streamsOpened.get());
        assertEquals("spiffe://meshcrypt.local/sidecar/kafka-apps", streamIdentity.get(),
                "the stream's identity is the SPIFFE id of the certificate the handshake verified");
    }

    @Test
    void givenAnExpiredMeshCertificate_whenItSendsACapturedEnvelope_thenTheHandshakeIsRefusedAndNoStreamOpens() throws Exception {
        // valid from 5 minutes ago until 4 minutes ago: signed by the mesh CA, but no longer valid
        LocalCa.Issued expired = meshCa.issue("sidecar-old", LocalCa.spiffeId("sidecar/old"), List.of(), Duration.ofMinutes(-4));
        SslContext context = GrpcSslContexts.forClient().trustManager(meshCa.caCertificate().toFile())
                .keyManager(expired.certificate().toFile(), expired.privateKey().toFile()).build();

        Status status = failedStatus(context);

        assertEquals(Status.Code.UNAVAILABLE, status.getCode(), status.toString());
        assertEquals(0, streamsOpened.get());
    }

    @Test
    void givenTheServerCertificateIsReissued_whenANewConnectionOpens_thenItSeesTheNewCertificateWithoutARestart() throws Exception {
        LocalCa.Issued sidecar = meshCa.issue("sidecar-kafka-apps", LocalCa.spiffeId("sidecar/kafka-apps"), List.of(), DAY);
        TlsMaterial client = TlsMaterial.load(new TlsFiles(sidecar.certificate(), sidecar.privateKey(), meshCa.caCertificate()));
        BigInteger before = serverCertificate(client).getSerialNumber();

        LocalCa.Issued reissued = meshCa.issue("filter-service", LocalCa.spiffeId("filter-service"), List.of("localhost", "127.0.0.1"), DAY);

        BigInteger after = serverCertificate(client).getSerialNumber();
        assertNotEquals(before, after);
        assertEquals(LocalCa.readCertificate(reissued.certificate()).getSerialNumber(), after);
    }

    private ProcessingRequest capturedEnvelope() throws Exception {
        ByteBuffer envelope = cipher.encrypt(TOPIC, ByteBuffer.wrap("card 4111".getBytes(StandardCharsets.UTF_8)));
        return ProcessingRequest.newBuilder().setReadData(Data.newBuilder().setData(ByteString.copyFrom(envelope))).build();
    }

    /** The status the stream of a client with {@code ssl} (null: plaintext) ends with, after sending an envelope. */
    private Status failedStatus(SslContext ssl) throws Exception {
        Responses responses = new Responses();
        StreamObserver<ProcessingRequest> requests = stub(ssl).process(responses);
        requests.onNext(capturedEnvelope());
        return Status.fromThrowable(assertInstanceOf(StatusRuntimeException.class, responses.next()));
    }

    private NetworkExternalProcessorGrpc.NetworkExternalProcessorStub stub(SslContext ssl) {
        NettyChannelBuilder builder = NettyChannelBuilder.forAddress("127.0.0.1", server.port());
        ManagedChannel channel = (ssl == null ? builder.usePlaintext() : builder.sslContext(ssl)).build();
        resources.add(() -> {
            channel.shutdownNow();
            channel.awaitTermination(ExtProcTestClient.TIMEOUT_SECONDS, TimeUnit.SECONDS);
        });
        return NetworkExternalProcessorGrpc.newStub(channel);
    }

    /** The certificate the server presents to a new TLS connection of a mesh client. */
    private X509Certificate serverCertificate(TlsMaterial client) throws Exception {
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(new KeyManager[] {client.keyManager()}, new TrustManager[] {client.trustManager()}, null);
        try (SSLSocket socket = (SSLSocket) context.getSocketFactory().createSocket("127.0.0.1", server.port())) {
            SSLParameters parameters = socket.getSSLParameters();
            parameters.setApplicationProtocols(new String[] {"h2"});
            socket.setSSLParameters(parameters);
            socket.startHandshake();
            return (X509Certificate) socket.getSession().getPeerCertificates()[0];
        }
    }
}
