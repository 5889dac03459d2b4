package io.meshcrypt.filter.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.meshconfig.yaml.ConfigException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AdminConfigTest {
    private static final String TLS = """
            tls:
              certificate: cert.pem
              privateKey: key.pem
              trustedCa: ca.pem
            """;

    @TempDir
    Path dir;

    private FilterConfig load(String yaml) throws Exception {
        Path file = dir.resolve("filter.yaml");
        Files.writeString(file, "keyset: keyset.json\n" + yaml);
        return FilterConfig.load(file);
    }

    private String failure(String yaml) {
        return assertThrows(ConfigException.class, () -> load(yaml)).getMessage();
    }

    @Test
    void givenNoAdminSection_whenLoaded_thenNobodyMayCallTheAdminApi() throws Exception {
        assertEquals(AdminConfig.NOBODY, load("").admin());
    }

    @Test
    void givenAdminIdentitiesWithTls_whenLoaded_thenTheyAreRead() throws Exception {
        FilterConfig config = load(TLS + "admin:\n  identities: [spiffe://meshcrypt.local/admin]\n");

        assertEquals(List.of("spiffe://meshcrypt.local/admin"), config.admin().identities());
        assertFalse(config.admin().plaintextLoopback());
    }

    @Test
    void givenPlaintextLoopbackWithoutTls_whenLoaded_thenTheApiIsOpenToLocalCallers() throws Exception {
        assertTrue(load("admin:\n  plaintextLoopback: true\n").admin().plaintextLoopback());
    }

    @Test
    void givenBadAdminSections_whenLoaded_thenEachIsRefusedNamingFileLineAndField() {
        assertTrue(failure("admin:\n  identity: [spiffe://x/a]\n").contains("admin.identity"), "unknown key");
        String glob = failure(TLS + "admin:\n  identities: [\"spiffe://meshcrypt.local/*\"]\n");
        assertTrue(glob.contains("filter.yaml:7:3: admin.identities[0]: must be an exact SPIFFE id"), glob);
        assertTrue(failure(TLS + "admin:\n  identities: [admin]\n").contains("admin.identities[0]"));
        assertTrue(failure(TLS + "admin:\n  plaintextLoopback: true\n").contains("admin.plaintextLoopback: only without tls"));
        assertTrue(failure("admin:\n  identities: [spiffe://meshcrypt.local/admin]\n")
                .contains("admin.identities: callers have no identity without tls"));
        assertTrue(failure("admin:\n  plaintextLoopback: yes please\n").contains("admin.plaintextLoopback: must be true or false"));
        assertTrue(failure("admin: {}\n").contains("admin: set identities"));
    }
}
