package io.meshcrypt.filter.transport;

import io.grpc.BindableService;
import io.netty.util.concurrent.EventExecutorGroup;

/** A further service for the {@link ExtProcServer}, built on the server's worker threads (see its threading model). */
@FunctionalInterface
public interface GrpcServiceFactory {
    BindableService create(EventExecutorGroup workers);
}
