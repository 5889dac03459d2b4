package io.meshcrypt.meshconfig.mesh;

import io.meshcrypt.meshconfig.yaml.ConfigException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * The contract by which the xDS server delivers the policy in force to filter-services: over the same ADS stream
 * Envoys use, a resource named {@value #RESOURCE_NAME} whose text is the {@code policy:} and {@code http:} sections
 * of the mesh file, written canonically; a filter-service subscribes with the node cluster
 * {@value #FILTER_SERVICE_CLUSTER} and reads the text with the same reader the xDS server validated it with.
 * A filter.yaml selects this with {@code policyFrom: xds://host:port}.
 */
public final class PolicyDelivery {

    public static final String RESOURCE_NAME = "meshcrypt.policy";
    /** The node cluster that marks an ADS client as a filter-service (Envoy sidecars are told apart by node id). */
    public static final String FILTER_SERVICE_CLUSTER = "meshcrypt-filter-service";
    /** How filter.yaml's {@code policyFrom} names an xDS server rather than a file. */
    public static final String SCHEME = "xds://";

    private PolicyDelivery() {
    }

    public static String encode(Policies policies) {
        return MeshWriter.writePolicies(policies);
    }

    /** @throws ConfigException naming {@value #RESOURCE_NAME}, line, column and field, as for a file */
    public static Policies decode(String text) throws ConfigException {
        return Policies.parse(Path.of(RESOURCE_NAME), text.getBytes(StandardCharsets.UTF_8));
    }
}
