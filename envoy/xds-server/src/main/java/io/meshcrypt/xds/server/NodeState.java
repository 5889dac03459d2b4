package io.meshcrypt.xds.server;

import io.envoyproxy.controlplane.cache.v3.Snapshot;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.meshcrypt.xds.snapshot.EnvoyResources.Resources;
import io.meshcrypt.xds.snapshot.PolicyResources;
import java.time.Instant;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * One ADS client node as the server sees it: what it is served, what it acknowledged and rejected. Guarded by itself.
 */
final class NodeState {

    /** What an ADS client is: an Envoy sidecar, served its listeners and clusters, or a filter-service, served the policy. */
    enum Kind {
        ENVOY("Envoy"),
        FILTER_SERVICE("filter-service");

        /** How logs name it, before its node id. */
        final String label;

        Kind(String label) {
            this.label = label;
        }

        /** As the snapshot cache groups it: filter-services share the policy group, every Envoy has its own. */
        static Kind of(Node node) {
            return PolicyResources.FILTER_SERVICES.equals(PolicyResources.group(node)) ? FILTER_SERVICE : ENVOY;
        }
    }

    record Nack(String type, String version, String detail, Instant at) {
    }

    final String id;
    /** A node the mesh file names before it connects is a sidecar's Envoy; its first request says for sure. */
    volatile Kind kind = Kind.ENVOY;
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

    /** The node as logs name it, e.g. {@code Envoy app-a}. */
    @Override
    public String toString() {
        return kind.label + " " + id;
    }

    synchronized long nacks() {
        return nacks;
    }

    synchronized boolean connected() {
        return !streams.isEmpty();
    }
}
