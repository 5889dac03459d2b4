package io.meshcrypt.filter;

import io.meshcrypt.filter.config.Limits;
import io.meshcrypt.filter.framing.HeldBytesBudget;
import io.meshcrypt.filter.kafka.KafkaProxy;
import io.meshcrypt.filter.transport.ExtProcServer;

/**
 * The data path's shares of the config's {@code limits:}, built here only: config imports nothing of the data path,
 * and framing, kafka and transport never read the config nor keep defaults of their own.
 */
public final class DataPathLimits {

    private DataPathLimits() {
    }

    public static KafkaProxy.Limits kafka(Limits limits) {
        return new KafkaProxy.Limits(limits.maxFrameBytes(), limits.maxRequestFrameBytes(), limits.maxInFlightRequests(),
                limits.maxTopicIds(), limits.maxDecompressedBytes(), limits.maxNewDataKeysPerRequest());
    }

    public static HeldBytesBudget heldBytes(Limits limits) {
        return new HeldBytesBudget(limits.maxHeldBytesPerConnection(), limits.maxHeldBytesTotal(), Limits.REWRITE_CHARGE);
    }

    public static ExtProcServer.Limits extProc(Limits limits) {
        return ExtProcServer.Limits.of(limits.maxExtProcMessageBytes(), limits.heldFrameTimeout());
    }
}
