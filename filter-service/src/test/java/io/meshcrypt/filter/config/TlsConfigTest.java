package io.meshcrypt.filter.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.meshconfig.tls.TlsFiles;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** filter.yaml's {@code tls:}: mutual TLS files, and plaintext only on a loopback {@code listen}. */
class TlsConfigTest {

    private static final String TLS = """
            tls:
              certificate: pki/filter-service/cert.pem
              privateKey: pki/filter-service/key.pem
              trustedCa: pki/ca.pem
            """;

    @TempDir
    Path dir;

    private Path write(String yaml) throws Exception {
        Path file = dir.resolve("filter.yaml");
        Files.writeString(file, yaml);
        return file;
    }

    @Test
    void givenATlsSection_whenLoaded_thenItsPathsResolveAgainstTheConfigFolder() throws Exception {
        FilterConfig config = FilterConfig.load(write("listen: 0.0.0.0:50051\nkeyset: k.json\n" + TLS));

        assertEquals(new TlsFiles(dir.resolve("pki/filter-service/cert.pem"), dir.resolve("pki/filter-service/key.pem"),
                dir.resolve("pki/ca.pem")), config.tls());
    }

    @Test
    void givenNoTlsAndALoopbackListen_whenLoaded_thenPlaintextAsBefore() throws Exception {
        assertNull(FilterConfig.load(write("listen: 127.0.0.1:50051\nkeyset: k.json\n")).tls());
        assertNull(FilterConfig.load(write("keyset: k.json\n")).tls());
    }

    @Test
    void givenNoTlsAndANonLoopbackListen_whenLoaded_thenTheErrorNamesTheListenLine() throws Exception {
        Path file = write("keyset: k.json\nlisten: 0.0.0.0:50051\n");

        ConfigException e = assertThrows(ConfigException.class, () -> FilterConfig.load(file));

        assertEquals(file + ":2:1: tls: required when listen is not a loopback address", e.getMessage());
    }

    @Test
    void givenATlsSectionWithoutTheCa_whenLoaded_thenTheErrorNamesTheField() throws Exception {
        Path file = write("keyset: k.json\n" + TLS.replace("  trustedCa: pki/ca.pem\n", ""));

        ConfigException e = assertThrows(ConfigException.class, () -> FilterConfig.load(file));

        assertTrue(e.getMessage().startsWith(file + ":3:3: tls.trustedCa: required field is missing"), e.getMessage());
    }
}
