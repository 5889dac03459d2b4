package io.meshcrypt.xds.server;

import io.envoyproxy.controlplane.cache.v3.Snapshot;
import io.meshcrypt.xds.snapshot.EnvoyResources.Resources;
import java.time.Instant;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/** One Envoy node as the server sees it: what it is served, what it acknowledged and rejected. Guarded by itself. */
final class NodeState {

    record Nack(String type, String version, String detail, Instant at) {
    }

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

    synchronized long nacks() {
        return nacks;
    }

    synchronized boolean connected() {
        return !streams.isEmpty();
    }
}
