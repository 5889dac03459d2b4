package io.meshcrypt.filter.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.meshconfig.yaml.ConfigException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The {@code subjectKeys:} section: where subject keys live and the index limits. */
class SubjectKeysConfigTest {
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
        return assertThrows(ConfigException.class, () -> FilterConfig.load(file)).getMessage()
                .replace(file.toString(), "filter.yaml");
    }

    @Test
    void givenOnlyBootstrap_whenLoaded_thenDefaultsApply() throws Exception {
        SubjectKeysConfig c = load("keys: {provider: local, local: {keyset: k.json}}\nsubjectKeys: {bootstrap: \"b1:9092\"}\n")
                .subjectKeys();

        assertEquals("b1:9092", c.bootstrap());
        assertEquals("__meshcrypt_subject_keys", c.topic());
        assertEquals(-1, c.replicationFactor());
        assertEquals(1_000_000, c.maxSubjects());
        assertEquals(Duration.ofSeconds(10), c.unknownKeyWait());
        assertEquals(Map.of(), c.client());
        assertNull(load("keys: {provider: local, local: {keyset: k.json}}\n").subjectKeys());
    }

    @Test
    void givenEveryField_whenLoaded_thenEachIsReadAndClientPropertiesAreNotShown() throws Exception {
        SubjectKeysConfig c = load("""
                keys: {provider: local, local: {keyset: k.json}}
                subjectKeys:
                  bootstrap: "b1:9093,b2:9093"
                  topic: keys
                  replicationFactor: 3
                  maxSubjects: 5000
                  newSubjectsPerSecond: 20
                  newSubjectsBurst: 40
                  unknownKeyWaitMillis: 1500
                  client: {security.protocol: SASL_SSL, ssl.key.password: hunter2, retries: 5}
                """).subjectKeys();

        assertEquals("keys", c.topic());
        assertEquals(3, c.replicationFactor());
        assertEquals(5000, c.maxSubjects());
        assertEquals(20, c.newSubjectsPerSecond());
        assertEquals(40, c.newSubjectsBurst());
        assertEquals(Duration.ofMillis(1500), c.unknownKeyWait());
        assertEquals(Map.of("security.protocol", "SASL_SSL", "ssl.key.password", "hunter2", "retries", "5"), c.client());
        assertFalse(c.toString().contains("hunter2"), c.toString());
    }

    private static void assertContains(String expected, String message) {
        assertTrue(message.contains(expected), message);
    }

    @Test
    void givenBadSections_whenLoaded_thenErrorsNameLineColumnAndField() throws Exception {
        String keys = "keys: {provider: local, local: {keyset: k.json}}\n";
        assertContains(
                "filter.yaml:2:14: subjectKeys.bootstrap: required field is missing (host:port list", failure(keys + "subjectKeys: {topic: t}\n"));
        assertContains("subjectKeys.bootstrap", failure(keys + "subjectKeys: {bootstrap: \"b\"}\n"));
        assertContains("2:33: subjectKeys.maxSubjects: must be a positive integer", failure(keys + "subjectKeys: {bootstrap: \"b:1\", maxSubjects: 0}\n"));
        assertContains("subjectKeys.client.bootstrap.servers: is set by the filter-service", failure(keys + "subjectKeys: {bootstrap: \"b:1\", client: {bootstrap.servers: x}}\n"));
        assertContains("subjectKeys.client.a: must be a string, number or boolean", failure(keys + "subjectKeys: {bootstrap: \"b:1\", client: {a: [1]}}\n"));
        assertContains("subjectKeys.size: unknown field", failure(keys + "subjectKeys: {bootstrap: \"b:1\", size: 1}\n"));
    }
}
