package io.meshcrypt.filter;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.meshcrypt.filter.config.FilterConfig;
import io.meshcrypt.filter.config.Limits;
import io.meshcrypt.filter.framing.HeldBytesBudget;
import io.meshcrypt.filter.kafka.KafkaProxy;
import io.meshcrypt.filter.transport.ExtProcServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The config's {@code limits:} reach the data path as configured: DataPathLimits builds each package's share of them. */
class DataPathLimitsTest {

    @TempDir
    Path dir;

    @Test
    void givenEveryLimitSet_whenHandedToTheDataPath_thenEachPackageGetsItsValues() throws Exception {
        Path file = Files.writeString(dir.resolve("filter.yaml"), """
                keyset: keyset.json
                limits:
                  maxFrameBytes: 1000
                  maxRequestFrameBytes: 2000
                  maxInFlightRequests: 7
                  maxDecompressedBytes: 3000
                  maxHeldBytesPerConnection: 5000
                  maxHeldBytesTotal: 9000
                  heldFrameTimeout: 5s
                  maxNewDataKeysPerRequest: 9
                  maxTopicIds: 11
                  maxExtProcMessageBytes: 4096
                """);
        Limits limits = FilterConfig.load(file).limits();

        KafkaProxy.Limits kafka = DataPathLimits.kafka(limits);
        HeldBytesBudget held = DataPathLimits.heldBytes(limits);
        ExtProcServer.Limits extProc = DataPathLimits.extProc(limits);

        assertEquals(new KafkaProxy.Limits(1000, 2000, 7, 11, 3000, 9), kafka);
        assertEquals(5000, held.perConnectionBytes());
        assertEquals(9000, held.totalBytes());
        assertEquals(Limits.REWRITE_CHARGE, held.rewriteCharge());
        assertEquals(4096, extProc.maxInboundMessageBytes());
        assertEquals(Duration.ofSeconds(5), extProc.heldFrameTimeout());
    }
}
