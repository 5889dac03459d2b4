package io.meshcrypt.filter.observability;

import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.protobuf.services.HealthStatusManager;
import io.meshcrypt.filter.transport.GrpcServiceFactory;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * The standard {@code grpc.health.v1.Health} service on the ext_proc port, for Envoy's and Kubernetes' gRPC health
 * checks: SERVING while {@link Readiness} says ready, NOT_SERVING otherwise, for the server as a whole ("") and for the
 * ext_proc service. Readiness is polled once a second (the KMS turns unreachable without telling anyone).
 */
public final class GrpcHealth implements AutoCloseable {
    /** The ext_proc service name clients may ask about besides "". */
    static final String EXT_PROC = "envoy.service.ext_proc.v3.ExternalProcessor";
    private static final long POLL_MILLIS = 1000;

    private final HealthStatusManager manager = new HealthStatusManager();
    private final Readiness readiness;
    private final ScheduledExecutorService timer =
            Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().daemon().name("grpc-health").factory());

    public GrpcHealth(Readiness readiness) {
        this.readiness = readiness;
        update();
        timer.scheduleWithFixedDelay(this::update, POLL_MILLIS, POLL_MILLIS, TimeUnit.MILLISECONDS);
    }

    /** For {@code ExtProcServer.start}'s services. */
    public GrpcServiceFactory service() {
        return workers -> manager.getHealthService();
    }

    /** Sets the status from readiness now (also done once a second). */
    public void update() {
        ServingStatus status = readiness.ready() ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
        manager.setStatus(HealthStatusManager.SERVICE_NAME_ALL_SERVICES, status);
        manager.setStatus(EXT_PROC, status);
    }

    /** NOT_SERVING for good (shutting down), and stops polling. */
    @Override
    public void close() {
        timer.shutdownNow();
        manager.enterTerminalState();
    }
}
