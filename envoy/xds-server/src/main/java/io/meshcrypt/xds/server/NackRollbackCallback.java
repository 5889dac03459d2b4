package io.meshcrypt.xds.server;

import io.envoyproxy.controlplane.cache.v3.Snapshot;
import io.envoyproxy.controlplane.server.DiscoveryServerCallbacks;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.meshcrypt.xds.snapshot.EnvoyResources.Resources;
import io.meshcrypt.xds.snapshot.MeshSnapshots;
import java.time.Instant;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Follows every ADS stream (state of the world and delta) to learn which version each response carried, and so what
 * a node's next request acknowledges or rejects. A NACK is logged with the node's error detail, counted, and the node
 * is put back on the last snapshot it fully acknowledged: without that, the cache would answer the NACK with the
 * rejected version again, in a tight loop.
 */
final class NackRollbackCallback implements DiscoveryServerCallbacks {

    private static final Logger log = LoggerFactory.getLogger(NackRollbackCallback.class);

    private static final class StreamState {
        volatile String nodeId;
        final Map<String, String> versionByNonce = new ConcurrentHashMap<>();
    }

    private final NodeSnapshots nodes;
    private final Map<Long, StreamState> streams = new ConcurrentHashMap<>();
    private final AtomicLong rollbacks = new AtomicLong();

    NackRollbackCallback(NodeSnapshots nodes) {
        this.nodes = nodes;
    }

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

    private StreamState stream(long streamId, Node node, String mode) {
        StreamState stream = streams.computeIfAbsent(streamId, id -> new StreamState());
        if (stream.nodeId == null && node != null) {
            stream.nodeId = node.getId();
            NodeState state = nodes.node(node.getId());
            synchronized (state) {
                state.kind = NodeState.Kind.of(node);
                state.streams.add(streamId);
                state.mode = mode;
            }
            log.info("{} connected ({} xDS, stream {})", state, mode, streamId);
        }
        return stream;
    }

    private void closed(long streamId) {
        StreamState stream = streams.remove(streamId);
        if (stream != null && stream.nodeId != null) {
            NodeState state = nodes.node(stream.nodeId);
            synchronized (state) {
                state.streams.remove(streamId);
            }
            log.info("{} disconnected (stream {})", state, streamId);
        }
    }

    private void ack(String nodeId, String typeUrl, String acked) {
        NodeState node = nodes.node(nodeId);
        synchronized (node) {
            node.acked.put(shortType(typeUrl), acked);
            // Envoy may ACK one type of a version and NACK another (CDS before LDS): an ACK makes the version the
            // last good one, and a later NACK of that same version falls back to the one before
            if (node.current != null && acked.equals(MeshSnapshots.versionOf(node.current)) && !acked.equals(node.lastGoodVersion)) {
                node.previousGood = node.lastGood;
                node.lastGood = node.currentResources;
                node.lastGoodVersion = acked;
            }
        }
    }

    /** @param held the version Envoy says it still runs (state of the world only), null when unknown */
    private void nack(String nodeId, String typeUrl, String rejected, String held, String detail) {
        NodeState node = nodes.node(nodeId);
        long count;
        synchronized (node) {
            count = ++node.nacks;
            node.lastNack = new NodeState.Nack(shortType(typeUrl), rejected, detail, Instant.now());
        }
        log.error("{} rejected {} version {} (NACK #{}); it keeps its last accepted configuration: {}",
                node, shortType(typeUrl), rejected, count, detail);
        nodes.replace(nodeId, n -> {
            Snapshot rollback = rollback(n, rejected, held);
            if (rollback != null) {
                log.warn("{}: serving its last good configuration again as version {} until the mesh file changes",
                        n, MeshSnapshots.versionOf(rollback));
            }
            return rollback;
        });
    }

    /** The snapshot that takes {@code node} back to its last good configuration, or null when none applies. */
    private Snapshot rollback(NodeState node, String rejected, String held) {
        if (node.current == null || rejected == null || !rejected.equals(MeshSnapshots.versionOf(node.current))) {
            return null; // a NACK of an older version: the current one is already on its way
        }
        Resources good = rejected.equals(node.lastGoodVersion) ? node.previousGood : node.lastGood;
        if (rejected.equals(node.lastGoodVersion)) {
            node.lastGood = node.previousGood;
            node.lastGoodVersion = null;
            node.previousGood = null;
        }
        if (good != null) {
            // Envoy applies the valid part of a rejected update (it adds the listeners that did bind), so the last
            // good resources go out again under a new version, which takes that part back out. (With delta xDS it
            // cannot: Envoy does not count that part as accepted, so neither does the cache, and no removal is sent
            // for it. See docs/xds.md.)
            node.currentResources = good;
            return MeshSnapshots.snapshot(good, rejected + "~rollback" + rollbacks.incrementAndGet());
        }
        if (held != null) {
            // nothing acknowledged since this server started (e.g. it restarted): Envoy's own config is the last good
            // one. Labelling the snapshot with the version Envoy holds parks the watch instead of resending the
            // rejected update in a loop.
            return MeshSnapshots.snapshot(node.currentResources, held);
        }
        return null;
    }

    private static String shortType(String typeUrl) {
        return typeUrl.substring(typeUrl.lastIndexOf('.') + 1);
    }
}
