package io.meshcrypt.filter.transport;

import io.grpc.Server;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyServerBuilder;
import io.meshcrypt.meshconfig.tls.TlsMaterial;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.netty.util.concurrent.EventExecutor;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gRPC server Envoy's network ext_proc filter (and, with further services, its HTTP ext_proc filter) connects to:
 * on a TCP address, and optionally on Unix domain sockets ({@link UnixSocket}) serving the same services.
 */
public final class ExtProcServer implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(ExtProcServer.class);

    /**
     * Resource limits of the server.
     *
     * @param maxInboundMessageBytes largest ProcessingRequest accepted; Envoy sends one socket read per message
     * @param inboundWindow requests of one stream read ahead of the one being processed
     * @param workerThreads threads serving the gRPC connections and running their streams' handlers; each Envoy
     *     connection (and so each of its streams) stays on one of them
     * @param shutdownGrace how long {@link #close()} lets open streams finish before cancelling them
     * @param heldFrameTimeout how long a connection may hold an incomplete frame (from its first byte) before it is
     *     reset, whether or not the peer sends more
     */
    public record Limits(int maxInboundMessageBytes, int inboundWindow, int workerThreads, Duration shutdownGrace,
                         Duration heldFrameTimeout) {

        /** The transport's own tuning, not a limit of the config: requests of one stream read ahead. */
        public static final int DEFAULT_INBOUND_WINDOW = 8;
        /** The transport's own tuning, not a limit of the config: how long closing lets open streams finish. */
        public static final Duration DEFAULT_SHUTDOWN_GRACE = Duration.ofSeconds(10);

        public Limits {
            if (maxInboundMessageBytes < 1) {
                throw new IllegalArgumentException("maxInboundMessageBytes must be >= 1: " + maxInboundMessageBytes);
            }
            if (inboundWindow < 1) {
                throw new IllegalArgumentException("inboundWindow must be >= 1: " + inboundWindow);
            }
            if (workerThreads < 1) {
                throw new IllegalArgumentException("workerThreads must be >= 1: " + workerThreads);
            }
            Objects.requireNonNull(shutdownGrace, "shutdownGrace");
            if (shutdownGrace.isNegative()) {
                throw new IllegalArgumentException("shutdownGrace must not be negative: " + shutdownGrace);
            }
            Objects.requireNonNull(heldFrameTimeout, "heldFrameTimeout");
            if (heldFrameTimeout.isNegative() || heldFrameTimeout.isZero()) {
                throw new IllegalArgumentException("heldFrameTimeout must be positive: " + heldFrameTimeout);
            }
        }

        /**
         * The two limits the config owns (its {@code limits:}), with the transport's own tuning: a window of
         * {@value #DEFAULT_INBOUND_WINDOW}, one worker per core, {@link #DEFAULT_SHUTDOWN_GRACE} to close.
         */
        public static Limits of(int maxInboundMessageBytes, Duration heldFrameTimeout) {
            return new Limits(maxInboundMessageBytes, DEFAULT_INBOUND_WINDOW, Runtime.getRuntime().availableProcessors(),
                    DEFAULT_SHUTDOWN_GRACE, heldFrameTimeout);
        }

        public Limits withMaxInboundMessageBytes(int bytes) {
            return new Limits(bytes, inboundWindow, workerThreads, shutdownGrace, heldFrameTimeout);
        }

        public Limits withInboundWindow(int window) {
            return new Limits(maxInboundMessageBytes, window, workerThreads, shutdownGrace, heldFrameTimeout);
        }

        public Limits withWorkerThreads(int threads) {
            return new Limits(maxInboundMessageBytes, inboundWindow, threads, shutdownGrace, heldFrameTimeout);
        }

        public Limits withShutdownGrace(Duration grace) {
            return new Limits(maxInboundMessageBytes, inboundWindow, workerThreads, grace, heldFrameTimeout);
        }

        public Limits withHeldFrameTimeout(Duration timeout) {
            return new Limits(maxInboundMessageBytes, inboundWindow, workerThreads, shutdownGrace, timeout);
        }
    }

    private final Server server;
    /** One server per Unix domain socket, each giving its streams the socket's identity, in config order. */
    private final List<UnixSocketServer> unixServers;
    private final EventLoopGroup boss;
    private final EventLoopGroup workers;
    private final TransportMetrics metrics;
    private final Duration shutdownGrace;
    private final NetworkExtProcService kafka;

    /** A started server on a Unix domain socket, and the socket it serves. */
    private record UnixSocketServer(UnixSocket socket, Server server) {
    }

    private ExtProcServer(Server server, List<UnixSocketServer> unixServers, NetworkExtProcService kafka,
                          EventLoopGroup boss, EventLoopGroup workers, TransportMetrics metrics, Duration shutdownGrace) {
        this.server = server;
        this.unixServers = unixServers;
        this.kafka = kafka;
        this.boss = boss;
        this.workers = workers;
        this.metrics = metrics;
        this.shutdownGrace = shutdownGrace;
    }

    /** Binds and starts the server; port 0 picks a free port (see {@link #port()}). */
    public static ExtProcServer start(InetSocketAddress address, ConnectionHandlerFactory factory, Limits limits)
            throws IOException {
        return start(address, factory, limits, List.of());
    }

    /** As {@link #start(InetSocketAddress, ConnectionHandlerFactory, Limits)}, also serving {@code services}. */
    public static ExtProcServer start(InetSocketAddress address, ConnectionHandlerFactory factory, Limits limits,
                                      List<GrpcServiceFactory> services) throws IOException {
        return start(address, factory, limits, services, null);
    }

    /**
     * As {@link #start(InetSocketAddress, ConnectionHandlerFactory, Limits, List)}; with {@code tls}, only over mutual
     * TLS: a client must present a certificate chaining to {@code tls}' CA, and rotated files serve new connections.
     *
     * @param tls the server's certificate, key and trusted CA, or null for plaintext
     */
    public static ExtProcServer start(InetSocketAddress address, ConnectionHandlerFactory factory, Limits limits,
                                      List<GrpcServiceFactory> services, TlsMaterial tls) throws IOException {
        return start(address, factory, limits, services, tls,
                tls == null ? StreamIdentity.NONE : StreamIdentity.CERTIFICATE);
    }

    /**
     * As {@link #start(InetSocketAddress, ConnectionHandlerFactory, Limits, List, TlsMaterial)}, with each stream's
     * identity taken as {@code identities} says (handlers and services find it under {@link StreamIdentity#CURRENT}).
     */
    public static ExtProcServer start(InetSocketAddress address, ConnectionHandlerFactory factory, Limits limits,
                                      List<GrpcServiceFactory> services, TlsMaterial tls, StreamIdentity identities)
            throws IOException {
        return start(address, factory, limits, services, tls, identities, ConnectionLog.TEXT);
    }

    /** As the method above, logging each proxied connection's end as {@code connectionLog} says. */
    public static ExtProcServer start(InetSocketAddress address, ConnectionHandlerFactory factory, Limits limits,
                                      List<GrpcServiceFactory> services, TlsMaterial tls, StreamIdentity identities,
                                      ConnectionLog connectionLog) throws IOException {
        return start(address, factory, limits, services, tls, identities, connectionLog, List.of());
    }

    /**
     * As the method above, also serving everything on each of {@code unixSockets}, without TLS: every stream accepted
     * on one carries that socket's identity ({@link StreamIdentity#fixed}), whatever it sends. Each socket file gets its
     * mode before anyone can connect to it (see {@link UnixSocketFiles}) and is removed by {@link #close()}.
     */
    public static ExtProcServer start(InetSocketAddress address, ConnectionHandlerFactory factory, Limits limits,
                                      List<GrpcServiceFactory> services, TlsMaterial tls, StreamIdentity identities,
                                      ConnectionLog connectionLog, List<UnixSocket> unixSockets) throws IOException {
        Objects.requireNonNull(address, "address");
        Objects.requireNonNull(connectionLog, "connectionLog");
        Objects.requireNonNull(identities, "identities");
        if (identities == StreamIdentity.CERTIFICATE && tls == null) {
            throw new IllegalArgumentException("identities from certificates need mutual TLS");
        }
        Objects.requireNonNull(factory, "factory");
        Objects.requireNonNull(limits, "limits");
        Objects.requireNonNull(unixSockets, "unixSockets");
        // The transport threads are the workers: a stream's handler runs on the thread that reads its connection, with
        // no hand-off and no wake-up per message. Handlers never block (a data key on its way parks the frame).
        // Unix domain sockets need Netty's epoll transport, whose event loops serve only epoll channels: with any, TCP
        // runs on epoll too, so that one set of workers runs every stream (ExtProcStream.executorFor).
        boolean epoll = !unixSockets.isEmpty();
        if (epoll) {
            Epoll.ensureAvailability();
        }
        EventLoopGroup boss = epoll ? new EpollEventLoopGroup(1, new DefaultThreadFactory("extproc-accept", true))
                : new NioEventLoopGroup(1, new DefaultThreadFactory("extproc-accept", true));
        EventLoopGroup workers = epoll
                ? new EpollEventLoopGroup(limits.workerThreads(), new DefaultThreadFactory("extproc-worker", true))
                : new NioEventLoopGroup(limits.workerThreads(), new DefaultThreadFactory("extproc-worker", true));
        TransportMetrics metrics = new TransportMetrics();
        NetworkExtProcService kafka = new NetworkExtProcService(factory, workers, limits.inboundWindow(), metrics,
                limits.heldFrameTimeout(), connectionLog);
        Server server = null;
        List<UnixSocketServer> unixServers = new ArrayList<>();
        try {
            // each service is built once and served on every listener, under that listener's identities
            List<ServerServiceDefinition> definitions = new ArrayList<>();
            definitions.add(kafka.withHeaders());
            services.forEach(service -> definitions.add(service.create(workers).bindService()));
            NettyServerBuilder builder = builder(NettyServerBuilder.forAddress(address), boss, workers, limits,
                    definitions, identities.interceptor())
                    .channelType(epoll ? EpollServerSocketChannel.class : NioServerSocketChannel.class);
            if (tls != null) {
                builder.sslContext(mutualTls(tls));
            }
            server = builder.build().start();
            for (UnixSocket socket : unixSockets) {
                unixServers.add(new UnixSocketServer(socket, startUnix(socket, boss, workers, limits, definitions)));
            }
        } catch (IOException | RuntimeException e) {
            if (server != null) {
                server.shutdownNow();
            }
            for (UnixSocketServer started : unixServers) {
                started.server().shutdownNow();
                removeQuietly(started.socket().path());
            }
            boss.shutdownGracefully(0, 0, TimeUnit.MILLISECONDS);
            workers.shutdownGracefully(0, 0, TimeUnit.MILLISECONDS);
            throw e;
        }
        log.info("ext_proc server listening on {}{}, stream identities {} ({} workers, max message {} bytes, held frames"
                + " complete within {})", server.getListenSockets(), tls == null ? "" : " with mutual TLS (" + TLS_PROVIDER + ")",
                describe(identities), limits.workerThreads(), limits.maxInboundMessageBytes(), limits.heldFrameTimeout());
        for (UnixSocketServer unix : unixServers) {
            log.info("ext_proc server listening on {} without TLS", unix.socket());
        }
        return new ExtProcServer(server, List.copyOf(unixServers), kafka, boss, workers, metrics, limits.shutdownGrace());
    }

    /** What every listener shares: the threads, the limits and the services, each behind {@code identity}. */
    private static NettyServerBuilder builder(NettyServerBuilder builder, EventLoopGroup boss, EventLoopGroup workers,
                                              Limits limits, List<ServerServiceDefinition> services,
                                              ServerInterceptor identity) {
        builder.bossEventLoopGroup(boss)
                .workerEventLoopGroup(workers)
                // gRPC's callbacks run on the transport thread, which is the stream's worker (ExtProcStream.hop).
                .directExecutor()
                // grpc-java's default is 4 MiB while Envoy's side is unlimited: set it on purpose.
                .maxInboundMessageSize(limits.maxInboundMessageBytes());
        services.forEach(service -> builder.addService(ServerInterceptors.intercept(service, identity)));
        return builder;
    }

    /**
     * Serves {@code services} on {@code socket}: bound in an owner-only folder, given its mode there, then moved to its
     * path, so that no connection is accepted under a looser mode (see {@link UnixSocketFiles}).
     */
    private static Server startUnix(UnixSocket socket, EventLoopGroup boss, EventLoopGroup workers, Limits limits,
                                    List<ServerServiceDefinition> services) throws IOException {
        Path bound;
        try {
            UnixSocketFiles.clear(socket.path());
            bound = UnixSocketFiles.bindFolder(socket.path());
        } catch (IOException e) {
            throw failed(socket, e);
        }
        Server server = null;
        try {
            server = builder(NettyServerBuilder.forAddress(new DomainSocketAddress(bound.toFile())), boss, workers,
                    limits, services, StreamIdentity.fixed(socket.identity()))
                    .channelType(EpollServerDomainSocketChannel.class)
                    .build()
                    .start();
            UnixSocketFiles.publish(bound, socket.path(), socket.mode());
            return server;
        } catch (IOException | RuntimeException e) {
            if (server != null) {
                server.shutdownNow();
                if (!Files.exists(bound, LinkOption.NOFOLLOW_LINKS)) {
                    // moved into place, then its bind folder could not be removed: the socket at the path is ours
                    removeQuietly(socket.path());
                }
            }
            UnixSocketFiles.abandon(bound);
            throw failed(socket, e);
        }
    }

    private static IOException failed(UnixSocket socket, Exception e) {
        // the JDK's file exceptions say only the file: their type says what went wrong
        String why = e instanceof FileSystemException || e.getMessage() == null ? e.toString() : e.getMessage();
        return new IOException("unix socket " + socket.path() + ": " + why, e);
    }

    /**
     * A server context that requires a client certificate from the mesh CA only (no default trust roots). Both
     * providers call the reloading key and trust managers on every handshake; gRPC's settings give TLS 1.2+ and h2.
     */
    public static SslContext mutualTls(TlsMaterial tls) throws SSLException {
        return GrpcSslContexts.configure(SslContextBuilder.forServer(tls.keyManager()), TLS_PROVIDER)
                .trustManager(tls.trustManager())
                .clientAuth(ClientAuth.REQUIRE)
                .build();
    }

    /**
     * BoringSSL (netty-tcnative) where its native library loads, else the JDK's TLS: every byte of every Kafka
     * connection crosses this hop twice, and the JDK's SSLEngine spent a quarter of the filter-service's CPU on it.
     */
    static final SslProvider TLS_PROVIDER =
            SslProvider.isAlpnSupported(SslProvider.OPENSSL) ? SslProvider.OPENSSL : SslProvider.JDK;

    private static String describe(StreamIdentity identities) {
        return switch (identities) {
            case NONE -> "none (plaintext: no stream is a policy reader or writer)";
            case CERTIFICATE -> "from client certificates";
            case FORWARDED_CLIENT_CERT -> "from the mesh sidecar's x-forwarded-client-cert";
        };
    }

    /** The bound port. */
    public int port() {
        return server.getPort();
    }

    public TransportMetrics metrics() {
        return metrics;
    }

    /** The worker threads: the transport event loops that run every stream. */
    public Iterable<EventExecutor> workers() {
        return workers;
    }

    /** Blocks until every listener has terminated. */
    public void awaitTermination() throws InterruptedException {
        for (Server each : servers()) {
            each.awaitTermination();
        }
    }

    /**
     * Drains: stops accepting streams, closes each open connection at its next quiet point (between requests, see
     * {@link NetworkExtProcStream#drain}), lets the rest run for the grace period, then cancels them (their handlers
     * are closed; Envoy resets their connections) and stops the workers once their queued work is done.
     */
    @Override
    public void close() {
        long graceMillis = shutdownGrace.toMillis();
        server.shutdown();
        unixServers.forEach(unix -> unix.server().shutdown());
        int open = kafka.openStreams();
        kafka.drain();
        if (open > 0) {
            log.info("draining {} connection(s): each closes between requests, the rest are reset after {}", open, shutdownGrace);
        }
        try {
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(graceMillis);
            for (Server each : servers()) {
                if (!each.awaitTermination(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                    each.shutdownNow();
                    each.awaitTermination(graceMillis, TimeUnit.MILLISECONDS);
                }
            }
        } catch (InterruptedException e) {
            servers().forEach(Server::shutdownNow);
            Thread.currentThread().interrupt();
        } finally {
            unixServers.forEach(unix -> removeQuietly(unix.socket().path()));
            // Quiet period 0: queued close work still runs, then the threads exit.
            boss.shutdownGracefully(0, graceMillis, TimeUnit.MILLISECONDS);
            workers.shutdownGracefully(0, graceMillis, TimeUnit.MILLISECONDS).awaitUninterruptibly(graceMillis);
        }
    }

    private List<Server> servers() {
        List<Server> all = new ArrayList<>();
        all.add(server);
        unixServers.forEach(unix -> all.add(unix.server()));
        return all;
    }

    private static void removeQuietly(Path socket) {
        try {
            UnixSocketFiles.remove(socket);
        } catch (IOException e) {
            log.warn("cannot remove unix socket {}: {}", socket, e.toString());
        }
    }
}
