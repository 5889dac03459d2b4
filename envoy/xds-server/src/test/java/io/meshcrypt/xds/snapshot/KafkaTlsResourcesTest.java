package io.meshcrypt.xds.snapshot;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.core.v3.TransportSocket;
import io.envoyproxy.envoy.config.endpoint.v3.LbEndpoint;
import io.envoyproxy.envoy.config.listener.v3.FilterChain;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.CommonTlsContext;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.Secret;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.SubjectAltNameMatcher;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.TlsParameters;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext;
import io.meshcrypt.meshconfig.mesh.Mesh;
import io.meshcrypt.meshconfig.mesh.MeshReader;
import io.meshcrypt.xds.snapshot.EnvoyResources.Resources;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The TLS of the Kafka hops: towards the brokers of a {@code tls:} Kafka cluster, and from clients of a {@code tls:} listener. */
class KafkaTlsResourcesTest {

    private static final String MESH = """
            filterService: 127.0.0.1:50051
            kafkaClusters:
              secure:
                brokers:
                  1: kafka-1.example.com:9093
                  2: 10.0.0.2:9093
                  3: "[fd00:0:0::3]:9093"
                tls:
                  trustedCa: pki/brokers-ca.pem
                  certificate: pki/client.pem
                  privateKey: pki/client-key.pem
                  sni: {2: broker-2.example.com}
                  minVersion: "1.3"
              edge:
                brokers: {7: 10.0.0.7:9093}
                tls: {trustedCa: /pki/edge-ca.pem}
              plain:
                brokers: {5: 10.0.0.5:9092}
            sidecars:
              app:
                kafka:
                  secure:
                    bootstrap: 127.0.0.1:19192
                    brokers: {1: 127.0.0.1:19193, 2: 127.0.0.1:19194, 3: 127.0.0.1:19195}
                    tls: {certificate: pki/listener.pem, privateKey: pki/listener-key.pem}
                  plain:
                    bootstrap: 127.0.0.1:29192
                    brokers: {5: 127.0.0.1:29193}
              intercepted:
                kafka:
                  edge: {bootstrap: 127.0.0.1:39192, brokers: {7: 127.0.0.1:39193}}
                transparent:
                  listen: 127.0.0.1:15001
                  kafka: [plain, edge]
              all-tls:
                transparent:
                  listen: 127.0.0.1:15001
                  kafka: [edge]
            policy:
              encrypt: ["orders-*"]
            """;

    private static Resources resources(String node) throws Exception {
        Mesh mesh = MeshReader.parse(Path.of("/etc/meshcrypt/mesh.yaml"), MESH.getBytes(StandardCharsets.UTF_8));
        return EnvoyResources.standard().forSidecar(mesh, mesh.sidecars().get(node), "1-abc");
    }

    private static Cluster cluster(Resources resources, String name) {
        List<Cluster> matching = resources.clusters().stream().filter(c -> c.getName().equals(name)).toList();
        assertEquals(1, matching.size(), "one cluster " + name);
        return matching.getFirst();
    }

    private static Listener listener(Resources resources, String name) {
        return resources.listeners().stream().filter(l -> l.getName().equals(name)).findFirst().orElseThrow();
    }

    private static UpstreamTlsContext upstream(TransportSocket socket) throws Exception {
        assertEquals("envoy.transport_sockets.tls", socket.getName());
        return socket.getTypedConfig().unpack(UpstreamTlsContext.class);
    }

    private static SubjectAltNameMatcher onlySan(UpstreamTlsContext context) {
        List<SubjectAltNameMatcher> sans = context.getCommonTlsContext().getValidationContext().getMatchTypedSubjectAltNamesList();
        assertEquals(1, sans.size(), "exactly one accepted name");
        return sans.getFirst();
    }

    @Test
    void givenABrokerWithADnsHost_whenResourcesBuilt_thenItsClusterSendsTheHostAsSniAndRequiresItAsDnsSan() throws Exception {
        UpstreamTlsContext tls = upstream(cluster(resources("app"), "kafka_secure_broker_1").getTransportSocket());

        assertEquals("kafka-1.example.com", tls.getSni());
        assertEquals(SubjectAltNameMatcher.SanType.DNS, onlySan(tls).getSanType());
        assertEquals("kafka-1.example.com", onlySan(tls).getMatcher().getExact());
        CommonTlsContext common = tls.getCommonTlsContext();
        assertEquals("/etc/meshcrypt/pki/brokers-ca.pem", common.getValidationContext().getTrustedCa().getFilename());
        assertEquals(TlsParameters.TlsProtocol.TLSv1_3, common.getTlsParams().getTlsMinimumProtocolVersion());
        assertEquals("kafka_secure_client_certificate", common.getTlsCertificateSdsSecretConfigs(0).getName());
        assertTrue(common.getTlsCertificateSdsSecretConfigs(0).getSdsConfig().hasAds(), "the secret comes over the same ADS stream");
        assertEquals(0, common.getTlsCertificatesCount(), "no key material inline");
    }

    @Test
    void givenASniNameForABroker_whenResourcesBuilt_thenItIsSentAndRequiredInsteadOfTheAddress() throws Exception {
        UpstreamTlsContext tls = upstream(cluster(resources("app"), "kafka_secure_broker_2").getTransportSocket());

        assertEquals("broker-2.example.com", tls.getSni());
        assertEquals(SubjectAltNameMatcher.SanType.DNS, onlySan(tls).getSanType());
        assertEquals("broker-2.example.com", onlySan(tls).getMatcher().getExact());
    }

    @Test
    void givenAnIpLiteralBroker_whenResourcesBuilt_thenNoSniAndTheCanonicalIpIsRequiredAsIpSan() throws Exception {
        UpstreamTlsContext v6 = upstream(cluster(resources("app"), "kafka_secure_broker_3").getTransportSocket());
        UpstreamTlsContext v4 = upstream(cluster(resources("intercepted"), "kafka_edge_broker_7").getTransportSocket());

        assertEquals("", v6.getSni());
        assertEquals(SubjectAltNameMatcher.SanType.IP_ADDRESS, onlySan(v6).getSanType());
        assertEquals("fd00::3", onlySan(v6).getMatcher().getExact(), "the form Envoy prints an IP SAN in");
        assertEquals("", v4.getSni());
        assertEquals("10.0.0.7", onlySan(v4).getMatcher().getExact());
        assertEquals(TlsParameters.TlsProtocol.TLSv1_2, v4.getCommonTlsContext().getTlsParams().getTlsMinimumProtocolVersion(), "default");
        assertEquals(0, v4.getCommonTlsContext().getTlsCertificateSdsSecretConfigsCount(), "no client certificate configured");
    }

    @Test
    void givenTheBootstrapCluster_whenResourcesBuilt_thenEachEndpointGetsItsOwnBrokersSocketAndNoneIsPlaintext() throws Exception {
        Resources resources = resources("app");
        Cluster bootstrap = cluster(resources, "kafka_secure_bootstrap");

        List<LbEndpoint> endpoints = bootstrap.getLoadAssignment().getEndpoints(0).getLbEndpointsList();
        assertEquals(3, endpoints.size());
        assertEquals(3, bootstrap.getTransportSocketMatchesCount());
        for (int i = 0; i < endpoints.size(); i++) {
            String id = Integer.toString(i + 1);
            assertEquals(id, endpoints.get(i).getMetadata().getFilterMetadataOrThrow("envoy.transport_socket_match")
                    .getFieldsOrThrow("broker").getStringValue());
            Cluster.TransportSocketMatch match = bootstrap.getTransportSocketMatches(i);
            assertEquals(id, match.getMatch().getFieldsOrThrow("broker").getStringValue());
            assertEquals(cluster(resources, "kafka_secure_broker_" + id).getTransportSocket(), match.getTransportSocket(),
                    "broker " + id + " gets the same socket through the bootstrap cluster as through its own");
        }
        assertEquals(bootstrap.getTransportSocketMatches(0).getTransportSocket(), bootstrap.getTransportSocket(),
                "the default socket is TLS too");
    }

    @Test
    void givenAClientCertificate_whenResourcesBuilt_thenOneSecretNamesItsFiles() throws Exception {
        List<Secret> secrets = resources("app").secrets();

        assertEquals(List.of("kafka_secure_client_certificate", "kafka_secure_listener_certificate"), secrets.stream().map(Secret::getName).toList());
        assertEquals("/etc/meshcrypt/pki/client.pem", secrets.get(0).getTlsCertificate().getCertificateChain().getFilename());
        assertEquals("/etc/meshcrypt/pki/client-key.pem", secrets.get(0).getTlsCertificate().getPrivateKey().getFilename());
    }

    @Test
    void givenAListenerWithTls_whenResourcesBuilt_thenEveryListenerOfThatClusterTerminatesTlsBeforeExtProc() throws Exception {
        Resources resources = resources("app");

        for (String name : List.of("kafka_secure_bootstrap", "kafka_secure_broker_1", "kafka_secure_broker_2", "kafka_secure_broker_3")) {
            FilterChain chain = listener(resources, name).getFilterChains(0);
            DownstreamTlsContext tls = chain.getTransportSocket().getTypedConfig().unpack(DownstreamTlsContext.class);
            assertEquals("kafka_secure_listener_certificate", tls.getCommonTlsContext().getTlsCertificateSdsSecretConfigs(0).getName(), name);
            assertEquals("envoy.filters.network.ext_proc", chain.getFilters(0).getName(), name);
        }
        Secret listenerCertificate = resources.secrets().get(1);
        assertEquals("/etc/meshcrypt/pki/listener.pem", listenerCertificate.getTlsCertificate().getCertificateChain().getFilename());
        assertEquals("/etc/meshcrypt/pki/listener-key.pem", listenerCertificate.getTlsCertificate().getPrivateKey().getFilename());
    }

    @Test
    void givenAPlaintextClusterNextToTlsOnes_whenResourcesBuilt_thenItsListenersAndClustersHaveNoTls() throws Exception {
        Resources resources = resources("app");

        assertFalse(listener(resources, "kafka_plain_bootstrap").getFilterChains(0).hasTransportSocket());
        assertFalse(cluster(resources, "kafka_plain_bootstrap").hasTransportSocket());
        assertEquals(0, cluster(resources, "kafka_plain_bootstrap").getTransportSocketMatchesCount());
        assertFalse(cluster(resources, "kafka_plain_broker_5").hasTransportSocket());
    }

    @Test
    void givenATransparentTlsCluster_whenResourcesBuilt_thenItsChainsGoToTheBrokersTlsClusterAndPlainOnesToTheOriginalDestination() throws Exception {
        Resources resources = resources("intercepted");

        Listener transparent = listener(resources, EnvoyResources.TRANSPARENT_LISTENER);
        assertEquals(List.of("edge.broker-7", "plain.broker-5"), transparent.getFilterChainsList().stream().map(FilterChain::getName).toList());
        assertEquals("kafka_edge_broker_7", transparent.getFilterChains(0).getFilters(1).getTypedConfig().unpack(TcpProxy.class).getCluster());
        assertEquals("original_destination", transparent.getFilterChains(1).getFilters(1).getTypedConfig().unpack(TcpProxy.class).getCluster());
        // one cluster for the broker, shared with the explicit listener of the same Kafka cluster (cluster() asserts one)
        assertEquals("10.0.0.7", onlySan(upstream(cluster(resources, "kafka_edge_broker_7").getTransportSocket())).getMatcher().getExact());
        cluster(resources, EnvoyResources.ORIGINAL_DESTINATION_CLUSTER);
    }

    @Test
    void givenOnlyTlsClustersIntercepted_whenResourcesBuilt_thenThereIsNoOriginalDestinationCluster() throws Exception {
        Resources resources = resources("all-tls");

        assertEquals(List.of("meshcrypt_mesh_version", "filter_service", "kafka_edge_broker_7"),
                resources.clusters().stream().map(Cluster::getName).toList());
        assertTrue(cluster(resources, "kafka_edge_broker_7").hasTransportSocket());
    }
}
