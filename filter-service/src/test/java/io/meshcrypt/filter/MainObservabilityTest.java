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
 * A real filter-service started with {@code observability:}: ready over HTTP and gRPC health, a Produce it encrypts
 * over ext_proc moves the topic's counter by its records, and a client speaking TLS is reset as a protocol violation.
 * With {@code unixSockets:}, the socket has the configured mode once the service is up, answers gRPC health and
 * encrypts a Produce as {@code listen} does, counts in the same metrics, and is gone after the service stops.
 */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class MainObservabilityTest {
    private static final HttpClient HTTP = HttpClient.newHttpClient();

    @TempDir
    Path dir;

    @Test
    void givenObservabilitySection_whenTrafficFlows_thenHealthReadyAndCountersMoveByWhatWasSeen() throws Exception {
        Keysets.create(dir.resolve("kek.json"));
        Path config = dir.resolve("filter.yaml");
        Files.writeString(config, "listen: 127.0.0.1:0\nkeys:\n  provider: local\n  local:\n    keyset: kek.json\n"
                + "observability:\n  listen: 127.0.0.1:0\n");

        try (Main.Running running = Main.start(config)) {
            int port = running.observability().address().getPort();
            assertEquals(200, get(port, "/healthz").statusCode());
            assertEquals(200, get(port, "/readyz").statusCode());
            ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", running.server().port()).usePlaintext().build();
            try {
                assertEquals(ServingStatus.SERVING, HealthGrpc.newBlockingStub(channel)
                        .withDeadlineAfter(10, TimeUnit.SECONDS).check(HealthCheckRequest.getDefaultInstance()).getStatus());

                Object encrypted = ExtProcRequests.exchange(channel, ExtProcRequests.produceFrame("payments", "card 4111"));
                assertTrue(encrypted instanceof ProcessingResponse r && r.hasReadData(), String.valueOf(encrypted));
                // a client speaking TLS: its ClientHello read as a Kafka request names no version this filter offers
                Object reset = ExtProcRequests.exchange(channel, new byte[] {0x16, 0x03, 0x01, 0x00, (byte) 0xa5, 0x01, 0x00, 0x00, (byte) 0xa1, 0x03, 0x03, 0x01});
                assertTrue(reset instanceof ProcessingResponse r
                        && r.getConnectionStatus() == ProcessingResponse.ConnectionStatus.CLOSE_RST, String.valueOf(reset));
            } finally {
                channel.shutdownNow();
            }

            String metrics = get(port, "/metrics").body();
            assertTrue(metrics.contains("meshcrypt_records_total{direction=\"produce\",outcome=\"encrypted\",topic=\"payments\"} 1.0"), metrics);
            assertTrue(metrics.contains("meshcrypt_connections_reset_total{reason=\"protocol_violation\"} 1.0"), metrics);
            assertTrue(metrics.contains("meshcrypt_connections_reset_total{reason=\"frame_too_large\"} 0.0"), metrics);
            assertTrue(metrics.contains("meshcrypt_ext_proc_streams_started_total 2.0"), metrics);
            assertTrue(metrics.contains("meshcrypt_deks_generated_total 1.0"), metrics);
            assertTrue(metrics.contains("meshcrypt_ready 1.0"), metrics);
            assertTrue(metrics.contains("jvm_memory_used_bytes"), metrics);
        }
    }

    @Test
    void givenPolicyFileEdits_whenOneIsInvalidAndOneValid_thenOneReloadRefusedAndOneApplied() throws Exception {
        Keysets.create(dir.resolve("kek.json"));
        Path config = dir.resolve("filter.yaml");
        String base = "listen: 127.0.0.1:0\nkeyset: kek.json\nobservability:\n  listen: 127.0.0.1:0\n";
        Files.writeString(config, base);

        try (Main.Running running = Main.start(config)) {
            int port = running.observability().address().getPort();
            // renamed into place: a file the watcher caught half-written would be refused once more
            replace(config, base + "policy:\n  unmatched: drop\n");
            awaitMetric(port, "meshcrypt_policy_reloads_total{outcome=\"refused\"} 1.0");
            replace(config, base + "policy:\n  encrypt: [\"pay*\"]\n");
            awaitMetric(port, "meshcrypt_policy_reloads_total{outcome=\"applied\"} 1.0");

            assertTrue(get(port, "/metrics").body().contains("meshcrypt_policy_reloads_total{outcome=\"refused\"} 1.0"));
        }
    }

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
            String metrics = get(running.observability().address().getPort(), "/metrics").body();
            assertTrue(metrics.contains("meshcrypt_records_total{direction=\"produce\",outcome=\"encrypted\",topic=\"payments\"} 1.0"),
                    metrics);
            assertTrue(metrics.contains("meshcrypt_ext_proc_streams_started_total 1.0"), metrics);
        } finally {
            clientLoop.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(5, TimeUnit.SECONDS);
        }
        assertFalse(Files.exists(socket, LinkOption.NOFOLLOW_LINKS), "the socket file is removed when the service stops");
    }

    private static void replace(Path file, String content) throws Exception {
        Path next = file.resolveSibling(file.getFileName() + ".next");
        Files.writeString(next, content);
        Files.move(next, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }

    private static void awaitMetric(int port, String sample) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        String body = "";
        while (System.nanoTime() < deadline) {
            body = get(port, "/metrics").body();
            if (body.contains(sample)) {
                return;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("no " + sample + " in\n" + body);
    }

    private static HttpResponse<String> get(int port, String path) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
    }
}
