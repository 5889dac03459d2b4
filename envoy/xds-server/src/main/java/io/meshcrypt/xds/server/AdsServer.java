package io.meshcrypt.xds.server;

import io.envoyproxy.controlplane.server.V3DiscoveryServer;
import io.grpc.Server;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyServerBuilder;
import io.meshcrypt.meshconfig.tls.TlsMaterial;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;

/**
 * The gRPC server of Aggregated Discovery Service (state of the world and delta), answering every Envoy and
 * filter-service from the {@link NodeSnapshots} cache, with {@link NackRollbackCallback} following the streams.
 */
public final class AdsServer implements AutoCloseable {

    private final Server grpc;

    private AdsServer(Server grpc) {
        this.grpc = grpc;
    }

    public static AdsServer start(InetSocketAddress address, NodeSnapshots nodes) throws IOException {
        return start(address, nodes, null);
    }

    /**
     * @param tls with it, only clients with a certificate chaining to its CA get a stream (mutual TLS; rotated files
     *     serve new connections); null for plaintext
     */
    public static AdsServer start(InetSocketAddress address, NodeSnapshots nodes, TlsMaterial tls) throws IOException {
        V3DiscoveryServer discovery = new V3DiscoveryServer(new NackRollbackCallback(nodes), nodes.cache());
        NettyServerBuilder builder = NettyServerBuilder.forAddress(address);
        if (tls != null) {
            // JDK provider: it asks the reloading key and trust managers on every handshake
            builder.sslContext(GrpcSslContexts.configure(SslContextBuilder.forServer(tls.keyManager()), SslProvider.JDK)
                    .trustManager(tls.trustManager())
                    .clientAuth(ClientAuth.REQUIRE)
                    .build());
        }
        Server grpc = builder
                .addService(discovery.getAggregatedDiscoveryServiceImpl())
                // Envoy keeps one ADS stream open for its whole life; ping it so a dead peer is noticed
                .keepAliveTime(30, TimeUnit.SECONDS)
                .permitKeepAliveTime(10, TimeUnit.SECONDS)
                .build()
                .start();
        return new AdsServer(grpc);
    }

    public InetSocketAddress address() {
        return (InetSocketAddress) grpc.getListenSockets().get(0);
    }

    @Override
    public void close() {
        grpc.shutdownNow();
        try {
            grpc.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
