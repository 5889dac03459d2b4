package io.meshcrypt.filter.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.envoyproxy.controlplane.cache.v3.SimpleCache;
import io.envoyproxy.controlplane.cache.v3.Snapshot;
import io.envoyproxy.controlplane.server.DiscoveryServerCallbacks;
import io.envoyproxy.controlplane.server.V3DiscoveryServer;
import io.envoyproxy.envoy.config.core.v3.DataSource;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.GenericSecret;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.Secret;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.grpc.Server;
import io.grpc.netty.NettyServerBuilder;
import io.meshcrypt.meshconfig.http.HttpRules;
import io.meshcrypt.meshconfig.mesh.Policies;
import io.meshcrypt.meshconfig.mesh.PolicyDelivery;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy.Unmatched;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** XdsPolicySource against a real java-control-plane ADS server on loopback, serving the policy as the xDS server does. */
class XdsPolicySourceTest {

    private static final String GROUP = "filter-services";
    private static final Duration WAIT = Duration.ofSeconds(10);

    private final SimpleCache<String> cache = new SimpleCache<>(node -> GROUP);
    private final List<DiscoveryRequest> requests = new CopyOnWriteArrayList<>();
    private final List<EncryptionPolicy> applied = new CopyOnWriteArrayList<>();
    private final List<HttpRules> appliedHttp = new CopyOnWriteArrayList<>();
    private Server server;
    private XdsPolicySource source;

    @AfterEach
    void stop() {
        if (source != null) {
            source.close();
        }
        if (server != null) {
            server.shutdownNow();
        }
    }

    private InetSocketAddress serve(int port) throws IOException {
        DiscoveryServerCallbacks callbacks = new DiscoveryServerCallbacks() {
            @Override
            public void onV3StreamRequest(long streamId, DiscoveryRequest request) {
                requests.add(request);
            }

            @Override
            public void onV3StreamDeltaRequest(long streamId, DeltaDiscoveryRequest request) {
            }
        };
        server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", port))
                .addService(new V3DiscoveryServer(callbacks, cache).getAggregatedDiscoveryServiceImpl())
                .build()
                .start();
        return (InetSocketAddress) server.getListenSockets().get(0);
    }

    private void publish(String version, String text) {
        Secret secret = Secret.newBuilder().setName(PolicyDelivery.RESOURCE_NAME)
                .setGenericSecret(GenericSecret.newBuilder().setSecret(DataSource.newBuilder().setInlineString(text)))
                .build();
        cache.setSnapshot(GROUP, Snapshot.create(List.of(), List.of(), List.of(), List.of(), List.of(secret), version));
    }

    private static String policy(String topic) {
        return "policy:\n  encrypt: [" + topic + "]\n  unmatched: reject\n";
    }

    private static EncryptionPolicy encrypting(String topic) {
        return EncryptionPolicy.of(List.of(topic), Unmatched.REJECT);
    }

    private void attached(InetSocketAddress address) throws Exception {
        source = XdsPolicySource.start(address, "filter-test");
        Policies first = source.awaitFirst(WAIT);
        source.attach(first, p -> {
            if (p.anyDeterministicKeys()) {
                throw new IllegalArgumentException("record keys need the record-key keyset, opened only at start");
            }
            if (p.equals(encrypting("unappliable"))) {
                throw new IllegalStateException("the proxy cannot take this policy");
            }
            applied.add(p);
        }, appliedHttp::add);
    }

    private DiscoveryRequest lastAnswer() throws InterruptedException {
        int seen = requests.size();
        Await.until(() -> requests.size() > seen, "an answer from the filter-service");
        return requests.getLast();
    }

    @Test
    void givenServedPolicy_whenStarted_thenItIsTheFirstPolicyAndAcknowledged() throws Exception {
        publish("v1", policy("orders"));
        InetSocketAddress address = serve(0);

        source = XdsPolicySource.start(address, "filter-test");
        Policies first = source.awaitFirst(WAIT);

        assertEquals(new Policies(encrypting("orders"), HttpRules.NONE), first);
        Await.until(() -> requests.stream().anyMatch(r -> r.getVersionInfo().equals("v1")), "the ACK of v1");
        DiscoveryRequest ack = requests.stream().filter(r -> r.getVersionInfo().equals("v1")).findFirst().orElseThrow();
        assertEquals(PolicyDelivery.FILTER_SERVICE_CLUSTER, requests.getFirst().getNode().getCluster());
        assertEquals(List.of(PolicyDelivery.RESOURCE_NAME), ack.getResourceNamesList());
        assertTrue(!ack.hasErrorDetail() && !ack.getResponseNonce().isEmpty());
    }

    @Test
    void givenNothingServed_whenAwaitingTheFirstPolicy_thenTheStartFails() throws Exception {
        InetSocketAddress address = serve(0);

        source = XdsPolicySource.start(address, "filter-test");

        ConfigException e = assertThrows(ConfigException.class, () -> source.awaitFirst(Duration.ofMillis(300)));
        assertTrue(e.getMessage().contains("no valid policy from the xDS server"), e.getMessage());
    }

    @Test
    void givenAnInvalidFirstPolicy_whenAwaited_thenItIsRejectedAndTheStartFails() throws Exception {
        publish("v1", "policy:\n  unmatched: drop\n");
        InetSocketAddress address = serve(0);

        source = XdsPolicySource.start(address, "filter-test");

        ConfigException e = assertThrows(ConfigException.class, () -> source.awaitFirst(Duration.ofSeconds(2)));
        assertTrue(e.getMessage().contains("policy.unmatched: must be one of passthrough, reject"), e.getMessage());
        DiscoveryRequest nack = requests.stream().filter(DiscoveryRequest::hasErrorDetail).findFirst().orElseThrow();
        assertEquals("", nack.getVersionInfo());
    }

    @Test
    void givenAttachedSource_whenANewVersionIsServed_thenItIsAppliedAndAcknowledged() throws Exception {
        publish("v1", policy("orders"));
        attached(serve(0));

        publish("v2", policy("payments") + "http:\n  rules:\n    - name: a\n");

        Await.until(() -> !applied.isEmpty() && !appliedHttp.isEmpty(), "v2 applied");
        assertEquals(List.of(encrypting("payments")), applied);
        assertEquals("a", appliedHttp.getFirst().rules().getFirst().name());
        Await.until(() -> requests.stream().anyMatch(r -> r.getVersionInfo().equals("v2") && !r.hasErrorDetail()), "the ACK of v2");
        assertNull(source.lastError());
    }

    @Test
    void givenAttachedSource_whenAnInvalidVersionIsServed_thenItIsRejectedAndTheLastGoodStays() throws Exception {
        publish("v1", policy("orders"));
        attached(serve(0));
        Await.until(() -> requests.stream().anyMatch(r -> r.getVersionInfo().equals("v1")), "the ACK of v1");

        publish("v2", "policy:\n  encrypt: orders\n");

        DiscoveryRequest nack = lastAnswer();
        assertTrue(nack.hasErrorDetail());
        assertEquals("v1", nack.getVersionInfo(), "a NACK names the version still in force");
        assertTrue(nack.getErrorDetail().getMessage().contains("meshcrypt.policy:2:3: policy.encrypt: must be a list"),
                nack.getErrorDetail().getMessage());
        assertEquals(encrypting("orders"), source.current().encryption());
        assertTrue(applied.isEmpty());
        assertTrue(source.lastError().contains("policy.encrypt"));
    }

    @Test
    void givenAttachedSource_whenAVersionNeedsTheRecordKeyKeyset_thenItIsRefusedWithANack() throws Exception {
        publish("v1", policy("orders"));
        attached(serve(0));
        Await.until(() -> requests.stream().anyMatch(r -> r.getVersionInfo().equals("v1")), "the ACK of v1");

        publish("v2", "policy:\n  encrypt: [{topic: users, keys: deterministic}]\n");

        DiscoveryRequest nack = lastAnswer();
        assertTrue(nack.getErrorDetail().getMessage().contains("record-key keyset"), nack.getErrorDetail().getMessage());
        assertEquals("v1", nack.getVersionInfo());
        assertEquals(encrypting("orders"), source.current().encryption());
    }

    @Test
    void givenAttachedSource_whenApplyingAVersionFailsUnexpectedly_thenItIsRefusedWithANackAndTheLastGoodStays() throws Exception {
        publish("v1", policy("orders"));
        attached(serve(0));
        Await.until(() -> requests.stream().anyMatch(r -> r.getVersionInfo().equals("v1")), "the ACK of v1");

        publish("v2", policy("unappliable"));

        DiscoveryRequest nack = lastAnswer();
        assertTrue(nack.hasErrorDetail(), "an answer, not silence");
        assertEquals("v1", nack.getVersionInfo());
        assertTrue(nack.getErrorDetail().getMessage().contains("the proxy cannot take this policy"),
                nack.getErrorDetail().getMessage());
        assertEquals(encrypting("orders"), source.current().encryption());
        assertTrue(applied.isEmpty());
    }

    @Test
    void givenAttachedSource_whenTheServerRestartsWithANewPolicy_thenTheSourceReconnectsAndAppliesIt() throws Exception {
        publish("v1", policy("orders"));
        InetSocketAddress address = serve(0);
        attached(address);
        server.shutdownNow().awaitTermination();

        publish("v2", policy("payments"));
        serve(address.getPort());

        Await.until(() -> applied.contains(encrypting("payments")), "v2 applied after the reconnect");
        DiscoveryRequest reopened = requests.stream().filter(r -> r.getResponseNonce().isEmpty()).toList().getLast();
        assertEquals("v1", reopened.getVersionInfo(), "a reopened stream announces the version in force");
    }
}
