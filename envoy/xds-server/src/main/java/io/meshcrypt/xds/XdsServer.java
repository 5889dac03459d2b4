package io.meshcrypt.xds;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.envoyproxy.controlplane.cache.Resources.ResourceType;
import io.envoyproxy.controlplane.cache.v3.SimpleCache;
import io.envoyproxy.controlplane.cache.v3.Snapshot;
import io.envoyproxy.controlplane.server.DiscoveryServerCallbacks;
import io.envoyproxy.controlplane.server.V3DiscoveryServer;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.grpc.Server;
import io.grpc.netty.NettyServerBuilder;
import io.meshcrypt.meshconfig.ConfigException;
import io.meshcrypt.meshconfig.FileWatcher;
import io.meshcrypt.meshconfig.mesh.Mesh;
import io.meshcrypt.meshconfig.mesh.Mesh.Sidecar;
import io.meshcrypt.meshconfig.mesh.MeshReader;
import io.meshcrypt.xds.EnvoyResources.Resources;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The xDS control plane: serves one snapshot per sidecar (keyed by Envoy node id) over ADS, state of the world and
 * delta, rebuilt from the mesh file whenever it changes. An invalid mesh file is logged and never reaches an Envoy.
 * A NACK is logged with Envoy's error detail, counted, and the node is put back on the last snapshot it fully
 * acknowledged (without that, the cache would answer the NACK with the rejected version again, in a tight loop).
 * {@code GET /status} (JSON) and {@code GET /metrics} (Prometheus text) report connected Envoys, versions and NACKs.
 */
public final class XdsServer implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(XdsServer.class);
    static final Duration MESH_POLL = Duration.ofMillis(100);
    private static final Resources EMPTY = new Resources(List.of(), List.of());
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private final Path meshFile;
    private final EnvoyResources resources;
    private final SimpleCache<String> cache = new SimpleCache<>(PolicyResources::group);
    /**
     * Serializes snapshot changes (mesh reloads, NACK rollbacks). Node state locks are only taken inside it, briefly,
     * and never while calling the cache: the cache answers watches under its own lock and calls back into us.
     */
    private final ReentrantLock snapshotLock = new ReentrantLock();
    private final Map<String, NodeState> nodes = new ConcurrentHashMap<>();
    private final Map<Long, StreamState> streams = new ConcurrentHashMap<>();
    private final Instant started = Instant.now();
    private final AtomicLong rollbacks = new AtomicLong();
    private long generation;
    private volatile String version;
    private volatile Instant versionSince;
    private volatile String lastMeshError;
    private volatile long meshRejections;
    private Server grpc;
    private HttpServer http;
    private FileWatcher watcher;

    private XdsServer(Path meshFile, EnvoyResources resources) {
        this.meshFile = meshFile;
        this.resources = resources;
    }

    /** Loads the mesh file (an invalid one fails the start), then serves ADS on {@code xds} and status on {@code status}. */
    public static XdsServer start(Path meshFile, InetSocketAddress xds, InetSocketAddress status) throws ConfigException, IOException {
        XdsServer server = new XdsServer(meshFile, EnvoyResources.standard());
        byte[] content;
        try {
            content = Files.readAllBytes(meshFile);
        } catch (IOException e) {
            throw new ConfigException(meshFile + ": cannot read mesh file: " + e, e);
        }
        server.apply(MeshReader.parse(meshFile, content), content);
        try {
            server.serve(xds, status);
            server.watcher = FileWatcher.start(meshFile, content, MESH_POLL, server::meshChanged);
        } catch (IOException | RuntimeException e) {
            server.close();
            throw e;
        }
        return server;
    }

    private void serve(InetSocketAddress xds, InetSocketAddress status) throws IOException {
        V3DiscoveryServer discovery = new V3DiscoveryServer(new Callbacks(), cache);
        grpc = NettyServerBuilder.forAddress(xds)
                .addService(discovery.getAggregatedDiscoveryServiceImpl())
                // Envoy keeps one ADS stream open for its whole life; ping it so a dead peer is noticed
                .keepAliveTime(30, TimeUnit.SECONDS)
                .permitKeepAliveTime(10, TimeUnit.SECONDS)
                .build()
                .start();
        http = HttpServer.create(status, 16);
        http.createContext("/status", exchange -> respond(exchange, "application/json", JSON.writeValueAsString(status()) + "\n"));
        http.createContext("/metrics", exchange -> respond(exchange, "text/plain; version=0.0.4", metrics()));
        http.setExecutor(Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "xds-status");
            t.setDaemon(true);
            return t;
        }));
        http.start();
        log.info("xDS server: ADS on {}:{}, status on http://{}:{}/status, mesh file {} (version {})",
                xdsAddress().getHostString(), xdsAddress().getPort(), statusAddress().getHostString(),
                statusAddress().getPort(), meshFile, version);
    }

    public InetSocketAddress xdsAddress() {
        return (InetSocketAddress) grpc.getListenSockets().get(0);
    }

    public InetSocketAddress statusAddress() {
        return http.getAddress();
    }

    /** The version of the snapshots built from the current mesh file. */
    public String version() {
        return version;
    }

    private void meshChanged(byte[] content) {
        Mesh mesh;
        try {
            mesh = MeshReader.parse(meshFile, content);
        } catch (ConfigException e) {
            lastMeshError = e.getMessage();
            meshRejections++;
            log.error("mesh file rejected, nothing pushed; Envoys keep version {}: {}", version, e.getMessage());
            return;
        }
        lastMeshError = null;
        apply(mesh, content);
    }

    private void apply(Mesh mesh, byte[] content) {
        snapshotLock.lock();
        try {
            // generation orders the versions of this process; the content hash keeps a restarted server's first
            // version from colliding with an older one of different content that an Envoy still holds
            generation++;
            String next = generation + "-" + sha256(content).substring(0, 8);
            Map<String, Resources> updates = new LinkedHashMap<>();
            for (Sidecar sidecar : mesh.sidecars().values()) {
                updates.put(sidecar.nodeId(), resources.forSidecar(mesh, sidecar, next));
            }
            // a sidecar removed from the file loses its configuration, as declared
            for (NodeState node : nodes.values()) {
                if (!mesh.sidecars().containsKey(node.id) && node.current != null) {
                    updates.put(node.id, EMPTY);
                }
            }
            version = next;
            versionSince = Instant.now();
            for (Map.Entry<String, Resources> u : updates.entrySet()) {
                NodeState node = node(u.getKey());
                Snapshot snapshot = snapshot(u.getValue(), next);
                synchronized (node) {
                    node.inMesh = mesh.sidecars().containsKey(u.getKey());
                    node.current = snapshot;
                    node.currentResources = u.getValue();
                }
                cache.setSnapshot(u.getKey(), snapshot);
            }
            cache.setSnapshot(PolicyResources.FILTER_SERVICES, PolicyResources.snapshot(mesh, next));
            log.info("mesh version {}: {} sidecar(s), {}", next, mesh.sidecars().size(), mesh.policy());
        } finally {
            snapshotLock.unlock();
        }
    }

    private static Snapshot snapshot(Resources r, String version) {
        return Snapshot.create(r.clusters(), List.of(), r.listeners(), List.of(), List.of(), version);
    }

    private NodeState node(String id) {
        return nodes.computeIfAbsent(id, NodeState::new);
    }

    // ---- ACK / NACK tracking

    private static final class NodeState {
        final String id;
        boolean inMesh;
        Snapshot current;
        Resources currentResources;
        /** The resources of the latest version this node acknowledged, and of the one before: NACK rollback targets. */
        Resources lastGood;
        String lastGoodVersion;
        Resources previousGood;
        final Set<Long> streams = new HashSet<>();
        String mode;
        final Map<String, String> acked = new TreeMap<>();
        long nacks;
        Nack lastNack;

        NodeState(String id) {
            this.id = id;
        }
    }

    private record Nack(String type, String version, String detail, Instant at) {
    }

    private static final class StreamState {
        volatile String nodeId;
        final Map<String, String> versionByNonce = new ConcurrentHashMap<>();
    }

    private final class Callbacks implements DiscoveryServerCallbacks {

        @Override
        public void onV3StreamRequest(long streamId, DiscoveryRequest request) {
            StreamState stream = stream(streamId, request.hasNode() ? request.getNode() : null, "sotw");
            if (stream.nodeId == null || request.getResponseNonce().isEmpty()) {
                return;
            }
            String sent = stream.versionByNonce.remove(request.getResponseNonce());
            if (request.hasErrorDetail()) {
                nack(stream.nodeId, request.getTypeUrl(), sent, request.getVersionInfo(), request.getErrorDetail().getMessage());
            } else {
                ack(stream.nodeId, request.getTypeUrl(), request.getVersionInfo());
            }
        }

        @Override
        public void onV3StreamDeltaRequest(long streamId, DeltaDiscoveryRequest request) {
            StreamState stream = stream(streamId, request.hasNode() ? request.getNode() : null, "delta");
            if (stream.nodeId == null || request.getResponseNonce().isEmpty()) {
                return;
            }
            // delta requests carry no version: the nonce says which response this one answers
            String sent = stream.versionByNonce.remove(request.getResponseNonce());
            if (request.hasErrorDetail()) {
                nack(stream.nodeId, request.getTypeUrl(), sent, null, request.getErrorDetail().getMessage());
            } else if (sent != null) {
                ack(stream.nodeId, request.getTypeUrl(), sent);
            }
        }

        @Override
        public void onV3StreamResponse(long streamId, DiscoveryRequest request, DiscoveryResponse response) {
            StreamState stream = streams.get(streamId);
            if (stream != null) {
                stream.versionByNonce.put(response.getNonce(), response.getVersionInfo());
            }
        }

        @Override
        public void onV3StreamDeltaResponse(long streamId, DeltaDiscoveryRequest request, DeltaDiscoveryResponse response) {
            StreamState stream = streams.get(streamId);
            if (stream != null) {
                stream.versionByNonce.put(response.getNonce(), response.getSystemVersionInfo());
            }
        }

        @Override
        public void onStreamClose(long streamId, String typeUrl) {
            closed(streamId);
        }

        @Override
        public void onStreamCloseWithError(long streamId, String typeUrl, Throwable error) {
            closed(streamId);
        }
    }

    private StreamState stream(long streamId, Node node, String mode) {
        StreamState stream = streams.computeIfAbsent(streamId, id -> new StreamState());
        if (stream.nodeId == null && node != null) {
            stream.nodeId = node.getId();
            NodeState state = node(node.getId());
            synchronized (state) {
                state.streams.add(streamId);
                state.mode = mode;
            }
            log.info("Envoy {} connected ({} xDS, stream {})", node.getId(), mode, streamId);
        }
        return stream;
    }

    private void closed(long streamId) {
        StreamState stream = streams.remove(streamId);
        if (stream != null && stream.nodeId != null) {
            NodeState state = node(stream.nodeId);
            synchronized (state) {
                state.streams.remove(streamId);
            }
            log.info("Envoy {} disconnected (stream {})", stream.nodeId, streamId);
        }
    }

    private void ack(String nodeId, String typeUrl, String acked) {
        NodeState node = node(nodeId);
        synchronized (node) {
            node.acked.put(shortType(typeUrl), acked);
            // Envoy may ACK one type of a version and NACK another (CDS before LDS): an ACK makes the version the
            // last good one, and a later NACK of that same version falls back to the one before
            if (node.current != null && acked.equals(versionOf(node.current)) && !acked.equals(node.lastGoodVersion)) {
                node.previousGood = node.lastGood;
                node.lastGood = node.currentResources;
                node.lastGoodVersion = acked;
            }
        }
    }

    /** @param held the version Envoy says it still runs (state of the world only), null when unknown */
    private void nack(String nodeId, String typeUrl, String rejected, String held, String detail) {
        NodeState node = node(nodeId);
        long count;
        synchronized (node) {
            count = ++node.nacks;
            node.lastNack = new Nack(shortType(typeUrl), rejected, detail, Instant.now());
        }
        log.error("Envoy {} rejected {} version {} (NACK #{}); it keeps its last accepted configuration: {}",
                nodeId, shortType(typeUrl), rejected, count, detail);
        snapshotLock.lock();
        try {
            Snapshot rollback;
            synchronized (node) {
                if (node.current == null || rejected == null || !rejected.equals(versionOf(node.current))) {
                    return; // a NACK of an older version: the current one is already on its way
                }
                Resources good = rejected.equals(node.lastGoodVersion) ? node.previousGood : node.lastGood;
                if (rejected.equals(node.lastGoodVersion)) {
                    node.lastGood = node.previousGood;
                    node.lastGoodVersion = null;
                    node.previousGood = null;
                }
                if (good != null) {
                    // Envoy applies the valid part of a rejected update (it adds the listeners that did bind), so the
                    // last good resources go out again under a new version, which takes that part back out. (With
                    // delta xDS it cannot: Envoy does not count that part as accepted, so neither does the cache,
                    // and no removal is sent for it. See docs/xds.md.)
                    rollback = snapshot(good, rejected + "~rollback" + rollbacks.incrementAndGet());
                    node.currentResources = good;
                } else if (held != null) {
                    // nothing acknowledged since this server started (e.g. it restarted): Envoy's own config is the
                    // last good one. Labelling the snapshot with the version Envoy holds parks the watch instead of
                    // resending the rejected update in a loop.
                    rollback = snapshot(node.currentResources, held);
                } else {
                    return;
                }
                node.current = rollback;
            }
            log.warn("Envoy {}: serving its last good configuration again as version {} until the mesh file changes",
                    nodeId, versionOf(rollback));
            cache.setSnapshot(nodeId, rollback);
        } finally {
            snapshotLock.unlock();
        }
    }

    private static String versionOf(Snapshot snapshot) {
        return snapshot.version(ResourceType.LISTENER);
    }

    private static String shortType(String typeUrl) {
        return typeUrl.substring(typeUrl.lastIndexOf('.') + 1);
    }

    // ---- status

    /** What {@code GET /status} returns: the mesh version, the last mesh file error, and every Envoy seen. */
    public Map<String, Object> status() {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("meshFile", meshFile.toString());
        out.put("version", version);
        out.put("versionSince", versionSince.toString());
        out.put("lastMeshError", lastMeshError);
        out.put("meshRejections", meshRejections);
        List<Map<String, Object>> envoys = new ArrayList<>();
        for (NodeState node : new TreeMap<>(nodes).values()) {
            Map<String, Object> n = new LinkedHashMap<>();
            synchronized (node) {
                n.put("node", node.id);
                n.put("inMesh", node.inMesh);
                n.put("connected", !node.streams.isEmpty());
                n.put("mode", node.mode);
                n.put("serving", node.current == null ? null : versionOf(node.current));
                n.put("acked", new TreeMap<>(node.acked));
                n.put("nacks", node.nacks);
                if (node.lastNack != null) {
                    Map<String, Object> nack = new LinkedHashMap<>();
                    nack.put("type", node.lastNack.type());
                    nack.put("version", node.lastNack.version());
                    nack.put("detail", node.lastNack.detail());
                    nack.put("at", node.lastNack.at().toString());
                    n.put("lastNack", nack);
                }
            }
            envoys.add(n);
        }
        out.put("envoys", envoys);
        return out;
    }

    private String metrics() {
        StringBuilder m = new StringBuilder();
        m.append("# TYPE meshcrypt_xds_mesh_rejections_total counter\nmeshcrypt_xds_mesh_rejections_total ").append(meshRejections).append('\n');
        m.append("# TYPE meshcrypt_xds_uptime_seconds gauge\nmeshcrypt_xds_uptime_seconds ")
                .append(Duration.between(started, Instant.now()).toSeconds()).append('\n');
        StringBuilder nacks = new StringBuilder("# TYPE meshcrypt_xds_nacks_total counter\n");
        StringBuilder connected = new StringBuilder("# TYPE meshcrypt_xds_connected gauge\n");
        for (NodeState node : new TreeMap<>(nodes).values()) {
            synchronized (node) {
                String label = "{node=\"" + node.id.replace("\\", "\\\\").replace("\"", "\\\"") + "\"}";
                nacks.append("meshcrypt_xds_nacks_total").append(label).append(' ').append(node.nacks).append('\n');
                connected.append("meshcrypt_xds_connected").append(label).append(' ').append(node.streams.isEmpty() ? 0 : 1).append('\n');
            }
        }
        return m.append(nacks).append(connected).toString();
    }

    private static void respond(HttpExchange exchange, String type, String body) throws IOException {
        try (exchange) {
            if (!exchange.getRequestMethod().equals("GET")) {
                exchange.sendResponseHeaders(405, -1);
                return;
            }
            byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
            exchange.getResponseHeaders().set("Content-Type", type);
            exchange.sendResponseHeaders(200, bytes.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(bytes);
            }
        }
    }

    private static String sha256(byte[] content) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(content));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every JDK", e);
        }
    }

    @Override
    public void close() {
        if (watcher != null) {
            watcher.close();
        }
        if (http != null) {
            http.stop(0);
        }
        if (grpc != null) {
            grpc.shutdownNow();
            try {
                grpc.awaitTermination(5, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
