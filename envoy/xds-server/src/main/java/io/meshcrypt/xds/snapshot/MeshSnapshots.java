package io.meshcrypt.xds.snapshot;

import io.envoyproxy.controlplane.cache.Resources.ResourceType;
import io.envoyproxy.controlplane.cache.v3.Snapshot;
import io.meshcrypt.meshconfig.mesh.Mesh;
import io.meshcrypt.meshconfig.mesh.Mesh.Sidecar;
import io.meshcrypt.xds.snapshot.EnvoyResources.Resources;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Turns each accepted mesh file into a versioned set of resources, one per sidecar (keyed by Envoy node id). Versions
 * are {@code <generation>-<first 8 hex of the file's SHA-256>}: the generation orders the versions of this process;
 * the content hash keeps a restarted server's first version from colliding with an older one of different content
 * that an Envoy still holds.
 */
public final class MeshSnapshots {

    /** What a node that is no longer in the mesh file is served: nothing. */
    public static final Resources EMPTY = new Resources(List.of(), List.of());

    /** @param version the mesh version; @param sidecars each sidecar's resources by node id, in file order */
    public record MeshVersion(String version, Mesh mesh, Map<String, Resources> sidecars) {
    }

    private final EnvoyResources resources;
    private long generation;

    public MeshSnapshots(EnvoyResources resources) {
        this.resources = resources;
    }

    /** The next version, built from {@code mesh}, which was parsed from {@code content}. */
    public synchronized MeshVersion next(Mesh mesh, byte[] content) {
        generation++;
        String version = generation + "-" + sha256(content).substring(0, 8);
        Map<String, Resources> sidecars = new LinkedHashMap<>();
        for (Sidecar sidecar : mesh.sidecars().values()) {
            sidecars.put(sidecar.nodeId(), resources.forSidecar(mesh, sidecar, version));
        }
        return new MeshVersion(version, mesh, sidecars);
    }

    /** The snapshot of one node: clusters, listeners and their SDS secrets (nothing else), all labelled {@code version}. */
    public static Snapshot snapshot(Resources r, String version) {
        return Snapshot.create(r.clusters(), List.of(), r.listeners(), List.of(), r.secrets(), version);
    }

    public static String versionOf(Snapshot snapshot) {
        return snapshot.version(ResourceType.LISTENER);
    }

    private static String sha256(byte[] content) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(content));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every JDK", e);
        }
    }
}
