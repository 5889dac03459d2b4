package io.meshcrypt.filter.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCalls;
import io.meshcrypt.filter.audit.AdminAudit;
import io.meshcrypt.filter.transport.ConnectionHandlerFactory;
import io.meshcrypt.filter.transport.ExtProcServer;
import io.meshcrypt.filter.transport.StreamIdentity;
import io.meshcrypt.meshconfig.tls.TlsFiles;
import io.meshcrypt.meshconfig.tls.TlsMaterial;
import io.meshcrypt.pki.LocalCa;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The admin API on a real gRPC server with mutual TLS from a local CA, as the filter-service serves it. */
class SubjectAdminServiceTest {
    private static final Duration DAY = Duration.ofDays(1);
    private static final String ADMIN = "spiffe://meshcrypt.local/admin";
    private static final String REF = "00112233445566778899aabbccddeeff";

    @TempDir
    Path dir;

    private final List<String> audited = new CopyOnWriteArrayList<>();
    private final List<String> forgotten = new CopyOnWriteArrayList<>();
    private final List<String> forgetThreads = new CopyOnWriteArrayList<>();
    private LocalCa ca;
    private ExtProcServer server;
    private SubjectAdminService service;

    private final AdminAudit audit = new AdminAudit() {
        @Override
        public void forgotten(String caller, String scope, String subjectRef) {
            audited.add("subject.forgotten " + caller + " " + scope + " " + subjectRef);
        }

        @Override
        public void refused(String caller, String method, String reason) {
            audited.add("admin.refused " + caller + " " + method);
        }
    };

    @BeforeEach
    void start() throws Exception {
        ca = LocalCa.openOrCreate(dir.resolve("pki"));
        LocalCa.Issued serverFiles = ca.issue("filter-service", LocalCa.spiffeId("filter-service"),
                List.of("localhost", "127.0.0.1"), DAY);
        startServer(serverFiles, (scope, subject) -> {
            forgetThreads.add(Thread.currentThread().getName());
            forgotten.add(scope + " " + subject);
            return "orders*".equals(scope) ? REF : null;
        });
    }

    private void startServer(LocalCa.Issued serverFiles, SubjectAdminService.Forgetter forgetter) throws Exception {
        TlsMaterial tls = TlsMaterial.load(new TlsFiles(serverFiles.certificate(), serverFiles.privateKey(), ca.caCertificate()));
        service = new SubjectAdminService(forgetter, new AdminAccess(Set.of(ADMIN), false, true), audit);
        ConnectionHandlerFactory none = headers -> {
            throw new IllegalStateException("no ext_proc streams in this test");
        };
        server = ExtProcServer.start(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), none,
                ExtProcServer.Limits.of(1 << 20, Duration.ofSeconds(5)).withWorkerThreads(1)
                        .withShutdownGrace(Duration.ofSeconds(1)), List.of(workers -> service), tls, StreamIdentity.CERTIFICATE);
    }

    @AfterEach
    void stop() {
        if (server != null) {
            server.close();
        }
        if (service != null) {
            service.close();
        }
    }

    private SubjectAdminClient client(String name, String spiffePath) throws Exception {
        LocalCa.Issued files = ca.issue(name, LocalCa.spiffeId(spiffePath), List.of(), DAY);
        return SubjectAdminClient.connect("127.0.0.1", server.port(),
                new TlsFiles(files.certificate(), files.privateKey(), ca.caCertificate()), Duration.ofSeconds(20));
    }

    @Test
    void givenTheAdminIdentity_whenItForgetsASubject_thenTheRefIsReturnedAndAuditedWithoutTheSubjectId() throws Exception {
        try (SubjectAdminClient admin = client("admin", "admin")) {
            assertEquals(REF, admin.forget("orders*", "customer-4711"));
        }

        assertEquals(List.of("orders* customer-4711"), forgotten);
        assertEquals(List.of("subject.forgotten " + ADMIN + " orders* " + REF), audited);
        assertFalse(audited.get(0).contains("customer-4711"), "never the subject id in the trail");
        assertTrue(forgetThreads.stream().allMatch(t -> t.equals("meshcrypt-admin")),
                "the forget ran off the gRPC transport thread: " + forgetThreads);
    }

    @Test
    void givenASidecarIdentity_whenItCallsForget_thenPermissionDeniedAuditedAndNothingForgotten() throws Exception {
        StatusRuntimeException e;
        try (SubjectAdminClient sidecar = client("sidecar-kafka-apps", "sidecar/kafka-apps")) {
            e = assertThrows(StatusRuntimeException.class, () -> sidecar.forget("orders*", "customer-4711"));
        }

        assertEquals(Status.Code.PERMISSION_DENIED, e.getStatus().getCode());
        assertEquals(List.of(), forgotten);
        assertEquals(List.of("admin.refused spiffe://meshcrypt.local/sidecar/kafka-apps "
                + SubjectAdminApi.FORGET.getFullMethodName()), audited);
    }

    @Test
    void givenAScopeWithoutSubjectKeys_whenForgotten_thenNotFoundAndNoAuditLine() throws Exception {
        try (SubjectAdminClient admin = client("admin", "admin")) {
            StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> admin.forget("nope*", "x"));
            assertEquals(Status.Code.NOT_FOUND, e.getStatus().getCode());
        }
        assertEquals(List.of(), audited);
    }

    @Test
    void givenRequestsAsGrpcurlWritesThem_whenCalled_thenTopicPatternNamesTheScopeAndTyposOrBothNamesAreRefused()
            throws Exception {
        LocalCa.Issued files = ca.issue("admin", LocalCa.spiffeId("admin"), List.of(), DAY);
        TlsMaterial tls = TlsMaterial.load(new TlsFiles(files.certificate(), files.privateKey(), ca.caCertificate()));
        ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", server.port())
                .sslContext(io.grpc.netty.GrpcSslContexts.forClient().keyManager(tls.keyManager())
                        .trustManager(tls.trustManager()).build()).build();
        try {
            Struct answer = call(channel, Map.of("topicPattern", "orders*", "subject", "customer-4711"));
            assertEquals(REF, answer.getFieldsOrThrow("subjectRef").getStringValue());
            assertEquals("orders*", answer.getFieldsOrThrow("scope").getStringValue());

            for (Map<String, String> invalid : List.of(Map.of("topicPatern", "orders*", "subject", "s"),
                    Map.of("scope", "orders*", "topicPattern", "orders*", "subject", "s"),
                    Map.of("scope", "orders*"), Map.of("scope", "", "subject", "s"))) {
                StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> call(channel, invalid));
                assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode(), invalid.toString());
            }
        } finally {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        assertEquals(List.of("orders* customer-4711"), forgotten);
    }

    private static Struct call(ManagedChannel channel, Map<String, String> fields) {
        Struct.Builder request = Struct.newBuilder();
        fields.forEach((k, v) -> request.putFields(k, Value.newBuilder().setStringValue(v).build()));
        return ClientCalls.blockingUnaryCall(channel, SubjectAdminApi.FORGET,
                CallOptions.DEFAULT.withDeadlineAfter(20, TimeUnit.SECONDS), request.build());
    }

    @Test
    void givenASlowForget_whenAnotherCallComes_thenTheTransportThreadIsNotBlocked() throws Exception {
        server.close();
        service.close();
        CountDownLatch release = new CountDownLatch(1);
        LocalCa.Issued serverFiles = ca.files("filter-service");
        startServer(serverFiles, (scope, subject) -> {
            try {
                release.await(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return REF;
        });
        try (SubjectAdminClient admin = client("admin", "admin");
             SubjectAdminClient sidecar = client("sidecar-a", "sidecar/a")) {
            Thread slow = Thread.ofPlatform().start(() -> admin.forget("orders*", "s"));
            // the one transport thread still answers while the forget waits on its own thread
            StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> sidecar.forget("orders*", "s"));
            assertEquals(Status.Code.PERMISSION_DENIED, e.getStatus().getCode());
            release.countDown();
            slow.join(30_000);
            assertFalse(slow.isAlive());
        }
        assertNotEquals(List.of(), audited);
    }

    @Test
    void givenPlaintext_whenLoopbackIsNotEnabled_thenNobodyIsAllowed() {
        assertFalse(new AdminAccess(Set.of(), false, false).allows(null));
        assertTrue(new AdminAccess(Set.of(), true, false).allows(null));
        assertFalse(new AdminAccess(Set.of(ADMIN), false, true).allows(null), "TLS without identity");
        assertTrue(new AdminAccess(Set.of(ADMIN), false, true).allows(ADMIN));
    }
}
