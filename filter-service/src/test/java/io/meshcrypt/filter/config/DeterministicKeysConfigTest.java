package io.meshcrypt.filter.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.kafka.BrokerAddresses;
import io.meshcrypt.filter.kafka.KafkaProxy;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** {@code keys: deterministic} on policy entries and the {@code sivKeyset} path. */
class DeterministicKeysConfigTest {

    @TempDir
    Path dir;

    private Path write(String yaml) throws Exception {
        Path file = dir.resolve("filter.yaml");
        Files.writeString(file, yaml);
        return file;
    }

    @Test
    void givenEntryWithKeysDeterministic_whenLoaded_thenOnlyItsTopicsEncryptKeysAndKeysetDefaultsNextToKeyset()
            throws Exception {
        FilterConfig config = FilterConfig.load(write("""
                keyset: keys/keyset.json
                policy:
                  encrypt:
                    - {topic: "users-*", keys: deterministic}
                    - {topic: "orders*", fields: ["/card"], keys: plaintext}
                    - "*"
                """));

        assertTrue(config.policy().deterministicKeys("users-eu"));
        assertFalse(config.policy().deterministicKeys("orders-eu"));
        assertFalse(config.policy().deterministicKeys("audit"));
        assertTrue(config.policy().fieldsOf("users-eu").isEmpty());
        assertEquals(1, config.policy().fieldsOf("orders-eu").size());
        assertEquals(dir.toAbsolutePath().resolve("keys/siv-keyset.json"), config.sivKeyset());
    }

    @Test
    void givenFieldsAndKeysDeterministicAndSivKeysetPath_whenLoaded_thenBothAppliedAndPathResolved() throws Exception {
        FilterConfig config = FilterConfig.load(write("""
                keyset: keyset.json
                sivKeyset: secrets/record-keys.json
                policy:
                  encrypt:
                    - {topic: "users", fields: ["/ssn"], keys: deterministic}
                """));

        assertTrue(config.policy().deterministicKeys("users"));
        assertEquals(1, config.policy().fieldsOf("users").size());
        assertEquals(dir.toAbsolutePath().resolve("secrets/record-keys.json"), config.sivKeyset());
    }

    @Test
    void givenNoEntryWithKeysDeterministic_whenLoaded_thenNoSivKeysetAndNoKeyEncryption() throws Exception {
        FilterConfig config = FilterConfig.load(write("keyset: keyset.json\npolicy:\n  encrypt: [\"*\"]\n"));

        assertNull(config.sivKeyset());
        assertFalse(config.policy().anyDeterministicKeys());
        assertFalse(config.policy().deterministicKeys("anything"));
    }

    @Test
    void givenSivKeysetWithoutDeterministicEntry_whenLoaded_thenPathKeptSoAReloadedPolicyMayUseIt() throws Exception {
        FilterConfig config = FilterConfig.load(write("keyset: keyset.json\nsivKeyset: s.json\n"));

        assertEquals(dir.toAbsolutePath().resolve("s.json"), config.sivKeyset());
        assertFalse(config.policy().anyDeterministicKeys());
    }

    @Test
    void givenProxyStartedWithoutSivKeyset_whenReloadedPolicyAsksForDeterministicKeys_thenRefusedAndLastGoodPolicyStays()
            throws Exception {
        Path config = write("keyset: k.json\npolicy:\n  encrypt: [\"*\"]\n");
        FilterConfig startup = FilterConfig.load(config);
        KafkaProxy proxy = new KafkaProxy(startup.policy(), ValueCipherV1.fromKeysetHandle(Keysets.generate()), null,
                new BrokerAddresses(Map.of()), TestLimits.kafka(1 << 20));

        try (PolicyWatcher watcher = PolicyWatcher.start(config, startup, proxy::policy, rules -> { }, Duration.ofMillis(20))) {
            Path tmp = dir.resolve("filter.yaml.tmp");
            Files.writeString(tmp, "keyset: k.json\npolicy:\n  encrypt:\n    - {topic: a, keys: deterministic}\n");
            Files.move(tmp, config, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (watcher.lastError() == null && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }

            assertTrue(String.valueOf(watcher.lastError()).contains("sivKeyset"), String.valueOf(watcher.lastError()));
            assertEquals(EncryptionPolicy.encryptAll(), watcher.current());
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
            unknown keys mode        | keyset: k.json\\npolicy:\\n  encrypt:\\n    - {topic: a, keys: siv}          | 4:18 | policy.encrypt[0].keys: must be one of plaintext, deterministic (got "siv")
            keys mode not a string   | keyset: k.json\\npolicy:\\n  encrypt:\\n    - {topic: a, keys: true}         | 4:18 | policy.encrypt[0].keys: must be one of plaintext, deterministic (got true)
            neither fields nor keys  | keyset: k.json\\npolicy:\\n  encrypt:\\n    - {topic: a}                     | 4:7 | policy.encrypt[0].fields: required field is missing
            unknown entry key        | keyset: k.json\\npolicy:\\n  encrypt:\\n    - {topic: a, key: deterministic} | 4:18 | policy.encrypt[0].key: unknown field (expected one of topic, fields, keys, readers, writers, others, headers, subject, forgotten)
            sivKeyset empty          | keyset: k.json\\nsivKeyset: ''\\npolicy:\\n  encrypt:\\n    - {topic: a, keys: deterministic} | 2:1 | sivKeyset: must not be empty
            """)
    void givenInvalidKeysOption_whenLoaded_thenMessageNamesFileLineColumnAndField(String name, String yaml, String at,
            String expected) throws Exception {
        Path file = write(yaml.replace("\\n", "\n"));

        ConfigException e = assertThrows(ConfigException.class, () -> FilterConfig.load(file));

        String prefix = file + ":" + at + ": ";
        assertTrue(e.getMessage().startsWith(prefix + expected), () -> "expected prefix <" + prefix + expected
                + "> but was <" + e.getMessage() + ">");
    }
}
