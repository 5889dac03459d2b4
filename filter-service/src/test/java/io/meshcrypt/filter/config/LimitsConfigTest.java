package io.meshcrypt.filter.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.meshconfig.yaml.ConfigException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class LimitsConfigTest {

    @TempDir
    Path dir;

    private Path write(String yaml) throws Exception {
        Path file = dir.resolve("filter.yaml");
        Files.writeString(file, yaml);
        return file;
    }

    @Test
    void givenNoLimitsSection_whenLoaded_thenEveryDefault() throws Exception {
        Limits limits = FilterConfig.load(write("keyset: k.json\n")).limits();

        assertEquals(104_857_600, limits.maxFrameBytes());
        assertEquals(104_857_600, limits.maxRequestFrameBytes());
        assertEquals(4096, limits.maxInFlightRequests());
        assertEquals(67_108_864, limits.maxDecompressedBytes());
        assertEquals(2 * (104_857_600L + 4), limits.maxHeldBytesPerConnection());
        assertEquals(Math.max(3 * 104_857_604L, Runtime.getRuntime().maxMemory() / 2), limits.maxHeldBytesTotal());
        assertEquals(Duration.ofSeconds(30), limits.heldFrameTimeout());
        assertEquals(50, limits.newDataKeysPerSecond());
        assertEquals(200, limits.newDataKeysBurst());
        assertEquals(100_000, limits.maxTopicIds());
        assertEquals(64 * 1024 * 1024, limits.maxExtProcMessageBytes());
    }

    @Test
    void givenEveryLimit_whenLoaded_thenEveryValueRead() throws Exception {
        FilterConfig config = FilterConfig.load(write("""
                keyset: k.json
                limits:
                  maxFrameBytes: 1000000
                  maxRequestFrameBytes: 2000000
                  maxInFlightRequests: 64
                  maxDecompressedBytes: 3000000
                  maxHeldBytesPerConnection: 4000000
                  maxHeldBytesTotal: 50000000000
                  heldFrameTimeout: 1500ms
                  newDataKeysPerSecond: 5
                  newDataKeysBurst: 9
                  maxTopicIds: 777
                  maxExtProcMessageBytes: 1048576
                """));

        assertEquals(new Limits(1_000_000, 2_000_000, 64, 3_000_000, 4_000_000L, 50_000_000_000L,
                Duration.ofMillis(1500), 5, 9, 100, 777, 1_048_576), config.limits());
        assertEquals(1_000_000, config.maxFrameBytes(), "the top-level accessor follows limits.maxFrameBytes");
    }

    @Test
    void givenTopLevelMaxFrameBytes_whenLoaded_thenItStillWorksAndHeldDefaultsFollowIt() throws Exception {
        FilterConfig config = FilterConfig.load(write("keyset: k.json\nmaxFrameBytes: 1048576\n"));

        assertEquals(1_048_576, config.limits().maxFrameBytes());
        assertEquals(1_048_576, config.maxFrameBytes());
        assertEquals(2 * (1_048_576L + 4), config.limits().maxHeldBytesPerConnection());
    }

    @Test
    void givenDurations_whenLoaded_thenEachUnitRead() throws Exception {
        assertEquals(Duration.ofSeconds(45), FilterConfig.load(write("keyset: k.json\nlimits:\n  heldFrameTimeout: 45s\n"))
                .limits().heldFrameTimeout());
        assertEquals(Duration.ofMinutes(2), FilterConfig.load(write("keyset: k.json\nlimits:\n  heldFrameTimeout: 2m\n"))
                .limits().heldFrameTimeout());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
            unknown key              | limits:\\n  maxFrameByte: 5                          | 3:3 | limits.maxFrameByte: unknown field (expected one of maxFrameBytes, maxRequestFrameBytes,
            not a mapping            | limits: 5                                            | 2:9 | limits: must be a mapping (got 5)
            both frame size keys     | maxFrameBytes: 5\\nlimits:\\n  maxFrameBytes: 5        | 4:3 | limits.maxFrameBytes: also set at the top level (line 2)
            zero in flight           | limits:\\n  maxInFlightRequests: 0                    | 3:3 | limits.maxInFlightRequests: must be a positive integer
            string size              | limits:\\n  maxDecompressedBytes: "64Mi"              | 3:3 | limits.maxDecompressedBytes: must be a positive integer (got "64Mi")
            held below one frame     | limits:\\n  maxFrameBytes: 1000\\n  maxHeldBytesPerConnection: 1003 | 4:3 | limits.maxHeldBytesPerConnection: must be at least maxFrameBytes + 4 = 1004
            total below one frame    | limits:\\n  maxHeldBytesTotal: 1000                   | 3:3 | limits.maxHeldBytesTotal: must be at least 3 x (maxFrameBytes + 4) = 314572812
            total below its copies   | limits:\\n  maxFrameBytes: 1000\\n  maxHeldBytesTotal: 3011 | 4:3 | limits.maxHeldBytesTotal: must be at least 3 x (maxFrameBytes + 4) = 3012
            total not a number       | limits:\\n  maxHeldBytesTotal: lots                   | 3:3 | limits.maxHeldBytesTotal: must be a positive integer number of bytes (got "lots")
            timeout without unit     | limits:\\n  heldFrameTimeout: 30                      | 3:3 | limits.heldFrameTimeout: must be a duration such as 30s, 500ms or 2m (got 30)
            timeout zero             | limits:\\n  heldFrameTimeout: 0s                      | 3:3 | limits.heldFrameTimeout: must be more than 0 and at most 1h (got 0s)
            timeout too long         | limits:\\n  heldFrameTimeout: 61m                     | 3:3 | limits.heldFrameTimeout: must be more than 0 and at most 1h (got 61m)
            negative key rate        | limits:\\n  newDataKeysPerSecond: -1                  | 3:3 | limits.newDataKeysPerSecond: must be a positive integer
            """)
    void givenInvalidLimits_whenLoaded_thenMessageNamesFileLineColumnAndField(String name, String yaml, String at,
            String expected) throws Exception {
        Path file = write("keyset: k.json\n" + yaml.replace("\\n", "\n"));

        ConfigException e = assertThrows(ConfigException.class, () -> FilterConfig.load(file));

        String prefix = file + ":" + at + ": ";
        assertTrue(e.getMessage().startsWith(prefix + expected), () -> "expected prefix <" + prefix + expected
                + "> but was <" + e.getMessage() + ">");
    }

    @Test
    void givenDefaults_whenDerived_thenTheTotalFitsOneLargestFrameBeingRewrittenAndHalfTheHeap() {
        assertEquals(3 * 1004L, Limits.defaultHeldBytesTotal(1000, 4000));
        assertEquals(500_000L, Limits.defaultHeldBytesTotal(1000, 1_000_000));
        assertEquals(3 * 1004L, Limits.minHeldBytesTotal(1000));
    }

    @Test
    void givenLimitsRecord_whenTotalBelowOneFrameBeingRewritten_thenRejected() {
        assertThrows(IllegalArgumentException.class, () -> new Limits(1000, 1, 1, 1, 1004, 3011, Duration.ofSeconds(1),
                1, 1, 1, 1, 1));
        new Limits(1000, 1, 1, 1, 1004, 3012, Duration.ofSeconds(1), 1, 1, 1, 1, 1);
    }

    @Test
    void givenLimitsRecord_whenHeldBudgetBelowOneFrame_thenRejected() {
        assertThrows(IllegalArgumentException.class, () -> new Limits(1000, 1, 1, 1, 1003, 5000, Duration.ofSeconds(1),
                1, 1, 1, 1, 1));
        assertThrows(IllegalArgumentException.class, () -> new Limits(1000, 1, 1, 1, 1004, 5000, Duration.ZERO,
                1, 1, 1, 1, 1));
    }
}
