package io.meshcrypt.filter.audit;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;

/**
 * An append-only file rotated by size: before a line would take {@code file} past {@code maxBytes}, {@code file}
 * becomes {@code file.1}, {@code file.1} becomes {@code file.2} and so on; the oldest beyond {@code maxFiles} (the
 * current file included) is deleted. Files are created readable by their owner only: the trail says who read what.
 * Not thread-safe: the audit writer's thread is its only user.
 */
final class RotatingFile implements AuditLog.Sink {
    private static final Set<PosixFilePermission> OWNER_ONLY = PosixFilePermissions.fromString("rw-------");

    private final Path file;
    private final long maxBytes;
    private final int maxFiles;
    private OutputStream out;
    private long size;

    RotatingFile(Path file, long maxBytes, int maxFiles) throws IOException {
        this.file = file.toAbsolutePath();
        this.maxBytes = maxBytes;
        this.maxFiles = maxFiles;
        Path dir = this.file.getParent();
        if (dir != null) {
            Files.createDirectories(dir);
        }
        open();
    }

    /** @return the file that holds rotation number {@code n} (0: the current file) */
    static Path numbered(Path file, int n) {
        return n == 0 ? file : file.resolveSibling(file.getFileName() + "." + n);
    }

    @Override
    public void write(byte[] line) throws IOException {
        if (out == null) {
            open(); // the last rotation failed half way: try again
        }
        if (size > 0 && size + line.length > maxBytes) {
            rotate();
        }
        out.write(line);
        size += line.length;
    }

    @Override
    public void flush() throws IOException {
        if (out != null) {
            out.flush();
        }
    }

    @Override
    public void close() throws IOException {
        if (out != null) {
            out.close();
        }
    }

    private void open() throws IOException {
        boolean posix = Files.getFileStore(file.getParent()).supportsFileAttributeView("posix");
        FileAttribute<?>[] attributes = posix ? new FileAttribute<?>[] {PosixFilePermissions.asFileAttribute(OWNER_ONLY)}
                : new FileAttribute<?>[0];
        FileChannel channel = FileChannel.open(file, Set.of(StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.APPEND), attributes);
        if (posix && !Files.getPosixFilePermissions(file).equals(OWNER_ONLY)) {
            Files.setPosixFilePermissions(file, OWNER_ONLY); // a file from before, or made by someone else's umask
        }
        size = channel.size();
        out = new BufferedOutputStream(Channels.newOutputStream(channel), 64 * 1024);
    }

    private void rotate() throws IOException {
        out.close();
        out = null;
        Files.deleteIfExists(numbered(file, maxFiles - 1));
        for (int n = maxFiles - 1; n >= 1; n--) {
            Path from = numbered(file, n - 1);
            if (Files.exists(from)) {
                Files.move(from, numbered(file, n), StandardCopyOption.REPLACE_EXISTING);
            }
        }
        open();
    }
}
