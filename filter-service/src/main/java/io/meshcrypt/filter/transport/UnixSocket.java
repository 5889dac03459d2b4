package io.meshcrypt.filter.transport;

import io.meshcrypt.meshconfig.mesh.Mesh;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Objects;
import java.util.Set;

/**
 * One entry of {@code unixSockets:}: the gRPC services of {@code listen} also served, without TLS, on a Unix domain
 * socket. Who may connect is who may open the socket file (its {@code mode} and the folders above it); every stream
 * accepted on it carries {@code identity}, as a verified certificate's SPIFFE id does on {@code listen}.
 *
 * <pre>
 * unixSockets:
 *   - path: run/orders.sock                                   # relative paths: relative to filter.yaml
 *     identity: spiffe://meshcrypt.local/ns/default/sa/orders  # optional; absent: streams have no identity
 *     mode: "0600"                                            # optional, default "0600"; o+w refused
 * </pre>
 *
 * @param path absolute path of the socket file; the filter-service creates it, replaces a stale socket there, refuses
 *     anything else there, and removes it on close
 * @param identity the SPIFFE id every stream on this socket carries, or null for none
 * @param mode the socket file's permission bits, set before the socket serves
 */
public record UnixSocket(Path path, String identity, Set<PosixFilePermission> mode) {

    /** Default {@code mode}: only the filter-service's own user may connect. */
    public static final String DEFAULT_MODE = "0600";
    /** {@code sun_path}'s limit, owned by the mesh file's sockets: one figure for both ends of the hop. */
    public static final int MAX_PATH_BYTES = Mesh.UnixSocket.MAX_PATH_BYTES;

    public UnixSocket {
        Objects.requireNonNull(path, "path");
        if (!path.isAbsolute()) {
            throw new IllegalArgumentException("path must be absolute: " + path);
        }
        if (pathBytes(path) > MAX_PATH_BYTES) {
            throw new IllegalArgumentException("path longer than " + MAX_PATH_BYTES + " bytes: " + path);
        }
        mode = Set.copyOf(mode);
        if (mode.contains(PosixFilePermission.OTHERS_WRITE)) {
            throw new IllegalArgumentException("mode must not be world-writable: " + PosixFilePermissions.toString(mode));
        }
    }

    /** Length of {@code path} as the kernel sees it. */
    public static int pathBytes(Path path) {
        return path.toString().getBytes(StandardCharsets.UTF_8).length;
    }

    /** The permission bits as {@code ls} shows them, e.g. {@code rw-------}. */
    public String modeString() {
        return PosixFilePermissions.toString(mode);
    }

    @Override
    public String toString() {
        return "unix:" + path + " (mode " + modeString() + ", identity " + (identity == null ? "none" : identity) + ")";
    }
}
