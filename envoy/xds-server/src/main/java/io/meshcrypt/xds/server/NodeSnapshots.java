package io.meshcrypt.xds.server;

import io.envoyproxy.controlplane.cache.v3.SimpleCache;
import io.envoyproxy.controlplane.cache.v3.Snapshot;
import io.meshcrypt.xds.snapshot.EnvoyResources.Resources;
import io.meshcrypt.xds.snapshot.MeshSnapshots;
import io.meshcrypt.xds.snapshot.MeshSnapshots.MeshVersion;
import io.meshcrypt.xds.snapshot.PolicyResources;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Function;

/**
 * The snapshot cache ADS serves from, and the state of every node seen (Envoys and filter-services). Snapshot changes (mesh versions, NACK
 * rollbacks) are serialized by one lock. A node's own lock is only taken inside it, briefly, and never while calling
 * the cache: the cache answers watches under its own lock and calls back into {@link NackRollbackCallback}.
 */
public final class NodeSnapshots {

    private final SimpleCache<String> cache = new SimpleCache<>(PolicyResources::group);
    private final ReentrantLock snapshotLock = new ReentrantLock();
    private final Map<String, NodeState> nodes = new ConcurrentHashMap<>();
    private final MeterRegistry meters;
    /** The generation (the number before the dash of a version) of the mesh version last published; 0 before. */
    private volatile long meshGeneration;

    /**
     * @param meters gets {@code meshcrypt.xds.mesh_generation}, and {@code meshcrypt.xds.nacks},
     *     {@code meshcrypt.xds.connected} and {@code meshcrypt.xds.acked_generation} for every node seen
     */
    public NodeSnapshots(MeterRegistry meters) {
        this.meters = meters;
        Gauge.builder("meshcrypt.xds.mesh_generation", this, n -> n.meshGeneration)
                .description("the generation of the mesh version the xDS server serves (it counts up with each accepted"
                        + " change of the mesh file)")
                .register(meters);
    }

    /** The generation of a version {@code <generation>-<hash>}, or -1 for none or another shape. */
    static long generation(String version) {
        if (version == null) {
            return -1;
        }
        int dash = version.indexOf('-');
        try {
            return Long.parseLong(dash < 0 ? version : version.substring(0, dash));
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    SimpleCache<String> cache() {
        return cache;
    }

    /** Every sidecar of {@code mesh} gets its snapshot; a node removed from the file loses its configuration, as declared. */
    public void publish(MeshVersion mesh) {
        snapshotLock.lock();
        try {
            Map<String, Resources> updates = new LinkedHashMap<>(mesh.sidecars());
            for (NodeState node : nodes.values()) {
                if (!mesh.sidecars().containsKey(node.id) && node.current != null) {
                    updates.put(node.id, MeshSnapshots.EMPTY);
                }
            }
            for (Map.Entry<String, Resources> u : updates.entrySet()) {
                NodeState node = node(u.getKey());
                Snapshot snapshot = MeshSnapshots.snapshot(u.getValue(), mesh.version());
                synchronized (node) {
                    node.inMesh = mesh.sidecars().containsKey(u.getKey());
                    node.current = snapshot;
                    node.currentResources = u.getValue();
                }
                cache.setSnapshot(u.getKey(), snapshot);
            }
            // every filter-service gets the policy and HTTP rules of the same mesh version
            cache.setSnapshot(PolicyResources.FILTER_SERVICES, PolicyResources.snapshot(mesh.mesh(), mesh.version()));
            meshGeneration = generation(mesh.version());
        } finally {
            snapshotLock.unlock();
        }
    }

    /**
     * Replaces one node's snapshot, serialized with {@link #publish}. {@code change} runs holding the node's lock and
     * returns the node's new snapshot, or null to leave it as it is.
     */
    void replace(String nodeId, Function<NodeState, Snapshot> change) {
        snapshotLock.lock();
        try {
            NodeState node = node(nodeId);
            Snapshot next;
            synchronized (node) {
                next = change.apply(node);
                if (next != null) {
                    node.current = next;
                }
            }
            if (next != null) {
                cache.setSnapshot(nodeId, next);
            }
        } finally {
            snapshotLock.unlock();
        }
    }

    NodeState node(String id) {
        return nodes.computeIfAbsent(id, this::register);
    }

    private NodeState register(String id) {
        NodeState node = new NodeState(id);
        FunctionCounter.builder("meshcrypt.xds.nacks", node, NodeState::nacks)
                .description("updates the node (an Envoy or a filter-service) rejected")
                .tag("node", id)
                .register(meters);
        Gauge.builder("meshcrypt.xds.acked_generation", node, NodeSnapshots::oldestAckedGeneration)
                .description("the oldest mesh generation among the resource types the node (an Envoy or a"
                        + " filter-service) acknowledged last; equal to meshcrypt_xds_mesh_generation when it is in sync,"
                        + " -1 before its first ACK")
                .tag("node", id)
                .strongReference(true)
                .register(meters);
        Gauge.builder("meshcrypt.xds.connected", node, n -> n.connected() ? 1 : 0)
                .description("1 while the node (an Envoy or a filter-service) has an ADS stream open")
                .tag("node", id)
                .strongReference(true)
                .register(meters);
        return node;
    }

    private static double oldestAckedGeneration(NodeState node) {
        synchronized (node) {
            return node.acked.values().stream().mapToLong(NodeSnapshots::generation).min().orElse(-1);
        }
    }

    /** Every Envoy seen, by node id: the {@code envoys} of {@code GET /status}. */
    public List<Map<String, Object>> envoyStatus() {
        return status(NodeState.Kind.ENVOY);
    }

    /**
     * Every filter-service seen, by node id: the {@code filterServices} of {@code GET /status}. They are no sidecars
     * of the mesh file (no {@code inMesh}); all are served the one policy snapshot.
     */
    public List<Map<String, Object>> filterServiceStatus() {
        return status(NodeState.Kind.FILTER_SERVICE);
    }

    private List<Map<String, Object>> status(NodeState.Kind kind) {
        Snapshot policy = cache.getSnapshot(PolicyResources.FILTER_SERVICES);
        List<Map<String, Object>> out = new ArrayList<>();
        for (NodeState node : new TreeMap<>(nodes).values()) {
            if (node.kind != kind) {
                continue;
            }
            Map<String, Object> n = new LinkedHashMap<>();
            synchronized (node) {
                n.put("node", node.id);
                if (kind == NodeState.Kind.ENVOY) {
                    n.put("inMesh", node.inMesh);
                }
                n.put("connected", !node.streams.isEmpty());
                n.put("mode", node.mode);
                Snapshot serving = kind == NodeState.Kind.ENVOY ? node.current : policy;
                n.put("serving", serving == null ? null : MeshSnapshots.versionOf(serving));
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
            out.add(n);
        }
        return out;
    }
}
