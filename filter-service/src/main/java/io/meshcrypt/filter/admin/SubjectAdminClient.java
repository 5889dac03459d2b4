package io.meshcrypt.filter.admin;

import com.google.protobuf.Struct;
import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCalls;
import io.meshcrypt.meshconfig.tls.TlsFiles;
import io.meshcrypt.meshconfig.tls.TlsMaterial;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.io.IOException;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * A client of the filter-service's admin API ({@link SubjectAdminApi}): {@code subjects forget --server}, the
 * launcher's {@code ./meshcrypt forget} and the tests. With TLS it shows its own certificate (its SPIFFE id must be in
 * the server's {@code admin.identities}) and checks that the server's chains to the trusted CA and names the host
 * dialled.
 */
public final class SubjectAdminClient implements AutoCloseable {
    private final ManagedChannel channel;
    private final Duration timeout;

    private SubjectAdminClient(ManagedChannel channel, Duration timeout) {
        this.channel = channel;
        this.timeout = timeout;
    }

    /**
     * @param tls this client's certificate and key and the CA the server's certificate must chain to; null for a
     *     plaintext loopback port
     * @param timeout deadline of each call
     */
    public static SubjectAdminClient connect(String host, int port, TlsFiles tls, Duration timeout)
            throws IOException, GeneralSecurityException {
        NettyChannelBuilder channel = NettyChannelBuilder.forAddress(host, port);
        if (tls == null) {
            channel.usePlaintext();
        } else {
            TlsMaterial material = TlsMaterial.load(tls);
            channel.sslContext(GrpcSslContexts.configure(SslContextBuilder.forClient(), SslProvider.JDK)
                    .keyManager(material.keyManager()).trustManager(material.trustManager()).build());
        }
        return new SubjectAdminClient(channel.build(), timeout);
    }

    /**
     * Forgets one subject of {@code scope}: for a policy entry without a scope of its own, its topic pattern.
     *
     * @return the subject ref (hex)
     * @throws io.grpc.StatusRuntimeException as the server answered: PERMISSION_DENIED (not an admin identity),
     *     NOT_FOUND (the scope has no subject keys), INVALID_ARGUMENT, UNAVAILABLE (the marker was not written)...
     */
    public String forget(String scope, String subject) {
        Struct answer = ClientCalls.blockingUnaryCall(channel, SubjectAdminApi.FORGET,
                CallOptions.DEFAULT.withDeadlineAfter(timeout.toMillis(), TimeUnit.MILLISECONDS),
                SubjectAdminApi.forgetRequest(scope, subject));
        return SubjectAdminApi.string(answer, SubjectAdminApi.SUBJECT_REF);
    }

    @Override
    public void close() {
        channel.shutdownNow();
        try {
            channel.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
