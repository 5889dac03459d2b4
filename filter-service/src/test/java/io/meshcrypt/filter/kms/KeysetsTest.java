package io.meshcrypt.filter.kms;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.crypto.tink.KeysetHandle;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class KeysetsTest {

    @TempDir
    Path dir;

    @Test
    void givenNoFile_whenCreated_thenOwnerOnlyKeysetWithOnePrimaryKey() throws Exception {
        Path file = dir.resolve("keyset.json");

        int id = Keysets.create(file);

        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
        KeysetHandle handle = Keysets.read(file);
        assertEquals(1, handle.size());
        assertEquals(id, handle.getPrimary().getId());
    }

    @Test
    void givenExistingFile_whenCreated_thenRefusedAndContentKept() throws Exception {
        Path file = dir.resolve("keyset.json");
        Keysets.create(file);
        byte[] before = Files.readAllBytes(file);

        assertThrows(FileAlreadyExistsException.class, () -> Keysets.create(file));

        assertArrayEquals(before, Files.readAllBytes(file));
    }

    @Test
    void givenKeyset_whenRotated_thenNewPrimaryAddedOldKeptAndStillOwnerOnly() throws Exception {
        Path file = dir.resolve("keyset.json");
        int first = Keysets.create(file);

        int second = Keysets.rotate(file);

        KeysetHandle handle = Keysets.read(file);
        assertEquals(2, handle.size());
        assertEquals(second, handle.getPrimary().getId());
        assertEquals(first, handle.getAt(0).getId());
        assertFalse(handle.getAt(0).isPrimary());
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
        try (var files = Files.list(dir)) {
            assertEquals(1, files.count(), "no temporary file left behind");
        }
    }

    @Test
    void givenGarbageFile_whenRead_thenErrorNamesFileButNotContent() throws Exception {
        Path file = dir.resolve("bad.json");
        Files.writeString(file, "{\"primaryKeyId\": 1, \"key\": [{\"keyData\": {\"value\": \"SECRETSECRET\"");

        GeneralSecurityException e = assertThrows(GeneralSecurityException.class, () -> Keysets.read(file));

        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        assertFalse(e.getMessage().contains("SECRET"), e.getMessage());
    }

    @Test
    void givenMissingFile_whenRead_thenNoSuchFileNamingPath() {
        Path file = dir.resolve("missing.json");

        NoSuchFileException e = assertThrows(NoSuchFileException.class, () -> Keysets.read(file));

        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
    }
}
