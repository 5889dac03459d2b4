package io.meshcrypt.filter.admin;

import com.google.protobuf.Struct;
import io.grpc.BindableService;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.stub.ServerCalls;
import io.grpc.stub.StreamObserver;
import io.meshcrypt.filter.audit.AdminAudit;
import io.meshcrypt.filter.transport.StreamIdentity;
import io.meshcrypt.filter.transport.WarningRateLimit;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.Objects;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code meshcrypt.admin.v1.SubjectAdmin} ({@link SubjectAdminApi}) on the filter-service's gRPC port: forgets a
 * subject for an authorised caller ({@link AdminAccess}, identity from {@link StreamIdentity#CURRENT}, as ext_proc
 * streams get theirs). The forget appends the subject's forgotten marker to the subject-key topic, which every replica
 * follows, so one call on any replica forgets the subject everywhere.
 *
 * <p>The append waits for the broker, so it runs on one thread of this service, never on the gRPC transport thread
 * (which is a Kafka connection's worker); a few calls queue, more are refused with RESOURCE_EXHAUSTED. Each forgotten
 * subject is written to the audit trail as {@code subject.forgotten} (caller, scope, subject ref; never the subject
 * id), each refused call as {@code admin.refused}.
 */
public final class SubjectAdminService implements BindableService, AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(SubjectAdminService.class);
    /** Calls waiting for the forget thread: an operator's batch, not a flood. */
    static final int MAX_QUEUED = 64;
    /** Longest subject id accepted (bytes of UTF-8): ids are record keys, header or JSON values. */
    static final int MAX_SUBJECT_BYTES = 64 * 1024;
    /** Longest scope (topic pattern) accepted: a Kafka topic name is at most 249 characters. */
    static final int MAX_PATTERN_CHARS = 1024;
    private static final WarningRateLimit REFUSALS = WarningRateLimit.perTenSeconds("admin refusal", 10);

    /** Forgets one subject; may wait for the broker. */
    @FunctionalInterface
    public interface Forgetter {
        /**
         * @return the subject ref (hex), or null when the scope has no subject keys (nothing was ever encrypted under
         *     a subject key of it)
         */
        String forget(String scope, String subject) throws GeneralSecurityException;
    }

    private final Forgetter forgetter;
    private final AdminAccess access;
    private final AdminAudit audit;
    private final ThreadPoolExecutor worker;

    /** @param forgetter null when this filter-service has no subject keys (every forget fails FAILED_PRECONDITION) */
    public SubjectAdminService(Forgetter forgetter, AdminAccess access, AdminAudit audit) {
        this.forgetter = forgetter;
        this.access = Objects.requireNonNull(access, "access");
        this.audit = Objects.requireNonNull(audit, "audit");
        this.worker = new ThreadPoolExecutor(1, 1, 0, TimeUnit.MILLISECONDS, new ArrayBlockingQueue<>(MAX_QUEUED),
                Thread.ofPlatform().daemon().name("meshcrypt-admin").factory());
        log.info("admin API {}: callers allowed: {}", SubjectAdminApi.SERVICE, access.describe());
    }

    @Override
    public ServerServiceDefinition bindService() {
        return ServerServiceDefinition.builder(SubjectAdminApi.SERVICE)
                .addMethod(SubjectAdminApi.FORGET, ServerCalls.asyncUnaryCall(this::forget))
                .build();
    }

    private void forget(Struct request, StreamObserver<Struct> response) {
        String caller = StreamIdentity.CURRENT.get();
        if (!access.allows(caller)) {
            String reason = access.refusal(caller);
            audit.refused(caller, SubjectAdminApi.FORGET.getFullMethodName(), reason);
            String note = REFUSALS.admit();
            if (note != null) {
                log.warn("admin call refused: {} (caller {}){}", reason, caller == null ? "without identity" : caller, note);
            }
            response.onError(Status.PERMISSION_DENIED.withDescription(reason).asRuntimeException());
            return;
        }
        String named = SubjectAdminApi.string(request, SubjectAdminApi.SCOPE);
        String topicPattern = SubjectAdminApi.string(request, SubjectAdminApi.TOPIC_PATTERN);
        // an entry without a scope of its own: its topic pattern is the scope
        String scope = named == null ? topicPattern : named;
        String subject = SubjectAdminApi.string(request, SubjectAdminApi.SUBJECT);
        String invalid = invalid(request, scope, subject);
        if (invalid == null && (named == null) == (topicPattern == null)) {
            invalid = "give exactly one of " + SubjectAdminApi.SCOPE + " and " + SubjectAdminApi.TOPIC_PATTERN;
        }
        if (invalid != null) {
            response.onError(Status.INVALID_ARGUMENT.withDescription(invalid).asRuntimeException());
            return;
        }
        if (forgetter == null) {
            response.onError(Status.FAILED_PRECONDITION.withDescription("this filter-service has no subjectKeys: section"
                    + " (no subject keys to forget)").asRuntimeException());
            return;
        }
        try {
            worker.execute(() -> forgetNow(caller, scope, subject, response));
        } catch (RejectedExecutionException e) {
            response.onError(Status.RESOURCE_EXHAUSTED.withDescription("more than " + MAX_QUEUED
                    + " forget calls waiting; retry").asRuntimeException());
        }
    }

    /** On the forget thread. */
    private void forgetNow(String caller, String scope, String subject, StreamObserver<Struct> response) {
        String ref;
        try {
            ref = forgetter.forget(scope, subject);
        } catch (GeneralSecurityException | RuntimeException e) {
            log.warn("forgetting a subject of scope {} failed: {}", scope, e.toString());
            response.onError(Status.UNAVAILABLE.withDescription("the forgotten marker was not written: " + e.getMessage())
                    .asRuntimeException());
            return;
        }
        if (ref == null) {
            response.onError(Status.NOT_FOUND.withDescription("scope " + scope + " has no subject keys: nothing was ever"
                    + " encrypted under a subject key of it (check the topic pattern against the policy)").asRuntimeException());
            return;
        }
        audit.forgotten(caller, scope, ref);
        log.info("subject forgotten by {}: scope {}, subject ref {}", caller == null ? "a local caller" : caller, scope, ref);
        try {
            response.onNext(SubjectAdminApi.forgetResponse(scope, ref));
            response.onCompleted();
        } catch (RuntimeException e) {
            // the caller went away (cancelled): the subject is forgotten all the same, and audited
            log.info("the caller of a forget went away before its answer: {}", e.toString());
        }
    }

    /** @return what is wrong with the request, or null */
    private static String invalid(Struct request, String scope, String subject) {
        for (String field : request.getFieldsMap().keySet()) {
            if (!field.equals(SubjectAdminApi.SCOPE) && !field.equals(SubjectAdminApi.TOPIC_PATTERN)
                    && !field.equals(SubjectAdminApi.SUBJECT)) {
                return "unknown field " + field + " (expected " + SubjectAdminApi.SCOPE + " or "
                        + SubjectAdminApi.TOPIC_PATTERN + ", and " + SubjectAdminApi.SUBJECT + ")";
            }
        }
        if (scope == null || scope.isEmpty() || scope.length() > MAX_PATTERN_CHARS) {
            return SubjectAdminApi.SCOPE + " (or " + SubjectAdminApi.TOPIC_PATTERN + ") must be a non-empty string of at"
                    + " most " + MAX_PATTERN_CHARS + " characters";
        }
        if (subject == null || subject.isEmpty() || subject.getBytes(StandardCharsets.UTF_8).length > MAX_SUBJECT_BYTES) {
            return SubjectAdminApi.SUBJECT + " must be a non-empty string of at most " + MAX_SUBJECT_BYTES + " bytes";
        }
        return null;
    }

    /** Lets queued forgets finish (briefly), then stops the thread. */
    @Override
    public void close() {
        worker.shutdown();
        try {
            worker.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
