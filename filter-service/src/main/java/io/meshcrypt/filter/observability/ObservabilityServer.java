package io.meshcrypt.filter.observability;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.DecoderResult;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.QueryStringDecoder;
import io.netty.handler.codec.http.TooLongHttpHeaderException;
import io.netty.handler.codec.http.TooLongHttpLineException;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.netty.util.concurrent.ScheduledFuture;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The filter-service's HTTP endpoint, GET and HEAD only: {@code /metrics} in Prometheus text, {@code /healthz} 200
 * while the process serves, {@code /readyz} 200 when {@link Readiness} says ready, else 503 with one line saying why.
 * Built to stay up for the next scrape whatever a client sends: Netty's HTTP/1.1 codec on one event-loop thread (no
 * thread a slow client can hold), request lines and headers bounded (414, 431), bodies bounded (413), anything else
 * malformed 400, at most {@link Limits#maxConnections} connections (the rest closed at once), and each request must
 * arrive whole within {@link Limits#requestTimeout} of the connection opening or of the last answer, or the connection
 * is closed: a client trickling its headers, or idling, keeps a connection no longer than that.
 */
public final class ObservabilityServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ObservabilityServer.class);
    private static final String PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8";
    private static final String TEXT = "text/plain; charset=utf-8";
    /** Longer than any path served here plus a scraper's query string. */
    private static final int MAX_LINE_BYTES = 4096;
    /** Prometheus, probes and curl send a few hundred bytes of headers. */
    private static final int MAX_HEADER_BYTES = 8192;
    /** No request here has a body; a small one is read (to answer 405), a larger one is refused with 413. */
    private static final int MAX_BODY_BYTES = 4096;

    /**
     * @param maxConnections connections served at once; Prometheus and the probes need a handful
     * @param requestTimeout how long a connection may take to send a whole request (from its opening, or from the
     *     previous answer on a kept-alive connection)
     */
    public record Limits(int maxConnections, Duration requestTimeout) {
        public static final Limits DEFAULT = new Limits(64, Duration.ofSeconds(10));

        public Limits {
            if (maxConnections < 1 || requestTimeout.isNegative() || requestTimeout.isZero()) {
                throw new IllegalArgumentException("maxConnections >= 1 and a positive request timeout: " + maxConnections
                        + ", " + requestTimeout);
            }
        }
    }

    private final EventLoopGroup loop;
    private final Channel channel;

    private ObservabilityServer(EventLoopGroup loop, Channel channel) {
        this.loop = loop;
        this.channel = channel;
    }

    /** @param metrics the Prometheus text, rendered per scrape */
    public static ObservabilityServer start(InetSocketAddress address, Supplier<String> metrics, Readiness readiness)
            throws IOException {
        return start(address, metrics, readiness, Limits.DEFAULT);
    }

    static ObservabilityServer start(InetSocketAddress address, Supplier<String> metrics, Readiness readiness,
                                     Limits limits) throws IOException {
        EventLoopGroup loop = new NioEventLoopGroup(1, new DefaultThreadFactory("observability", true));
        AtomicInteger connections = new AtomicInteger();
        Endpoints endpoints = new Endpoints(metrics, readiness);
        ServerBootstrap bootstrap = new ServerBootstrap()
                .group(loop)
                .channel(NioServerSocketChannel.class)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        ch.pipeline().addLast(new ConnectionLimit(connections, limits.maxConnections()),
                                new HttpServerCodec(MAX_LINE_BYTES, MAX_HEADER_BYTES, MAX_BODY_BYTES),
                                new HttpObjectAggregator(MAX_BODY_BYTES),
                                new RequestDeadline(limits.requestTimeout()),
                                endpoints);
                    }
                });
        ChannelFuture bound = bootstrap.bind(address).awaitUninterruptibly();
        if (!bound.isSuccess()) {
            loop.shutdownGracefully(0, 0, TimeUnit.MILLISECONDS);
            throw bound.cause() instanceof IOException io ? io
                    : new IOException("cannot listen on " + address + ": " + bound.cause(), bound.cause());
        }
        return new ObservabilityServer(loop, bound.channel());
    }

    /** The bound address (its port when started on port 0). */
    public InetSocketAddress address() {
        return (InetSocketAddress) channel.localAddress();
    }

    @Override
    public void close() {
        channel.close().syncUninterruptibly();
        loop.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    }

    /** Closes a connection at once when {@code max} are open already. */
    private static final class ConnectionLimit extends ChannelInboundHandlerAdapter {
        private final AtomicInteger open;
        private final int max;

        ConnectionLimit(AtomicInteger open, int max) {
            this.open = open;
            this.max = max;
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) throws Exception {
            if (open.incrementAndGet() > max) {
                ctx.close();
                return;
            }
            super.channelActive(ctx);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) throws Exception {
            open.decrementAndGet();
            super.channelInactive(ctx);
        }
    }

    /** Closes the connection when no whole request arrived within the timeout (re-armed by each answer). */
    private static final class RequestDeadline extends ChannelInboundHandlerAdapter {
        private final long timeoutNanos;
        private ScheduledFuture<?> deadline;

        RequestDeadline(Duration timeout) {
            this.timeoutNanos = timeout.toNanos();
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) throws Exception {
            arm(ctx);
            super.channelActive(ctx);
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) throws Exception {
            // a whole request (the aggregator's): the answer re-arms the deadline for the next one
            disarm();
            super.channelRead(ctx, msg);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) throws Exception {
            disarm();
            super.channelInactive(ctx);
        }

        void arm(ChannelHandlerContext ctx) {
            disarm();
            deadline = ctx.executor().schedule(() -> ctx.close(), timeoutNanos, TimeUnit.NANOSECONDS);
        }

        private void disarm() {
            if (deadline != null) {
                deadline.cancel(false);
                deadline = null;
            }
        }
    }

    @ChannelHandler.Sharable
    private static final class Endpoints extends SimpleChannelInboundHandler<FullHttpRequest> {
        private final Supplier<String> metrics;
        private final Readiness readiness;

        Endpoints(Supplier<String> metrics, Readiness readiness) {
            this.metrics = metrics;
            this.readiness = readiness;
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest request) {
            DecoderResult decoded = request.decoderResult();
            if (decoded.isFailure()) {
                HttpResponseStatus status = decoded.cause() instanceof TooLongHttpLineException
                        ? HttpResponseStatus.REQUEST_URI_TOO_LONG
                        : decoded.cause() instanceof TooLongHttpHeaderException
                                ? HttpResponseStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
                                : HttpResponseStatus.BAD_REQUEST;
                respond(ctx, request, status, TEXT, "", false);
                return;
            }
            HttpMethod method = request.method();
            if (!method.equals(HttpMethod.GET) && !method.equals(HttpMethod.HEAD)) {
                FullHttpResponse refused = response(request, HttpResponseStatus.METHOD_NOT_ALLOWED, TEXT, "");
                refused.headers().set(HttpHeaderNames.ALLOW, "GET, HEAD");
                send(ctx, request, refused, !method.equals(HttpMethod.CONNECT));
                return;
            }
            switch (new QueryStringDecoder(request.uri()).path()) {
                case "/metrics" -> respond(ctx, request, HttpResponseStatus.OK, PROMETHEUS_TEXT, metrics.get(), true);
                case "/healthz" -> respond(ctx, request, HttpResponseStatus.OK, TEXT, "ok\n", true);
                case "/readyz" -> {
                    String reason = readiness.notReadyReason();
                    respond(ctx, request, reason == null ? HttpResponseStatus.OK : HttpResponseStatus.SERVICE_UNAVAILABLE,
                            TEXT, (reason == null ? "ready" : reason) + "\n", true);
                }
                default -> respond(ctx, request, HttpResponseStatus.NOT_FOUND, TEXT, "", true);
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            // a reset by the client, or a bug: the connection goes, the server stays
            log.debug("observability endpoint: closing a connection: {}", cause.toString());
            ctx.close();
        }

        private static void respond(ChannelHandlerContext ctx, FullHttpRequest request, HttpResponseStatus status,
                                    String type, String body, boolean keepAlive) {
            send(ctx, request, response(request, status, type, body), keepAlive);
        }

        private static FullHttpResponse response(FullHttpRequest request, HttpResponseStatus status, String type,
                                                 String body) {
            byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
            boolean head = request.method().equals(HttpMethod.HEAD);
            ByteBuf content = head || bytes.length == 0 ? Unpooled.EMPTY_BUFFER : Unpooled.wrappedBuffer(bytes);
            FullHttpResponse response = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status, content);
            response.headers().set(HttpHeaderNames.CONTENT_TYPE, type);
            response.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, bytes.length);
            return response;
        }

        private static void send(ChannelHandlerContext ctx, FullHttpRequest request, FullHttpResponse response,
                                 boolean keepAlive) {
            boolean open = keepAlive && HttpUtil.isKeepAlive(request);
            if (!open) {
                response.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
            }
            if (open) {
                ctx.writeAndFlush(response);
                RequestDeadline deadline = ctx.pipeline().get(RequestDeadline.class);
                deadline.arm(ctx.pipeline().context(deadline));
            } else {
                ctx.writeAndFlush(response).addListener(ChannelFutureListener.CLOSE);
            }
        }
    }
}
