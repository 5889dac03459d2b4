package io.meshcrypt.filter;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.kms.Keysets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code serve} refuses to start on secret files others can read, before it listens. */
@Timeout(value = 30, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class MainServeTest {

    @TempDir
    Path dir;

    @Test
    void givenWorldReadableKeyset_whenServing_thenRefusedBeforeListeningNamingTheFile() throws Exception {
        Path keyset = dir.resolve("keyset.json");
        Keysets.create(keyset);
        Files.setPosixFilePermissions(keyset, PosixFilePermissions.fromString("rw-r--r--"));
        Path config = dir.resolve("filter.yaml");
        Files.writeString(config, "listen: 127.0.0.1:0\nkeyset: keyset.json\n");

        GeneralSecurityException e = assertThrows(GeneralSecurityException.class,
                () -> Main.run(new String[] {"serve", "--config", config.toString()}));

        assertTrue(e.getMessage().contains(keyset.toString()) && e.getMessage().contains("chmod 600"), e.getMessage());
    }

    @Test
    void givenGroupReadableRecordKeyKeyset_whenServing_thenRefused() throws Exception {
        Keysets.create(dir.resolve("keyset.json"));
        Path siv = dir.resolve("siv.json");
        Files.writeString(siv, "{}");
        Files.setPosixFilePermissions(siv, PosixFilePermissions.fromString("rw-r-----"));
        Path config = dir.resolve("filter.yaml");
        Files.writeString(config, "listen: 127.0.0.1:0\nkeyset: keyset.json\nsivKeyset: siv.json\n");

        GeneralSecurityException e = assertThrows(GeneralSecurityException.class,
                () -> Main.run(new String[] {"serve", "--config", config.toString()}));

        assertTrue(e.getMessage().contains(siv.toString()), e.getMessage());
    }
}
