package io.meshcrypt.xds.snapshot;

import io.envoyproxy.controlplane.cache.v3.Snapshot;
import io.envoyproxy.envoy.config.core.v3.DataSource;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.GenericSecret;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.Secret;
import io.meshcrypt.meshconfig.mesh.Mesh;
import io.meshcrypt.meshconfig.mesh.Policies;
import io.meshcrypt.meshconfig.mesh.PolicyDelivery;
import java.util.List;

/**
 * The policy and HTTP rules of the mesh file as an xDS resource for filter-services ({@link PolicyDelivery}). The
 * v3 Snapshot of java-control-plane serves only clusters, endpoints, listeners, routes and secrets (no ECDS
 * TypedExtensionConfig), so the text travels as an SDS generic secret named {@value PolicyDelivery#RESOURCE_NAME}:
 * an opaque, versioned blob the filter-services subscribe to by name. All filter-services share one cache group.
 */
public final class PolicyResources {

    /** The cache group of every filter-service; Envoy sidecars each have their own, their node id. */
    public static final String FILTER_SERVICES = "meshcrypt.filter-services";

    private PolicyResources() {
    }

    /** The snapshot cache's node grouping: filter-services by their node cluster, Envoys by node id. */
    public static String group(Node node) {
        return PolicyDelivery.FILTER_SERVICE_CLUSTER.equals(node.getCluster()) ? FILTER_SERVICES : node.getId();
    }

    public static Secret resource(Mesh mesh) {
        String text = PolicyDelivery.encode(new Policies(mesh.policy(), mesh.http()));
        return Secret.newBuilder()
                .setName(PolicyDelivery.RESOURCE_NAME)
                .setGenericSecret(GenericSecret.newBuilder().setSecret(DataSource.newBuilder().setInlineString(text)))
                .build();
    }

    /** What the filter-services' group is served: the policy resource alone, at the mesh version. */
    public static Snapshot snapshot(Mesh mesh, String version) {
        return Snapshot.create(List.of(), List.of(), List.of(), List.of(), List.of(resource(mesh)), version);
    }
}
