package io.meshcrypt.filter.observability;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.NettyServerBuilder;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** grpc.health.v1 over a real gRPC server: NOT_SERVING until ready, SERVING then, NOT_SERVING for good once closed. */
@Timeout(value = 30, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class GrpcHealthTest {

    @Test
    void givenAStartingService_whenItBecomesReadyAndThenCloses_thenTheStatusFollows() throws Exception {
        Readiness readiness = new Readiness(null);
        GrpcHealth health = new GrpcHealth(readiness);
        Server server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(health.service().create(null)).build().start();
        ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", server.getPort()).usePlaintext().build();
        try {
            assertEquals(ServingStatus.NOT_SERVING, status(channel, ""));

            readiness.serving();
            health.update();

            assertEquals(ServingStatus.SERVING, status(channel, ""));
            assertEquals(ServingStatus.SERVING, status(channel, GrpcHealth.EXT_PROC));

            health.close();

            assertEquals(ServingStatus.NOT_SERVING, status(channel, ""));
        } finally {
            channel.shutdownNow();
            server.shutdownNow();
            health.close();
        }
    }

    private static ServingStatus status(ManagedChannel channel, String service) {
        return HealthGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
                .check(HealthCheckRequest.newBuilder().setService(service).build()).getStatus();
    }
}
