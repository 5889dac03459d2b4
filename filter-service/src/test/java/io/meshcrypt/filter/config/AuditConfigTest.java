package io.meshcrypt.filter.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.meshconfig.yaml.ConfigException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The {@code audit:} section: defaults, every key, and errors naming file, line, column and field. */
class AuditConfigTest {

    private static final Path FILE = Path.of("/etc/meshcrypt/filter.yaml");

    /** Parsed as if read from {@link #FILE}. */
    private static FilterConfig parse(String yaml) throws ConfigException {
        return FilterConfig.parse(FILE, yaml.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void givenNoAuditSection_whenLoaded_thenNoTrail() throws Exception {
        assertNull(parse(("keyset: k.json\n")).audit());
    }

    @Test
    void givenFileOnly_whenLoaded_thenRelativeToTheConfigAndDefaults() throws Exception {
        AuditConfig audit = parse(("keyset: k.json\naudit:\n  file: logs/audit.jsonl\n")).audit();

        assertEquals(new AuditConfig(Path.of("/etc/meshcrypt/logs/audit.jsonl"), 10_485_760, 5, Duration.ofSeconds(60)), audit);
    }

    @Test
    void givenEveryKey_whenLoaded_thenEveryValueRead() throws Exception {
        AuditConfig audit = parse(("""
                keyset: k.json
                audit:
                  stdout: true
                  maxFileBytes: 65536
                  maxFiles: 2
                  summarySeconds: 5
                """)).audit();

        assertEquals(new AuditConfig(null, 65_536, 2, Duration.ofSeconds(5)), audit);
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "audit:\\n  file: a.jsonl\\n  rotate: daily\\n|4:3: audit.rotate: unknown field (expected one of file, stdout, maxFileBytes, maxFiles, summarySeconds)",
        "audit:\\n  file: a.jsonl\\n  stdout: true\\n|2:1: audit: set exactly one destination: file: PATH or stdout: true",
        "audit:\\n  maxFiles: 3\\n|2:1: audit: set exactly one destination",
        "audit:\\n  stdout: false\\n|3:3: audit.stdout: must be true",
        "audit:\\n  file: stdout\\n|3:3: audit.file: for standard output write stdout: true",
        "audit:\\n  file: a.jsonl\\n  maxFileBytes: 100\\n|4:3: audit.maxFileBytes: must be at least 4096 (got 100)",
        "audit:\\n  file: a.jsonl\\n  maxFiles: 0\\n|4:3: audit.maxFiles: must be a positive integer",
        "audit:\\n  file: a.jsonl\\n  summarySeconds: 1m\\n|4:3: audit.summarySeconds: must be a positive integer",
        "audit: logs/audit.jsonl\\n|2:8: audit: must be a mapping",
    })
    void givenInvalidAuditSection_whenLoaded_thenErrorNamesFileLineColumnAndField(String yaml, String expected) throws Exception {
        String file = "keyset: k.json\n" + yaml.replace("\\n", "\n");

        ConfigException e = assertThrows(ConfigException.class, () -> parse(file));

        assertTrue(e.getMessage().startsWith(FILE + ":" + expected), e.getMessage());
    }
}
