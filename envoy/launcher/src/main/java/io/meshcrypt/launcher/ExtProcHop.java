package io.meshcrypt.launcher;

import io.meshcrypt.meshconfig.mesh.Mesh;
import io.meshcrypt.meshconfig.mesh.Mesh.Sidecar;
import io.meshcrypt.meshconfig.mesh.Mesh.UnixSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * How the launcher's sidecars reach the filter-service (MESHCRYPT_EXT_PROC): {@link #TCP} (default) on its gRPC port,
 * with mutual TLS when MESHCRYPT_TLS is on; {@link #UNIX}, one Unix domain socket per sidecar identity under
 * {@code $MESHCRYPT_HOME/run/}, without TLS: the socket file (mode 0600, the launcher's user) admits only processes
 * of that user, and the filter-service gives every stream on it that sidecar's SPIFFE id (filter.yaml
 * {@code unixSockets}). Same host only; the transparent demo, whose sidecars run as another user, refuses it.
 */
enum ExtProcHop {
    TCP, UNIX;

    static final String SWITCH = "MESHCRYPT_EXT_PROC";
    /** The sockets' folder in the state dir; short, since a socket's whole path must fit sun_path. */
    static final String RUN_DIR = "run";

    static ExtProcHop parse(Map<String, String> env) {
        String value = env.getOrDefault(SWITCH, "");
        return switch (value) {
            case "", "tcp" -> TCP;
            case "unix" -> UNIX;
            default -> throw new LauncherException(SWITCH + "=" + value + ": must be tcp or unix");
        };
    }

    /** {@code node}'s socket, relative to the state dir (filter.yaml resolves it there). */
    static String relativeSocket(String node) {
        return RUN_DIR + "/" + node + ".sock";
    }

    static Path socket(StateDir state, String node) {
        return state.dir().resolve(relativeSocket(node));
    }

    /**
     * @throws LauncherException naming the longest path, when a socket of one of {@code nodes} under {@code state}
     *     would not fit sun_path (Linux: 107 bytes and a NUL)
     */
    static void requireShortPaths(StateDir state, List<String> nodes) {
        Path longest = nodes.stream().map(node -> socket(state, node)).max(Comparator.comparingInt(ExtProcHop::bytes)).orElseThrow();
        if (bytes(longest) > UnixSocket.MAX_PATH_BYTES) {
            int home = bytes(state.dir());
            throw new LauncherException(SWITCH + "=unix: the socket path " + longest + " is " + bytes(longest) + " bytes, Linux allows "
                    + UnixSocket.MAX_PATH_BYTES + "; set MESHCRYPT_HOME to a shorter folder (at most "
                    + (UnixSocket.MAX_PATH_BYTES - (bytes(longest) - home)) + " bytes)");
        }
    }

    private static int bytes(Path p) {
        return p.toString().getBytes(StandardCharsets.UTF_8).length;
    }

    /** {@code mesh} with every sidecar's filterService on its own socket under {@code state}'s {@link #RUN_DIR}. */
    static Mesh onUnixSockets(Mesh mesh, StateDir state) {
        Map<String, Sidecar> sidecars = new LinkedHashMap<>();
        for (Sidecar s : mesh.sidecars().values()) {
            sidecars.put(s.nodeId(), s.withFilterServices(List.of(new UnixSocket(socket(state, s.nodeId())))));
        }
        return new Mesh(mesh.kafkaClusters(), sidecars, mesh.policy(), mesh.http(), mesh.tls());
    }

    /**
     * filter.yaml's {@code unixSockets:}: one socket per node, relative to filter.yaml, owner-only, carrying the SPIFFE
     * id the node's certificate would (MeshPki), so that policy readers and writers mean the same on both transports.
     */
    static String filterSection(List<String> nodes) {
        StringBuilder y = new StringBuilder("# the sidecars' hop (MESHCRYPT_EXT_PROC=unix): one owner-only socket per sidecar, streams on it carry its identity\n"
                + "unixSockets:\n");
        for (String node : nodes) {
            y.append("  - path: ").append(relativeSocket(node)).append('\n')
                    .append("    identity: ").append(MeshPki.spiffeId(MeshPki.sidecar(node))).append('\n')
                    .append("    mode: \"0600\"\n");
        }
        return y.toString();
    }
}
