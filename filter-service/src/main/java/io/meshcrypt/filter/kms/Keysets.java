package io.meshcrypt.filter.kms;

import com.google.crypto.tink.Configuration;
import com.google.crypto.tink.InsecureSecretKeyAccess;
import com.google.crypto.tink.KeyStatus;
import com.google.crypto.tink.KeysetHandle;
import com.google.crypto.tink.TinkJsonProtoKeysetFormat;
import com.google.crypto.tink.aead.AeadConfig2026;
import com.google.crypto.tink.aead.PredefinedAeadParameters;
import io.meshcrypt.meshconfig.tls.SecretFiles;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.util.EnumSet;
import java.util.Set;

/**
 * Cleartext Tink JSON keyset files, read and written here only: the local development KEK provider's keyset, the
 * version-1 value keyset and the record-key keyset. The key material sits unencrypted on disk, protected only by file
 * permissions (0600); production deployments should wrap the keyset with a KMS.
 *
 * <p>Error messages name the file, never its content.
 */
public final class Keysets {

    private static final Set<PosixFilePermission> OWNER_ONLY = EnumSet.of(
            PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE);

    private Keysets() {
    }

    /** @return a new keyset holding one AES-256-GCM key (TINK prefix) as primary */
    public static KeysetHandle generate() throws GeneralSecurityException {
        return KeysetHandle.generateNew(PredefinedAeadParameters.AES256_GCM, config());
    }

    /**
     * Writes a new single-key AES-256-GCM keyset to {@code file}, readable by the owner only.
     *
     * @return the primary key id
     * @throws FileAlreadyExistsException when {@code file} exists: an existing keyset is never overwritten
     */
    public static int create(Path file) throws IOException, GeneralSecurityException {
        KeysetHandle handle = generate();
        create(file, handle, config());
        return handle.getPrimary().getId();
    }

    /**
     * Writes {@code handle} as a cleartext Tink JSON keyset to the new file {@code file}, readable by the owner only.
     *
     * @param config the Tink configuration of the keyset's primitive (AEAD, deterministic AEAD)
     * @throws FileAlreadyExistsException when {@code file} exists: an existing keyset is never overwritten
     */
    public static void create(Path file, KeysetHandle handle, Configuration config) throws IOException, GeneralSecurityException {
        byte[] json = TinkJsonProtoKeysetFormat.serializeKeyset(handle, config, InsecureSecretKeyAccess.get())
                .getBytes(StandardCharsets.UTF_8);
        try (FileChannel channel = FileChannel.open(file,
                EnumSet.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE), ownerOnly(file))) {
            writeFully(channel, json);
        }
    }

    /**
     * Adds a new AES-256-GCM key to the keyset in {@code file} and makes it primary; the old keys stay enabled so
     * values written with them remain readable. The file is replaced atomically.
     *
     * @return the new primary key id
     */
    public static int rotate(Path file) throws IOException, GeneralSecurityException {
        KeysetHandle rotated = rotate(read(file));
        byte[] json = serialize(rotated);
        Path dir = file.toAbsolutePath().getParent();
        Path tmp = Files.createTempFile(dir, "." + file.getFileName() + ".", ".tmp", ownerOnly(file));
        try {
            try (FileChannel channel = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                writeFully(channel, json);
            }
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(tmp);
        }
        return rotated.getPrimary().getId();
    }

    /** @return {@code handle} plus a new AES-256-GCM primary key; the previous keys keep their status */
    public static KeysetHandle rotate(KeysetHandle handle) throws GeneralSecurityException {
        KeysetHandle.Builder builder = KeysetHandle.newBuilder(handle).setConfiguration(config());
        // makePrimary() on the new entry clears the primary flag of the existing one.
        builder.addEntry(KeysetHandle.generateEntryFromParameters(PredefinedAeadParameters.AES256_GCM)
                .withRandomId()
                .setStatus(KeyStatus.ENABLED)
                .makePrimary());
        return builder.build();
    }

    /** Reads a cleartext Tink JSON keyset; refuses one that group or others may access (see {@link #requireOwnerOnly}). */
    public static KeysetHandle read(Path file) throws IOException, GeneralSecurityException {
        requireOwnerOnly(file);
        return parse(file, config(), "keyset file");
    }

    /**
     * Reads a cleartext Tink JSON keyset without checking its permissions.
     *
     * @param config the Tink configuration of the keyset's primitive (AEAD, deterministic AEAD)
     * @param what how messages name the file ("keyset file", "record-key keyset file")
     */
    public static KeysetHandle parse(Path file, Configuration config, String what) throws IOException, GeneralSecurityException {
        String json;
        try {
            json = Files.readString(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new NoSuchFileException(file.toString(), null, what + " not found");
        }
        try {
            return TinkJsonProtoKeysetFormat.parseKeyset(json, config, InsecureSecretKeyAccess.get());
        } catch (GeneralSecurityException | RuntimeException e) {
            // The parser's own message may quote the file, which holds key material: report only the kind of failure.
            throw new GeneralSecurityException(what + " " + file + " is not a valid Tink JSON keyset ("
                    + e.getClass().getSimpleName() + ")");
        }
    }

    /** The rule of {@link SecretFiles#requireOwnerOnly}, shared with the TLS private keys of every component. */
    public static void requireOwnerOnly(Path file) throws IOException, GeneralSecurityException {
        SecretFiles.requireOwnerOnly(file);
    }

    private static byte[] serialize(KeysetHandle handle) throws GeneralSecurityException {
        return TinkJsonProtoKeysetFormat.serializeKeyset(handle, config(), InsecureSecretKeyAccess.get())
                .getBytes(StandardCharsets.UTF_8);
    }

    /**
     * Tink's fixed AEAD configuration rather than the global registry, so key generation and parsing do not depend on
     * what else registered itself in the JVM.
     */
    private static Configuration config() throws GeneralSecurityException {
        return AeadConfig2026.get();
    }

    private static FileAttribute<?>[] ownerOnly(Path file) {
        if (file.getFileSystem().supportedFileAttributeViews().contains("posix")) {
            return new FileAttribute<?>[] {PosixFilePermissions.asFileAttribute(OWNER_ONLY)};
        }
        return new FileAttribute<?>[0];
    }

    private static void writeFully(FileChannel channel, byte[] bytes) throws IOException {
        ByteBuffer buffer = ByteBuffer.wrap(bytes);
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
        // A keyset lost in a crash after rotation would make new data unreadable.
        channel.force(true);
    }
}
