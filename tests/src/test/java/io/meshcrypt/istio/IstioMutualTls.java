package io.meshcrypt.istio;

import static io.meshcrypt.istio.IstioManifests.FILTER_CLUSTER;
import static io.meshcrypt.istio.IstioManifests.JSON;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.meshcrypt.pki.LocalCa;
import java.net.URI;
import java.nio.file.Path;

/**
 * Both ends of Istio's mutual TLS on the filter-service's port, as istiod (1.20 to 1.31) builds them, with the
 * workload certificates read from files where Istio serves them over SDS (the certificate is what matters, not how it
 * arrives):
 * <ul>
 *   <li>the client end, on an application's sidecar: the filter-service's outbound cluster with auto mTLS
 *   ({@code pilot/pkg/networking/core/cluster_tls.go}: ISTIO_MUTUAL for endpoints labelled {@code tlsMode: istio},
 *   the workload certificate, SNI {@code outbound_.9090_._.<host>}, ALPN {@code istio-peer-exchange, istio, h2}, the
 *   server's service-account SAN);</li>
 *   <li>the server end, on the filter-service's own sidecar: the inbound HTTP filter chain of a {@code grpc-*} port
 *   ({@code pilot/pkg/security/authn/utils/utils.go} BuildInboundTLS: client certificate required, ALPN
 *   {@code h2, http/1.1}; {@code pilot/pkg/networking/core/listener_inbound.go} buildSidecarInboundHTTPOpts:
 *   {@code forward_client_cert_details: APPEND_FORWARD}, {@code set_current_client_cert_details} subject, uri, dns) and
 *   the inbound cluster to the application, plaintext HTTP/2 from Istio's passthrough source address 127.0.0.6
 *   ({@code cluster_builder.go} buildInboundCluster).</li>
 * </ul>
 */
final class IstioMutualTls {

    /** Istio's default trust domain. */
    static final String TRUST_DOMAIN = "cluster.local";
    /** The SPIFFE id of the filter-service's pods: its ServiceAccount in its namespace. */
    static final URI FILTER_SERVICE_ID = workloadId("meshcrypt", "meshcrypt-filter-service");
    /** The filter-service's Service, as Kubernetes DNS names it. */
    static final String FILTER_SERVICE_HOST = "meshcrypt-filter-service.meshcrypt.svc.cluster.local";
    /** The SNI an application's sidecar sends to the filter-service (Istio's name for its port 9090 subset). */
    static final String FILTER_SERVICE_SNI = "outbound_.9090_._.meshcrypt-filter-service.meshcrypt.svc.cluster.local";
    /** Istio's inbound cluster of the filter-service's port. */
    static final String INBOUND_CLUSTER = "inbound|9090||";
    /** The source address of Istio's inbound passthrough: how the filter-service sees its sidecar's connections. */
    static final String INBOUND_PASSTHROUGH_SOURCE = "127.0.0.6";

    private static final String TLS_SOCKET = "envoy.transport_sockets.tls";

    private IstioMutualTls() {
    }

    /** {@code spiffe://cluster.local/ns/NAMESPACE/sa/SERVICE_ACCOUNT}, the identity Istio gives a pod. */
    static URI workloadId(String namespace, String serviceAccount) {
        return URI.create("spiffe://" + TRUST_DOMAIN + "/ns/" + namespace + "/sa/" + serviceAccount);
    }

    /**
     * The filter-service's outbound cluster ({@link IstioManifests#FILTER_CLUSTER}) of an application's sidecar, at
     * {@code 127.0.0.1:port}: HTTP/2, and mutual TLS with {@code workload}'s certificate to endpoints labelled
     * {@code tlsMode: istio} (the filter-service's pods have a sidecar), plaintext to any other.
     */
    static ObjectNode filterServiceCluster(int port, LocalCa.Issued workload, Path trustedCa) {
        ObjectNode cluster = IstioManifests.grpcCluster(FILTER_CLUSTER, "127.0.0.1", port);
        ((ObjectNode) cluster.at("/load_assignment/endpoints/0/lb_endpoints/0")).putObject("metadata")
                .putObject("filter_metadata").putObject("envoy.transport_socket_match").put("tlsMode", "istio");
        ObjectNode upstream = tlsContext("UpstreamTlsContext", workload, trustedCa, "istio-peer-exchange", "istio", "h2");
        upstream.put("sni", FILTER_SERVICE_SNI);
        // ISTIO_MUTUAL checks the server against the service accounts of the service's pods
        upstream.withObject("/common_tls_context/validation_context").putArray("match_typed_subject_alt_names").addObject()
                .put("san_type", "URI").putObject("matcher").put("exact", FILTER_SERVICE_ID.toString());
        ArrayNode matches = cluster.putArray("transport_socket_matches");
        ObjectNode istio = matches.addObject().put("name", "tlsMode-istio");
        istio.putObject("match").put("tlsMode", "istio");
        istio.putObject("transport_socket").put("name", TLS_SOCKET).set("typed_config", upstream);
        ObjectNode disabled = matches.addObject().put("name", "tlsMode-disabled");
        disabled.putObject("match");
        disabled.putObject("transport_socket").put("name", "envoy.transport_sockets.raw_buffer").putObject("typed_config")
                .put("@type", "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer");
        return cluster;
    }

    /**
     * The filter-service's sidecar's inbound listener for its gRPC port, bound to {@code 127.0.0.1:port} (Istio hands
     * it connections through iptables and the virtual inbound listener), with {@code workload} as the server
     * certificate; each request's {@code x-forwarded-client-cert} is written to {@code accessLog}, one line per stream.
     */
    static ObjectNode inboundListener(int port, LocalCa.Issued workload, Path trustedCa, Path accessLog) {
        ObjectNode hcm = JSON.createObjectNode();
        hcm.put("@type", "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager")
                .put("stat_prefix", "inbound_0.0.0.0_9090")
                .put("use_remote_address", false)
                .put("server_name", "istio-envoy")
                // what decides the filter-service's view of its caller: append the verified peer's details, URI included
                .put("forward_client_cert_details", "APPEND_FORWARD");
        hcm.putObject("set_current_client_cert_details").put("subject", true).put("uri", true).put("dns", true);
        hcm.putObject("http2_protocol_options");
        ObjectNode virtualHost = hcm.putObject("route_config").put("name", INBOUND_CLUSTER).putArray("virtual_hosts").addObject();
        virtualHost.put("name", "inbound|http|9090").putArray("domains").add("*");
        ObjectNode route = virtualHost.putArray("routes").addObject();
        route.putObject("match").put("prefix", "/");
        // Istio's inbound routes have no timeout: an ext_proc stream lives as long as its Kafka connection
        route.putObject("route").put("cluster", INBOUND_CLUSTER).put("timeout", "0s")
                .putObject("max_stream_duration").put("grpc_timeout_header_max", "0s");
        hcm.putArray("http_filters").addObject().put("name", "envoy.filters.http.router").putObject("typed_config")
                .put("@type", "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router");
        ObjectNode log = hcm.putArray("access_log").addObject().put("name", "envoy.access_loggers.file");
        log.putObject("typed_config")
                .put("@type", "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog")
                .put("path", accessLog.toString())
                .putObject("log_format").putObject("text_format_source")
                .put("inline_string", "%REQ(X-FORWARDED-CLIENT-CERT)%\n");

        ObjectNode downstream = tlsContext("DownstreamTlsContext", workload, trustedCa, "h2", "http/1.1");
        downstream.put("require_client_certificate", true);
        ObjectNode listener = JSON.createObjectNode();
        listener.put("name", "virtualInbound").set("address", IstioManifests.socketAddress("127.0.0.1", port));
        ObjectNode chain = listener.putArray("filter_chains").addObject().put("name", "0.0.0.0_9090");
        chain.putObject("transport_socket").put("name", TLS_SOCKET).set("typed_config", downstream);
        chain.putArray("filters").addObject().put("name", "envoy.filters.network.http_connection_manager")
                .set("typed_config", hcm);
        return listener;
    }

    /** Istio's inbound cluster to the application: plaintext HTTP/2 to {@code 127.0.0.1:port}, from 127.0.0.6. */
    static ObjectNode inboundCluster(int port) {
        ObjectNode cluster = IstioManifests.grpcCluster(INBOUND_CLUSTER, "127.0.0.1", port);
        cluster.putObject("upstream_bind_config").putObject("source_address")
                .put("address", INBOUND_PASSTHROUGH_SOURCE).put("port_value", 0);
        return cluster;
    }

    private static ObjectNode tlsContext(String type, LocalCa.Issued workload, Path trustedCa, String... alpn) {
        ObjectNode context = JSON.createObjectNode().put("@type", "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3." + type);
        ObjectNode common = context.putObject("common_tls_context");
        common.putObject("tls_params").put("tls_minimum_protocol_version", "TLSv1_2").put("tls_maximum_protocol_version", "TLSv1_3");
        ArrayNode protocols = common.putArray("alpn_protocols");
        for (String p : alpn) {
            protocols.add(p);
        }
        ObjectNode certificate = common.putArray("tls_certificates").addObject();
        certificate.putObject("certificate_chain").put("filename", workload.certificate().toString());
        certificate.putObject("private_key").put("filename", workload.privateKey().toString());
        common.putObject("validation_context").putObject("trusted_ca").put("filename", trustedCa.toString());
        return context;
    }
}
