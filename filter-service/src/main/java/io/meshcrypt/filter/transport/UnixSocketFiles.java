package io.meshcrypt.filter.transport;

import java.io.IOException;
import java.net.ConnectException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;

/**
 * The life of a Unix domain socket's file: what may be at its path before it is bound, how it gets its mode before
 * anyone can connect, and its removal.
 *
 * <p>bind(2) creates the file with the process umask's mode, and a chmod after it leaves a moment where a looser mode
 * lets others connect. So the server binds inside a fresh owner-only folder next to the path ({@link #bindFolder}),
 * where nobody else can reach the file, chmods it there, and only then renames it to its path ({@link #publish}).
 *
 * <p>The messages of the exceptions thrown here name no path: the caller names the socket.
 */
final class UnixSocketFiles {

    /** File-type bits of {@code st_mode} and the value of a socket. */
    private static final int S_IFMT = 0170000;
    private static final int S_IFSOCK = 0140000;
    /** The socket's name inside {@link #bindFolder}. */
    private static final String BIND_NAME = "s";

    private UnixSocketFiles() {
    }

    /**
     * Makes room for a socket at {@code path}: nothing there, or a stale socket (nothing listening), which is removed.
     * Anything else (a regular file, a folder, a symbolic link, a socket in use) is refused and left as it is.
     */
    static void clear(Path path) throws IOException {
        int mode;
        try {
            mode = (Integer) Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
        } catch (NoSuchFileException e) {
            return;
        }
        if ((mode & S_IFMT) != S_IFSOCK) {
            throw new IOException("exists and is not a socket (" + kind(path) + "); it is left as it is: remove it or"
                    + " choose another unixSockets path");
        }
        if (listening(path)) {
            throw new IOException("another process is listening on this socket");
        }
        Files.delete(path);
    }

    private static String kind(Path path) {
        if (Files.isSymbolicLink(path)) {
            return "a symbolic link";
        }
        return Files.isDirectory(path, LinkOption.NOFOLLOW_LINKS) ? "a folder"
                : Files.isRegularFile(path, LinkOption.NOFOLLOW_LINKS) ? "a regular file" : "not a socket";
    }

    /** Whether a process accepts connections on the socket at {@code path}; a refused connection means stale. */
    private static boolean listening(Path path) throws IOException {
        try (SocketChannel probe = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            probe.connect(UnixDomainSocketAddress.of(path));
            return true;
        } catch (ConnectException e) {
            return false;
        }
    }

    /**
     * A new owner-only folder beside {@code path} (its parent folders are created if missing) and the path inside it
     * to bind; it must fit {@code sun_path} as {@code path} does.
     */
    static Path bindFolder(Path path) throws IOException {
        Path parent = path.getParent();
        Files.createDirectories(parent);
        Path folder = Files.createTempDirectory(parent, ".sock",
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        Path bound = folder.resolve(BIND_NAME);
        if (UnixSocket.pathBytes(bound) > UnixSocket.MAX_PATH_BYTES) {
            Files.delete(folder);
            throw new IOException("the folder is too deep to bind a socket next to it (" + bound + " is longer than "
                    + UnixSocket.MAX_PATH_BYTES + " bytes); choose a shorter path");
        }
        return bound;
    }

    /**
     * Gives the socket bound at {@code bound} its {@code mode}, moves it to {@code path} (never over an existing file)
     * and removes its bind folder.
     */
    static void publish(Path bound, Path path, Set<PosixFilePermission> mode) throws IOException {
        Files.setPosixFilePermissions(bound, mode);
        Files.move(bound, path);
        Files.delete(bound.getParent());
    }

    /** Removes what {@link #bindFolder} and {@link #publish} may have left, quietly: a server that failed to start. */
    static void abandon(Path bound) {
        try {
            Files.deleteIfExists(bound);
            Files.deleteIfExists(bound.getParent());
        } catch (IOException e) {
            // best effort: a leftover folder holds nothing anyone else can open
        }
    }

    /** Removes the socket at {@code path} when a socket is still there (a file put in its place stays). */
    static void remove(Path path) throws IOException {
        try {
            int mode = (Integer) Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
            if ((mode & S_IFMT) == S_IFSOCK) {
                Files.delete(path);
            }
        } catch (NoSuchFileException e) {
            // already gone
        }
    }
}
