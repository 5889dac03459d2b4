package io.meshcrypt.meshconfig.tls;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.util.Set;

/**
 * The one permission rule for files holding key material: TLS private keys (the filter-service's and the xDS server's,
 * checked by {@link TlsMaterial} on every load), and the filter-service's keysets and PIN files.
 */
public final class SecretFiles {

    private SecretFiles() {
    }

    /**
     * Refuses a secret file whose POSIX permissions let anyone but its owner read or write it: key material others can
     * read is already disclosed, and the service must not run on it silently. One exception: a file owned by root that
     * the service may read only through its group and nobody may write but root (what Kubernetes makes of a Secret
     * volume with {@code defaultMode: 0400} and an {@code fsGroup}), since the running user cannot own such a file and
     * the group is the pod's own. No-op for null, a missing file (the caller reports it) and file systems without
     * POSIX permissions.
     *
     * @throws GeneralSecurityException naming the file, its permissions and the fix ({@code chmod 600})
     */
    public static void requireOwnerOnly(Path file) throws IOException, GeneralSecurityException {
        if (file == null || !Files.exists(file)
                || !file.getFileSystem().supportedFileAttributeViews().contains("posix")) {
            return;
        }
        Set<PosixFilePermission> permissions = Files.getPosixFilePermissions(file);
        boolean others = permissions.contains(PosixFilePermission.OTHERS_READ)
                || permissions.contains(PosixFilePermission.OTHERS_WRITE)
                || permissions.contains(PosixFilePermission.OTHERS_EXECUTE);
        boolean group = permissions.contains(PosixFilePermission.GROUP_READ)
                || permissions.contains(PosixFilePermission.GROUP_WRITE)
                || permissions.contains(PosixFilePermission.GROUP_EXECUTE);
        if (!others && !group) {
            return;
        }
        if (!others && isPlatformManagedReadOnly(file, permissions)) {
            return;
        }
        throw new GeneralSecurityException("secret file " + file + " is accessible to " + (others ? "others" : "its group")
                + " (" + PosixFilePermissions.toString(permissions) + "); it holds key material, so it must be readable"
                + " by its owner only: chmod 600 " + file);
    }

    private static boolean isPlatformManagedReadOnly(Path file, Set<PosixFilePermission> permissions) throws IOException {
        if (permissions.contains(PosixFilePermission.GROUP_WRITE) || permissions.contains(PosixFilePermission.OWNER_WRITE)
                || permissions.contains(PosixFilePermission.GROUP_EXECUTE)) {
            return false;
        }
        Object uid;
        try {
            uid = Files.getAttribute(file, "unix:uid");
        } catch (UnsupportedOperationException | IllegalArgumentException e) {
            // No owner uid on this file system: the exception does not apply, and the permission check refuses the file.
            return false;
        }
        return uid instanceof Integer id && id == 0 && !"root".equals(System.getProperty("user.name"));
    }
}
