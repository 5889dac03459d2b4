package io.meshcrypt.filter.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.transport.ConnectionLog;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The {@code observability:} section: absent, defaults, every key, and errors naming file, line, column and field. */
class ObservabilityConfigTest {

    private static final Path FILE = Path.of("/etc/meshcrypt/filter.yaml");

    private static FilterConfig parse(String yaml) throws ConfigException {
        return FilterConfig.parse(FILE, ("keyset: k.json\n" + yaml).getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void givenNoObservabilitySection_whenLoaded_thenNoEndpoint() throws Exception {
        assertNull(parse("").observability());
    }

    @Test
    void givenEmptySection_whenLoaded_thenLoopbackDefaults() throws Exception {
        ObservabilityConfig o = parse("observability: {}\n").observability();

        assertEquals(new ObservabilityConfig(new InetSocketAddress("127.0.0.1", 9464), 100), o);
        assertTrue(o.listen().getAddress().isLoopbackAddress());
    }

    @Test
    void givenEveryKey_whenLoaded_thenEveryValueRead() throws Exception {
        ObservabilityConfig o = parse("observability:\n  listen: 127.0.0.1:0\n  maxTopicLabels: 7\n  connectionLog: json\n")
                .observability();

        assertEquals(new ObservabilityConfig(new InetSocketAddress("127.0.0.1", 0), 7, ConnectionLog.Format.JSON), o);
    }

    @Test
    void givenNoConnectionLogKey_whenLoaded_thenTextLines() throws Exception {
        assertEquals(ConnectionLog.Format.TEXT, parse("observability: {}\n").observability().connectionLog());
    }

    @Test
    void givenConnectionLogNone_whenLoaded_thenNoLines() throws Exception {
        assertEquals(ConnectionLog.Format.NONE,
                parse("observability:\n  connectionLog: none\n").observability().connectionLog());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "observability:\\n  port: 9464\\n|3:3: observability.port: unknown field (expected one of listen, maxTopicLabels, connectionLog)",
        "observability:\\n  connectionLog: xml\\n|3:3: observability.connectionLog: must be one of text, json, none (got \"xml\")",
        "observability:\\n  connectionLog: TEXT\\n|3:3: observability.connectionLog: must be one of text, json, none",
        "observability:\\n  connectionLog: off\\n|3:3: observability.connectionLog: must be one of text, json, none (got false)",
        "observability:\\n  listen: nowhere\\n|3:3: observability.listen:",
        "observability:\\n  maxTopicLabels: 0\\n|3:3: observability.maxTopicLabels: must be a positive integer",
        "observability: 127.0.0.1:9464\\n|2:16: observability: must be a mapping",
    })
    void givenInvalidSection_whenLoaded_thenErrorNamesFileLineColumnAndField(String yaml, String expected) {
        ConfigException e = assertThrows(ConfigException.class, () -> parse(yaml.replace("\\n", "\n")));

        assertTrue(e.getMessage().startsWith(FILE + ":" + expected), e.getMessage());
    }
}
