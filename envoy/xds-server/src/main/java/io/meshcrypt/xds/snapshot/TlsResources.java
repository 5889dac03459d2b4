package io.meshcrypt.xds.snapshot;

import static io.meshcrypt.xds.snapshot.StructValues.string;
import static io.meshcrypt.xds.snapshot.StructValues.struct;

import com.google.common.net.InetAddresses;
import com.google.protobuf.Any;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.core.v3.AggregatedConfigSource;
import io.envoyproxy.envoy.config.core.v3.ApiVersion;
import io.envoyproxy.envoy.config.core.v3.ConfigSource;
import io.envoyproxy.envoy.config.core.v3.DataSource;
import io.envoyproxy.envoy.config.core.v3.Metadata;
import io.envoyproxy.envoy.config.core.v3.TransportSocket;
import io.envoyproxy.envoy.config.endpoint.v3.LocalityLbEndpoints;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.CommonTlsContext;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.Secret;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.SubjectAltNameMatcher;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.TlsCertificate;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.TlsParameters;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext;
import io.envoyproxy.envoy.type.matcher.v3.StringMatcher;
import io.meshcrypt.meshconfig.mesh.Mesh;
import io.meshcrypt.meshconfig.mesh.Mesh.BrokerTls;
import io.meshcrypt.meshconfig.mesh.Mesh.CertificateFiles;
import io.meshcrypt.meshconfig.mesh.Mesh.KafkaCluster;
import java.util.Map;
import java.util.TreeMap;

/**
 * TLS transport sockets and SDS secrets. On the Kafka hops: the UpstreamTlsContext of every Envoy cluster that
 * reaches a broker of a {@code tls:} Kafka cluster, the DownstreamTlsContext of Kafka listeners with {@code tls:},
 * and the SDS secrets naming their certificate files. TLS ends in the transport socket, so the network ext_proc filter always sees plaintext Kafka.
 *
 * <p>Fail closed: the broker's certificate must chain to the cluster's {@code trustedCa} alone (no system roots) and
 * name the broker; Envoy refuses the connection otherwise. No cluster of a {@code tls:} Kafka cluster ever has a
 * plaintext socket, not even as a default.
 */
final class TlsResources {

    static final String TLS_SOCKET = "envoy.transport_sockets.tls";
    /** The endpoint metadata namespace Envoy matches {@code transport_socket_matches} against. */
    static final String SOCKET_MATCH_METADATA = "envoy.transport_socket_match";
    static final String BROKER_MATCH_KEY = "broker";

    private TlsResources() {
    }

    /** The SDS secret of a TLS Kafka cluster's client certificate (mutual TLS to its brokers). */
    static String clientCertificateSecret(String cluster) {
        return "kafka_" + cluster + "_client_certificate";
    }

    /** The SDS secret of the certificate a sidecar's listeners for {@code cluster} present to applications. */
    static String listenerCertificateSecret(String cluster) {
        return "kafka_" + cluster + "_listener_certificate";
    }

    /**
     * The socket towards broker {@code id}: its certificate must chain to {@code trustedCa} and carry the broker's
     * name as a SAN (the {@code sni} name when set; else its host: a DNS SAN, or an IP SAN for an IP literal, which
     * gets no SNI since SNI carries host names only).
     */
    static TransportSocket upstream(KafkaCluster cluster, BrokerTls tls, int id) {
        Mesh.Address broker = cluster.brokers().get(id);
        String sni = tls.sni().get(id);
        boolean ipLiteral = sni == null && EnvoyResources.IP_LITERAL.matcher(broker.host()).matches();
        SubjectAltNameMatcher san = SubjectAltNameMatcher.newBuilder()
                .setSanType(ipLiteral ? SubjectAltNameMatcher.SanType.IP_ADDRESS : SubjectAltNameMatcher.SanType.DNS)
                // Envoy compares an IP SAN in its canonical text form (RFC 5952 for IPv6)
                .setMatcher(StringMatcher.newBuilder().setExact(ipLiteral
                        ? InetAddresses.toAddrString(InetAddresses.forString(broker.host()))
                        : sni != null ? sni : broker.host()))
                .build();
        CommonTlsContext.Builder common = CommonTlsContext.newBuilder()
                .setTlsParams(TlsParameters.newBuilder()
                        .setTlsMinimumProtocolVersion(switch (tls.minVersion()) {
                            case TLS_1_2 -> TlsParameters.TlsProtocol.TLSv1_2;
                            case TLS_1_3 -> TlsParameters.TlsProtocol.TLSv1_3;
                        })
                        // Envoy's client default maximum has been TLS 1.2: allow 1.3, which minVersion may require
                        .setTlsMaximumProtocolVersion(TlsParameters.TlsProtocol.TLSv1_3))
                .setValidationContext(CertificateValidationContext.newBuilder()
                        .setTrustedCa(DataSource.newBuilder().setFilename(tls.trustedCa().toString()))
                        .addMatchTypedSubjectAltNames(san));
        if (tls.clientCertificate().isPresent()) {
            common.addTlsCertificateSdsSecretConfigs(sds(clientCertificateSecret(cluster.name())));
        }
        UpstreamTlsContext.Builder context = UpstreamTlsContext.newBuilder().setCommonTlsContext(common);
        if (!ipLiteral) {
            context.setSni(sni != null ? sni : broker.host());
        }
        return socket(Any.pack(context.build()));
    }

    /**
     * The bootstrap cluster, whose endpoints are all brokers of the cluster, with one TLS socket per broker (its own
     * SNI and SAN): each endpoint's metadata names its broker, and {@code transport_socket_matches} picks that
     * broker's socket. One cluster keeps load balancing over the brokers as without TLS. The cluster's default
     * socket, for an endpoint no match selects (none does), is the first broker's: never plaintext.
     *
     * @param plain the bootstrap cluster without TLS, its endpoints in broker id order
     */
    static Cluster bootstrap(Cluster plain, KafkaCluster cluster, BrokerTls tls) {
        Cluster.Builder builder = plain.toBuilder();
        LocalityLbEndpoints.Builder endpoints = builder.getLoadAssignmentBuilder().getEndpointsBuilder(0);
        int index = 0;
        for (Integer id : new TreeMap<>(cluster.brokers()).keySet()) {
            TransportSocket socket = upstream(cluster, tls, id);
            if (index == 0) {
                builder.setTransportSocket(socket);
            }
            Map<String, com.google.protobuf.Value> match = Map.of(BROKER_MATCH_KEY, string(id.toString()));
            endpoints.getLbEndpointsBuilder(index++)
                    .setMetadata(Metadata.newBuilder().putFilterMetadata(SOCKET_MATCH_METADATA, struct(match)));
            builder.addTransportSocketMatches(Cluster.TransportSocketMatch.newBuilder()
                    .setName("broker-" + id)
                    .setMatch(struct(match))
                    .setTransportSocket(socket));
        }
        return builder.build();
    }

    /** TLS from the application, with the listener certificate of {@code cluster} (SDS). */
    static TransportSocket downstream(String cluster) {
        DownstreamTlsContext context = DownstreamTlsContext.newBuilder()
                .setCommonTlsContext(CommonTlsContext.newBuilder()
                        .addTlsCertificateSdsSecretConfigs(sds(listenerCertificateSecret(cluster))))
                .build();
        return socket(Any.pack(context));
    }

    /**
     * A certificate and key as file references, not bytes: no private key travels over ADS, and Envoy watches the
     * files and reloads them when they are replaced (rotation without a push).
     */
    static Secret certificate(String name, CertificateFiles files) {
        return Secret.newBuilder()
                .setName(name)
                .setTlsCertificate(TlsCertificate.newBuilder()
                        .setCertificateChain(DataSource.newBuilder().setFilename(files.certificate().toString()))
                        .setPrivateKey(DataSource.newBuilder().setFilename(files.privateKey().toString())))
                .build();
    }

    /** A secret Envoy fetches over the ADS stream that configures it. */
    static SdsSecretConfig sds(String name) {
        return SdsSecretConfig.newBuilder()
                .setName(name)
                .setSdsConfig(ConfigSource.newBuilder()
                        .setAds(AggregatedConfigSource.getDefaultInstance())
                        .setResourceApiVersion(ApiVersion.V3))
                .build();
    }

    static TransportSocket socket(Any context) {
        return TransportSocket.newBuilder().setName(TLS_SOCKET).setTypedConfig(context).build();
    }
}
