package io.meshcrypt.filter.observability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.NettyServerBuilder;
import io.micrometer.core.instrument.Gauge;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The Netty pool gRPC really reads and writes through is the one measured, beside Netty's default. */
@Timeout(value = 30, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class NettyPoolsTest {

    @Test
    void givenWorkerEventLoops_whenBound_thenEachWorkersPendingTasksAreExported() throws Exception {
        NioEventLoopGroup workers = new NioEventLoopGroup(2, new DefaultThreadFactory("extproc-worker", true));
        try (FilterMetrics metrics = new FilterMetrics(10)) {
            metrics.bindWorkers(workers);

            String scrape = metrics.scrape();
            long series = scrape.lines().filter(l -> l.startsWith("netty_eventexecutor_tasks_pending{")).count();
            assertEquals(2, series, scrape);
        } finally {
            workers.shutdownGracefully(0, 0, TimeUnit.SECONDS);
        }
    }

    @Test
    void givenAGrpcCallServed_whenScraped_thenGrpcsOwnPoolShowsMemoryInUse() throws Exception {
        ByteBufAllocator grpc = NettyPools.grpcAllocator();
        assertNotNull(grpc, "grpc-netty's allocator found");
        assertNotSame(PooledByteBufAllocator.DEFAULT, grpc, "grpc-netty keeps a pool of its own by default");
        GrpcHealth health = new GrpcHealth(new Readiness(null));
        Server server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(health.service().create(null)).build().start();
        ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", server.getPort()).usePlaintext().build();
        try (FilterMetrics metrics = new FilterMetrics(10)) {
            // When a call goes through a real gRPC server
            HealthGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
                    .check(HealthCheckRequest.getDefaultInstance());

            // Then the pool with gRPC's allocator's id holds memory, and Netty's default pool is exported too
            String id = Integer.toString(System.identityHashCode(grpc));
            double used = metrics.registry().get("netty.allocator.memory.used").tag("id", id).gauges().stream()
                    .mapToDouble(Gauge::value).sum();
            assertTrue(used > 0, "gRPC's pool in use: " + used + " bytes");
            String defaultId = Integer.toString(System.identityHashCode(PooledByteBufAllocator.DEFAULT));
            assertNotNull(metrics.registry().find("netty.allocator.memory.used").tag("id", defaultId).gauge());
            String scrape = metrics.scrape();
            assertTrue(scrape.contains("netty_allocator_memory_used_bytes{"), scrape);
        } finally {
            channel.shutdownNow();
            server.shutdownNow();
            health.close();
        }
    }
}
