package io.meshcrypt.filter;

import io.meshcrypt.filter.config.Limits;
import io.meshcrypt.filter.kafka.KafkaProxy;
import io.meshcrypt.filter.transport.ExtProcServer;

/**
 * The one source of limits for tests that do not test a limit: the config's defaults, handed to the data path as the
 * filter-service hands them ({@link DataPathLimits}), so tests run with the limits a service runs with by default.
 */
public final class TestLimits {

    /** What a filter config without {@code limits:} gets. */
    public static final Limits CONFIG = Limits.defaults();

    private TestLimits() {
    }

    public static KafkaProxy.Limits kafka() {
        return DataPathLimits.kafka(CONFIG);
    }

    /** The defaults but {@code maxFrameBytes}. */
    public static KafkaProxy.Limits kafka(int maxFrameBytes) {
        return kafka().withMaxFrameBytes(maxFrameBytes);
    }

    public static ExtProcServer.Limits extProc() {
        return DataPathLimits.extProc(CONFIG);
    }
}
