package io.meshcrypt.filter.kms;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Secret files others may read are refused, naming the file and the fix. */
class KeysetPermissionsTest {

    @TempDir
    Path dir;

    @Test
    void givenKeysetCreated_whenRead_thenOwnerOnlyAndAccepted() throws Exception {
        Path file = dir.resolve("keyset.json");
        Keysets.create(file);

        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
        assertDoesNotThrow(() -> Keysets.read(file));
    }

    @ParameterizedTest
    @ValueSource(strings = {"rw-r--r--", "rw-r-----", "rw------x", "r-----r--", "rw--w----"})
    void givenKeysetAccessibleToGroupOrOthers_whenRead_thenRefusedNamingFileAndChmod(String mode) throws Exception {
        Path file = dir.resolve("keyset.json");
        Keysets.create(file);
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString(mode));

        GeneralSecurityException e = assertThrows(GeneralSecurityException.class, () -> Keysets.read(file));

        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("chmod 600 " + file), e.getMessage());
        assertTrue(e.getMessage().contains(mode), e.getMessage());
    }

    @Test
    void givenOwnerReadOnlyKeyset_whenRead_thenAccepted() throws Exception {
        Path file = dir.resolve("keyset.json");
        Keysets.create(file);
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("r--------"));

        assertDoesNotThrow(() -> Keysets.read(file));
    }

    @Test
    void givenWorldReadablePinFile_whenChecked_thenRefused() throws Exception {
        Path pin = dir.resolve("pin");
        Files.writeString(pin, "1234");
        Files.setPosixFilePermissions(pin, PosixFilePermissions.fromString("rw-r--r--"));

        GeneralSecurityException e = assertThrows(GeneralSecurityException.class, () -> Keysets.requireOwnerOnly(pin));

        assertTrue(e.getMessage().contains("accessible to others"), e.getMessage());
    }

    @Test
    void givenNullOrMissingFile_whenChecked_thenLeftToTheCaller() {
        assertDoesNotThrow(() -> Keysets.requireOwnerOnly(null));
        assertDoesNotThrow(() -> Keysets.requireOwnerOnly(dir.resolve("missing.json")));
    }
}
