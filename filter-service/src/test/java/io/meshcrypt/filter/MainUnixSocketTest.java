package io.meshcrypt.filter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse;
import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.NettyChannelBuilder;
import io.meshcrypt.filter.kms.Keysets;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.unix.DomainSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real filter-service started with {@code unixSockets:}: the socket has the configured mode once the service is
 * up, answers gRPC health and encrypts a Produce like {@code listen}, counts in the same metrics, and is gone after
 * the service stops.
 */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class MainUnixSocketTest {
    private static final HttpClient HTTP = HttpClient.newHttpClient();

    @TempDir
    Path dir;

    @Test
    void givenAUnixSocket_whenTheServiceRunsAndStops_thenItServesThereWithItsModeCountsItAndRemovesTheFile()
            throws Exception {
        Keysets.create(dir.resolve("kek.json"));
        Path config = dir.resolve("filter.yaml");
        Files.writeString(config, "listen: 127.0.0.1:0\nkeys:\n  provider: local\n  local:\n    keyset: kek.json\n"
                + "observability:\n  listen: 127.0.0.1:0\nunixSockets:\n  - path: run/f.sock\n    mode: \"0660\"\n");
        Path socket = dir.resolve("run/f.sock");
        EventLoopGroup clientLoop = new EpollEventLoopGroup(1);

        try (Main.Running running = Main.start(config)) {
            assertEquals(PosixFilePermissions.fromString("rw-rw----"),
                    Files.getPosixFilePermissions(socket, LinkOption.NOFOLLOW_LINKS));
            ManagedChannel channel = NettyChannelBuilder.forAddress(new DomainSocketAddress(socket.toFile()))
                    .eventLoopGroup(clientLoop).channelType(EpollDomainSocketChannel.class).usePlaintext().build();
            try {
                assertEquals(ServingStatus.SERVING, HealthGrpc.newBlockingStub(channel)
                        .withDeadlineAfter(10, TimeUnit.SECONDS).check(HealthCheckRequest.getDefaultInstance()).getStatus());
                Object encrypted = ExtProcRequests.exchange(channel, ExtProcRequests.produceFrame("payments", "card 4111"));
                assertTrue(encrypted instanceof ProcessingResponse r && r.hasReadData(), String.valueOf(encrypted));
            } finally {
                channel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
            }
            String metrics = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:"
                    + running.observability().address().getPort() + "/metrics")).timeout(Duration.ofSeconds(10)).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
            assertTrue(metrics.contains("meshcrypt_records_total{direction=\"produce\",outcome=\"encrypted\",topic=\"payments\"} 1.0"),
                    metrics);
            assertTrue(metrics.contains("meshcrypt_ext_proc_streams_started_total 1.0"), metrics);
        } finally {
            clientLoop.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(5, TimeUnit.SECONDS);
        }
        assertFalse(Files.exists(socket, LinkOption.NOFOLLOW_LINKS), "the socket file is removed when the service stops");
    }
}
