package io.meshcrypt.filter.config;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.Code;
import com.google.rpc.Status;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.Secret;
import io.envoyproxy.envoy.service.discovery.v3.AggregatedDiscoveryServiceGrpc;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.grpc.ManagedChannel;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import io.meshcrypt.meshconfig.http.HttpRules;
import io.meshcrypt.meshconfig.mesh.Policies;
import io.meshcrypt.meshconfig.mesh.PolicyDelivery;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.tls.TlsMaterial;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import javax.net.ssl.SSLException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The policy and HTTP rules as the xDS server delivers them ({@code policyFrom: xds://host:port}): one ADS stream
 * subscribed to the {@value PolicyDelivery#RESOURCE_NAME} resource, as an Envoy subscribes to its listeners. Each
 * version is read with the same reader the xDS server validated it with and applied like a changed policy file
 * ({@link PolicyApplier}); it is acknowledged when it is in force and rejected (NACK, with the reason) when it is
 * invalid or cannot be enforced, the last good version staying in force. A broken stream is reopened with backoff,
 * announcing the version in force so an unchanged policy is not sent again.
 *
 * <p>Start-up fails closed: {@link #awaitFirst} gives the service its first policy or fails the start; the service
 * serves no traffic before it has one. Responses that arrive between that and {@link #attach} wait for it.
 */
public final class XdsPolicySource implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(XdsPolicySource.class);
    static final String TYPE_URL = "type.googleapis.com/" + Secret.getDescriptor().getFullName();
    static final Duration MIN_BACKOFF = Duration.ofMillis(100);
    static final Duration MAX_BACKOFF = Duration.ofSeconds(5);

    private final String server;
    private final Node node;
    private final ManagedChannel channel;
    /** Handles responses one at a time and schedules reconnects; gRPC's threads only hand over. */
    private final ScheduledExecutorService executor;
    private final CompletableFuture<Policies> first = new CompletableFuture<>();
    private final CountDownLatch attached = new CountDownLatch(1);
    private volatile PolicyApplier applier;
    private final PolicyReloads reloads = new PolicyReloads();
    /** The version in force (acknowledged last), "" before the first. Only touched on the executor. */
    private String acceptedVersion = "";
    private Duration backoff = MIN_BACKOFF;
    private StreamObserver<DiscoveryRequest> requests;
    private volatile boolean closed;
    /** Why the last version was rejected before the service had a policy, for the start-up error. */
    private volatile String startProblem;

    private XdsPolicySource(InetSocketAddress server, String nodeId, TlsMaterial tls) throws SSLException {
        this.server = PolicyDelivery.SCHEME + server.getHostString() + ":" + server.getPort();
        this.node = Node.newBuilder().setId(nodeId).setCluster(PolicyDelivery.FILTER_SERVICE_CLUSTER).build();
        NettyChannelBuilder channel = NettyChannelBuilder.forAddress(server.getHostString(), server.getPort());
        if (tls == null) {
            channel.usePlaintext();
        } else {
            // this service's own certificate as client identity; the xDS server's must chain to the mesh CA and
            // name the host dialled (gRPC's hostname check)
            channel.sslContext(GrpcSslContexts.configure(SslContextBuilder.forClient(), SslProvider.JDK)
                    .keyManager(tls.keyManager()).trustManager(tls.trustManager()).build());
        }
        this.channel = channel.build();
        this.executor = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "xds-policy");
            t.setDaemon(true);
            return t;
        });
    }

    /** Opens a plaintext ADS stream to {@code server}; see {@link #awaitFirst}. */
    public static XdsPolicySource start(InetSocketAddress server, String nodeId) {
        try {
            return start(server, nodeId, null);
        } catch (SSLException e) {
            throw new IllegalStateException("no TLS context is built without TLS", e);
        }
    }

    /**
     * Opens the ADS stream to {@code server}, over mutual TLS with {@code tls} (null: plaintext); see
     * {@link #awaitFirst}.
     */
    public static XdsPolicySource start(InetSocketAddress server, String nodeId, TlsMaterial tls) throws SSLException {
        XdsPolicySource source = new XdsPolicySource(server, nodeId, tls);
        source.executor.execute(source::open);
        return source;
    }

    /**
     * The first valid policy the xDS server sends.
     *
     * @throws ConfigException when none arrives within {@code timeout}: the service must not start without one
     */
    public Policies awaitFirst(Duration timeout) throws ConfigException, InterruptedException {
        try {
            return first.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            String problem = startProblem;
            throw new ConfigException(server + ": no valid policy from the xDS server within " + timeout.toSeconds()
                    + " s; not serving without one" + (problem == null ? "" : " (last problem: " + problem + ")"));
        } catch (ExecutionException e) {
            throw new IllegalStateException(e.getCause());
        }
    }

    /**
     * From now on each new version goes to the consumers (on this source's thread).
     *
     * @param inForce what the service was built with, the result of {@link #awaitFirst}
     * @param applyPolicy an IllegalArgumentException refuses the version (NACK)
     */
    public void attach(Policies inForce, Consumer<EncryptionPolicy> applyPolicy, Consumer<HttpRules> applyHttp) {
        applier = new PolicyApplier(inForce, applyPolicy, applyHttp, reloads);
        attached.countDown();
    }

    /** The policy and HTTP rules in force, null before the first. */
    public Policies current() {
        PolicyApplier a = applier;
        return a != null ? a.current() : first.getNow(null);
    }

    /** Why the last version was rejected, or null when it is in force. */
    public PolicyReloads reloads() {
        return reloads;
    }

    public String lastError() {
        PolicyApplier a = applier;
        return a == null ? null : a.lastError();
    }

    private void open() {
        if (closed) {
            return;
        }
        StreamObserver<DiscoveryRequest> stream = AggregatedDiscoveryServiceGrpc.newStub(channel)
                .streamAggregatedResources(new StreamObserver<>() {
                    @Override
                    public void onNext(DiscoveryResponse response) {
                        post(() -> received(response));
                    }

                    @Override
                    public void onError(Throwable error) {
                        post(() -> broken(String.valueOf(error.getMessage())));
                    }

                    @Override
                    public void onCompleted() {
                        post(() -> broken("the server closed the stream"));
                    }
                });
        requests = stream;
        // like Envoy, a new stream says which version it holds: the server answers only when it has another
        send(acceptedVersion, "", null);
    }

    /** From gRPC's threads onto this source's; after {@link #close} there is nothing left to do. */
    private void post(Runnable task) {
        try {
            executor.execute(() -> {
                try {
                    task.run();
                } catch (RuntimeException e) {
                    // the scheduled executor would keep it to itself: no version may fail without a word
                    log.error("{}: handling the policy stream failed", server, e);
                }
            });
        } catch (RejectedExecutionException e) {
            // closed
        }
    }

    private void broken(String why) {
        requests = null;
        if (closed) {
            return;
        }
        log.warn("{}: policy stream lost ({}); reconnecting in {} ms, {}", server, why, backoff.toMillis(),
                first.isDone() ? "the policy in force stays" : "not serving until a policy arrives");
        executor.schedule(this::open, backoff.toMillis(), TimeUnit.MILLISECONDS);
        backoff = backoff.multipliedBy(2).compareTo(MAX_BACKOFF) > 0 ? MAX_BACKOFF : backoff.multipliedBy(2);
    }

    private void received(DiscoveryResponse response) {
        backoff = MIN_BACKOFF;
        if (!response.getTypeUrl().equals(TYPE_URL)) {
            return;
        }
        String version = response.getVersionInfo();
        Policies next;
        try {
            next = PolicyDelivery.decode(text(response));
        } catch (ConfigException e) {
            reject(response, e.getMessage());
            return;
        }
        if (!first.isDone()) {
            accept(response);
            log.info("{}: policy version {} received: {}", server, version, next.encryption());
            reloads.inForce(version, System.currentTimeMillis());
            first.complete(next);
            return;
        }
        try {
            attached.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
        }
        if (closed) {
            return;
        }
        String refused = applier.apply(next);
        if (refused == null) {
            reloads.inForce(version, System.currentTimeMillis());
            accept(response);
        } else {
            nack(response, refused);
        }
    }

    private static String text(DiscoveryResponse response) throws ConfigException {
        for (Any any : response.getResourcesList()) {
            Secret secret;
            try {
                secret = any.unpack(Secret.class);
            } catch (InvalidProtocolBufferException e) {
                throw new ConfigException(PolicyDelivery.RESOURCE_NAME + ": not a Secret resource: " + e.getMessage(), e);
            }
            if (secret.getName().equals(PolicyDelivery.RESOURCE_NAME)) {
                return secret.getGenericSecret().getSecret().getInlineString();
            }
        }
        throw new ConfigException(PolicyDelivery.RESOURCE_NAME + ": the response does not hold the resource");
    }

    private void accept(DiscoveryResponse response) {
        acceptedVersion = response.getVersionInfo();
        send(acceptedVersion, response.getNonce(), null);
    }

    /** Invalid: logged like an invalid policy file, and sent back as the NACK's reason. */
    private void reject(DiscoveryResponse response, String error) {
        PolicyApplier a = applier;
        if (a != null) {
            a.refuse(error);
        } else {
            startProblem = error;
            log.error("{}: policy version {} rejected, not serving until a valid one arrives: {}", server,
                    response.getVersionInfo(), error);
        }
        nack(response, error);
    }

    private void nack(DiscoveryResponse response, String error) {
        send(acceptedVersion, response.getNonce(), Status.newBuilder().setCode(Code.INVALID_ARGUMENT_VALUE).setMessage(error).build());
    }

    private void send(String version, String nonce, Status error) {
        StreamObserver<DiscoveryRequest> stream = requests;
        if (stream == null) {
            return;
        }
        DiscoveryRequest.Builder request = DiscoveryRequest.newBuilder()
                .setNode(node)
                .setTypeUrl(TYPE_URL)
                .addResourceNames(PolicyDelivery.RESOURCE_NAME)
                .setVersionInfo(version)
                .setResponseNonce(nonce);
        if (error != null) {
            request.setErrorDetail(error);
        }
        stream.onNext(request.build());
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        attached.countDown();
        executor.execute(() -> {
            StreamObserver<DiscoveryRequest> stream = requests;
            if (stream != null) {
                stream.onCompleted();
            }
        });
        executor.shutdown();
        channel.shutdownNow();
    }
}
