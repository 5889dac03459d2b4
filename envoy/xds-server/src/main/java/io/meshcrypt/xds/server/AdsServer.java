package io.meshcrypt.xds.server;

import io.envoyproxy.controlplane.server.V3DiscoveryServer;
import io.grpc.Server;
import io.grpc.netty.NettyServerBuilder;
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
        V3DiscoveryServer discovery = new V3DiscoveryServer(new NackRollbackCallback(nodes), nodes.cache());
        Server grpc = NettyServerBuilder.forAddress(address)
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
