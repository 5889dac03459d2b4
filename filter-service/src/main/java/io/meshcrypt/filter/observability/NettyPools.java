package io.meshcrypt.filter.observability;

import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.config.MeterFilter;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufAllocatorMetricProvider;
import io.netty.buffer.PooledByteBufAllocator;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Netty buffer allocators of this process, for {@code netty_allocator_*}. grpc-netty does not use Netty's default
 * allocator: unless {@code -Dio.grpc.netty.useCustomAllocator=false}, its server and channels share a pooled allocator
 * of their own (smaller chunks), which only its package-private {@code io.grpc.netty.Utils.getByteBufAllocator} hands
 * out. That is where every ext_proc message is read and written, so it is the pool worth watching; it is looked up by
 * reflection and, should a grpc-netty upgrade move it, left out with a warning rather than failing the service.
 * Netty's {@link PooledByteBufAllocator#DEFAULT} is bound too (the same object when gRPC is told to use it).
 */
final class NettyPools {
    private static final Logger log = LoggerFactory.getLogger(NettyPools.class);
    private static final String GRPC_UTILS = "io.grpc.netty.Utils";
    private static final Set<String> IN_BYTES =
            Set.of("netty.allocator.memory.used", "netty.allocator.memory.pinned", "netty.allocator.pooled.chunk.size");

    /** Micrometer's Netty binder declares no units: bytes, so the Prometheus names end in {@code _bytes}. */
    static final MeterFilter UNITS = new MeterFilter() {
        @Override
        public Meter.Id map(Meter.Id id) {
            return IN_BYTES.contains(id.getName()) && id.getBaseUnit() == null ? id.withBaseUnit("bytes") : id;
        }
    };

    private NettyPools() {
    }

    /** @return gRPC's allocator (when found and measurable) and Netty's default, each once */
    static List<ByteBufAllocatorMetricProvider> allocators() {
        List<ByteBufAllocatorMetricProvider> allocators = new ArrayList<>(2);
        ByteBufAllocator grpc = grpcAllocator();
        if (grpc instanceof ByteBufAllocatorMetricProvider measurable) {
            allocators.add(measurable);
        }
        if (grpc != PooledByteBufAllocator.DEFAULT) {
            allocators.add(PooledByteBufAllocator.DEFAULT);
        }
        return allocators;
    }

    /** @return the allocator grpc-netty's servers use ({@code forceHeapBuffer} false, its default), or null */
    static ByteBufAllocator grpcAllocator() {
        try {
            Method get = Class.forName(GRPC_UTILS).getDeclaredMethod("getByteBufAllocator", boolean.class);
            get.setAccessible(true);
            return (ByteBufAllocator) get.invoke(null, false);
        } catch (ReflectiveOperationException | RuntimeException e) {
            log.warn("gRPC's Netty buffer pool is not measured (grpc-netty changed?): {}", e.toString());
            return null;
        }
    }
}
