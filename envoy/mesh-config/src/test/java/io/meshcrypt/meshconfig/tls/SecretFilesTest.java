package io.meshcrypt.meshconfig.tls;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The permission rule for private keys and keysets: owner only, or refused naming the file and the fix. */
class SecretFilesTest {

    @TempDir
    Path dir;

    @Test
    void givenAKeyOthersCanRead_whenChecked_thenRefusedNamingTheFileAndChmod600() throws Exception {
        Path key = secret("rw-r--r--");

        GeneralSecurityException e = assertThrows(GeneralSecurityException.class, () -> SecretFiles.requireOwnerOnly(key));

        assertTrue(e.getMessage().contains("secret file " + key + " is accessible to others (rw-r--r--)"), e.getMessage());
        assertTrue(e.getMessage().endsWith("chmod 600 " + key), e.getMessage());
    }

    @Test
    void givenAKeyItsGroupCanWrite_whenChecked_thenRefused() throws Exception {
        Path key = secret("rw-rw----");

        GeneralSecurityException e = assertThrows(GeneralSecurityException.class, () -> SecretFiles.requireOwnerOnly(key));

        assertTrue(e.getMessage().contains("accessible to its group"), e.getMessage());
    }

    @Test
    void givenAnOwnerOnlyKeyOrNoFile_whenChecked_thenAccepted() throws Exception {
        Path key = secret("rw-------");

        assertDoesNotThrow(() -> SecretFiles.requireOwnerOnly(key));
        assertDoesNotThrow(() -> SecretFiles.requireOwnerOnly(null));
        assertDoesNotThrow(() -> SecretFiles.requireOwnerOnly(dir.resolve("missing.pem")), "the reader reports a missing file");
    }

    private Path secret(String permissions) throws Exception {
        Path key = Files.writeString(dir.resolve("key.pem"), "-----BEGIN PRIVATE KEY-----\n");
        Files.setPosixFilePermissions(key, PosixFilePermissions.fromString(permissions));
        return key;
    }
}
