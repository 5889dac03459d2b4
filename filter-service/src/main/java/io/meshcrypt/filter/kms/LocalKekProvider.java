package io.meshcrypt.filter.kms;

import com.google.crypto.tink.Aead;
import com.google.crypto.tink.KeyStatus;
import com.google.crypto.tink.KeysetHandle;
import com.google.crypto.tink.aead.AeadConfig2026;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.GeneralSecurityException;
import java.util.ArrayList;
import java.util.List;

/**
 * KEKs in a cleartext Tink keyset file (development only: the KEK sits on disk). KEK ids are
 * {@code local:<tink key id>}; the keyset's primary wraps new DEKs, any enabled key unwraps. The file is re-read
 * when it changes, so {@code keys rotate} by another process reaches new DEKs without a restart.
 */
public final class LocalKekProvider implements KekProvider {
    private static final String PREFIX = "local:";

    private final Path file;
    private Loaded loaded;

    private record Loaded(KeysetHandle handle, Aead aead, Object fileKey, long modified, long size) {
    }

    public LocalKekProvider(Path file) {
        this.file = file;
    }

    @Override
    public String name() {
        return "local";
    }

    @Override
    public String currentKekId() throws GeneralSecurityException {
        return PREFIX + Integer.toUnsignedString(keyset().handle().getPrimary().getId());
    }

    @Override
    public WrappedDek wrap(byte[] dek, DekContext context) throws GeneralSecurityException {
        Loaded l = keyset();
        return new WrappedDek(PREFIX + Integer.toUnsignedString(l.handle().getPrimary().getId()),
                l.aead().encrypt(dek, context.associatedData()));
    }

    @Override
    public byte[] unwrap(String kekId, byte[] wrapped, DekContext context) throws GeneralSecurityException {
        int id = parseId(kekId);
        Loaded l = keyset();
        if (!enabled(l.handle(), id)) {
            throw new KekRefusedException("KEK " + kekId + " is not an enabled key of keyset file " + file);
        }
        if (wrapped.length < 5 || wrapped[0] != 1 || readInt(wrapped, 1) != id) {
            throw new KekRefusedException("wrapped DEK " + context.dekIdText() + " was not made by KEK " + kekId);
        }
        try {
            return l.aead().decrypt(wrapped, context.associatedData());
        } catch (GeneralSecurityException e) {
            throw new KekRefusedException("KEK " + kekId + " cannot unwrap DEK " + context.dekIdText()
                    + " of topic '" + context.topicText() + "' (wrong topic or tampered)");
        }
    }

    @Override
    public synchronized String create() throws GeneralSecurityException {
        if (!Files.exists(file)) {
            try {
                Keysets.create(file);
            } catch (IOException e) {
                throw new GeneralSecurityException("cannot create keyset file " + file + ": " + e.getMessage(), e);
            }
        }
        return currentKekId();
    }

    @Override
    public synchronized String rotate() throws GeneralSecurityException {
        try {
            Keysets.rotate(file);
        } catch (IOException e) {
            throw new GeneralSecurityException("cannot rotate keyset file " + file + ": " + e.getMessage(), e);
        }
        return currentKekId();
    }

    @Override
    public List<KekInfo> list() throws GeneralSecurityException {
        KeysetHandle handle = keyset().handle();
        List<KekInfo> out = new ArrayList<>();
        for (int i = 0; i < handle.size(); i++) {
            KeysetHandle.Entry e = handle.getAt(i);
            out.add(new KekInfo(PREFIX + Integer.toUnsignedString(e.getId()), e.isPrimary(), e.getStatus().toString()));
        }
        return out;
    }

    private synchronized Loaded keyset() throws GeneralSecurityException {
        BasicFileAttributes attrs;
        try {
            attrs = Files.readAttributes(file, BasicFileAttributes.class);
        } catch (IOException e) {
            throw new KekRefusedException("keyset file " + file + " is not readable: " + e.getMessage(), e);
        }
        long modified = attrs.lastModifiedTime().toMillis();
        // Rotation replaces the file atomically, so a new inode (file key) is the reliable signal.
        if (loaded == null || loaded.modified() != modified || loaded.size() != attrs.size()
                || (attrs.fileKey() != null && !attrs.fileKey().equals(loaded.fileKey()))) {
            KeysetHandle handle;
            try {
                handle = Keysets.read(file);
            } catch (IOException e) {
                throw new KekRefusedException("keyset file " + file + " is not readable: " + e.getMessage(), e);
            }
            loaded = new Loaded(handle, handle.getPrimitive(AeadConfig2026.get(), Aead.class), attrs.fileKey(), modified, attrs.size());
        }
        return loaded;
    }

    private static boolean enabled(KeysetHandle handle, int id) {
        for (int i = 0; i < handle.size(); i++) {
            KeysetHandle.Entry e = handle.getAt(i);
            if (e.getId() == id) {
                return e.getStatus().equals(KeyStatus.ENABLED);
            }
        }
        return false;
    }

    private static int parseId(String kekId) throws KekRefusedException {
        if (kekId.startsWith(PREFIX)) {
            try {
                return Integer.parseUnsignedInt(kekId.substring(PREFIX.length()));
            } catch (NumberFormatException e) {
                // fall through
            }
        }
        throw new KekRefusedException("KEK " + kekId + " is not a local keyset key id");
    }

    private static int readInt(byte[] b, int off) {
        return ((b[off] & 0xFF) << 24) | ((b[off + 1] & 0xFF) << 16) | ((b[off + 2] & 0xFF) << 8) | (b[off + 3] & 0xFF);
    }
}
