package io.meshcrypt.filter.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.meshconfig.yaml.ConfigException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class KeysConfigTest {
    @TempDir
    Path dir;

    private FilterConfig load(String yaml) throws Exception {
        Path file = dir.resolve("filter.yaml");
        Files.writeString(file, yaml);
        return FilterConfig.load(file);
    }

    private String failure(String yaml) throws Exception {
        Path file = dir.resolve("filter.yaml");
        Files.writeString(file, yaml);
        return assertThrows(ConfigException.class, () -> FilterConfig.load(file)).getMessage();
    }

    @Test
    void givenOnlyKeyset_whenLoaded_thenNoKeysSectionAndVersion1() throws Exception {
        assertNull(load("keyset: k.json\n").keys());
    }

    @Test
    void givenLocalProviderWithoutOwnKeyset_whenLoaded_thenTopLevelKeysetIsKekAndDefaultsApply() throws Exception {
        FilterConfig c = load("""
                keyset: k.json
                keys:
                  provider: local
                """);
        assertEquals("local", c.keys().provider());
        assertEquals(dir.toAbsolutePath().resolve("k.json"), c.keys().localKeyset());
        assertEquals(1L << 30, c.keys().maxRecordsPerDek());
        assertEquals(Duration.ofHours(1), c.keys().maxDekAge());
        assertEquals(Duration.ofMillis(2000), c.keys().kmsTimeout());
    }

    @Test
    void givenPkcs11Section_whenLoaded_thenEveryFieldRead() throws Exception {
        FilterConfig c = load("""
                keys:
                  provider: pkcs11
                  pkcs11:
                    library: /usr/lib/softhsm/libsofthsm2.so
                    slot: 1234567
                    pinEnv: HSM_PIN
                    label: team-kek
                  dek:
                    maxRecords: 1000
                    maxAgeSeconds: 60
                  cache:
                    ttlSeconds: 120
                    maxEntries: 50
                  kmsTimeoutMillis: 500
                  kekCheckSeconds: 30
                """);
        KeysConfig k = c.keys();
        assertNull(c.keyset());
        assertEquals(new KeysConfig.Pkcs11(Path.of("/usr/lib/softhsm/libsofthsm2.so"), 1234567, null, "HSM_PIN", "team-kek"), k.pkcs11());
        assertEquals(1000, k.maxRecordsPerDek());
        assertEquals(Duration.ofSeconds(60), k.maxDekAge());
        assertEquals(Duration.ofSeconds(120), k.cacheTtl());
        assertEquals(50, k.cacheMaxEntries());
        assertEquals(Duration.ofMillis(500), k.kmsTimeout());
        assertEquals(Duration.ofSeconds(30), k.kekCheckInterval());
    }

    @Test
    void givenAwsKmsSection_whenLoaded_thenEndpointRead() throws Exception {
        KeysConfig k = load("""
                keys:
                  provider: aws-kms
                  awsKms:
                    keyId: alias/meshcrypt
                    region: eu-west-1
                    endpoint: http://127.0.0.1:4566
                """).keys();
        assertEquals(new KeysConfig.AwsKms("alias/meshcrypt", "eu-west-1", URI.create("http://127.0.0.1:4566")), k.awsKms());
    }

    @Test
    void givenInvalidKeysSections_whenLoaded_thenFieldErrorsWithLocation() throws Exception {
        assertTrue(failure("keys:\n  provider: vault\n").endsWith("filter.yaml:2:3: keys.provider: must be one of local, pkcs11, aws-kms (got \"vault\")"));
        assertTrue(failure("keys:\n  provider: local\n").contains("keys.local.keyset: required with provider local"));
        assertTrue(failure("keyset: k.json\nkeys:\n  provider: local\n  colour: red\n").contains(":4:3: keys.colour: unknown field"));
        assertTrue(failure("keys:\n  provider: aws-kms\n  awsKms:\n    keyId: k\n    region: r\n  pkcs11:\n    slot: 1\n")
                .contains(":6:3: keys.pkcs11: only allowed with provider pkcs11"));
        assertTrue(failure("keys:\n  provider: pkcs11\n  pkcs11:\n    library: l.so\n    slot: 1\n")
                .contains("keys.pkcs11: set exactly one of pinFile, pinEnv"));
        assertTrue(failure("keys:\n  provider: pkcs11\n  pkcs11:\n    library: l.so\n    slot: -1\n    pinEnv: P\n")
                .contains(":5:5: keys.pkcs11.slot: must be a non-negative integer"));
        assertTrue(failure("keys:\n  provider: aws-kms\n  awsKms:\n    keyId: k\n    region: r\n    endpoint: ftp://x\n")
                .contains(":6:5: keys.awsKms.endpoint: must be an http(s) URL"));
        assertTrue(failure("keyset: k.json\nkeys:\n  provider: local\n  dek:\n    maxRecords: 8589934592\n")
                .contains(":5:5: keys.dek.maxRecords: must be a positive integer at most 4294967296"));
        assertTrue(failure("keys:\n  provider: aws-kms\n  awsKms:\n    region: r\n").contains("keys.awsKms.keyId: required field is missing"));
    }

    @Test
    void givenUnwrapSection_whenLoaded_thenUnwrapLimitsRead() throws Exception {
        FilterConfig c = load("""
                keyset: k.json
                keys:
                  provider: local
                  unwrap:
                    perSecond: 20
                    burst: 40
                    maxFailed: 300
                """);
        assertEquals(20, c.keys().unwrapsPerSecond());
        assertEquals(40, c.keys().unwrapsBurst());
        assertEquals(300, c.keys().maxFailedUnwraps());
    }

    @Test
    void givenNoUnwrapSection_whenLoaded_thenSafeDefaults() throws Exception {
        KeysConfig k = load("keyset: k.json\nkeys:\n  provider: local\n").keys();

        assertEquals(100, k.unwrapsPerSecond());
        assertEquals(200, k.unwrapsBurst());
        assertEquals(1000, k.maxFailedUnwraps());
    }

    @Test
    void givenInvalidUnwrapSection_whenLoaded_thenFieldErrors() throws Exception {
        assertTrue(failure("keyset: k.json\nkeys:\n  provider: local\n  unwrap:\n    perSecond: 0\n")
                .contains(":5:5: keys.unwrap.perSecond: must be a positive integer"));
        assertTrue(failure("keyset: k.json\nkeys:\n  provider: local\n  unwrap:\n    rate: 5\n")
                .contains(":5:5: keys.unwrap.rate: unknown field"));
    }
}
