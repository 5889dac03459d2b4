package io.meshcrypt.e2e.support;

import io.meshcrypt.pki.LocalCa;
import io.meshcrypt.testsupport.EnvoyProcess;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.List;

/**
 * An HTTP sidecar a test starts itself (the shared mesh has none): a static Envoy whose HTTP listener streams each
 * request to the shared filter-service over HTTP ext_proc (the xDS server's processing mode: headers sent, bodies
 * buffered; mutual TLS when the mesh runs it), in front of an app on 127.0.0.1. The filter-service applies the shared
 * mesh's HTTP rules.
 *
 * @param listenerPort where clients reach the app through the sidecar
 */
public record StaticHttpSidecar(EnvoyProcess envoy, int listenerPort) implements AutoCloseable {

    /**
     * @param name the listener's name and stat prefix; also names the directory under tests/target and the sidecar's
     *     certificate
     */
    public static StaticHttpSidecar start(LocalMesh mesh, String name, int appPort) throws IOException {
        Path dir = mesh.root().resolve("tests/target/" + name + "-http-sidecar");
        Files.createDirectories(dir);
        int[] ports = StaticSidecar.freePorts(2);
        Path config = dir.resolve("envoy.yaml");
        Files.writeString(config, config(mesh, dir, name, ports[0], ports[1], appPort));
        EnvoyProcess envoy = EnvoyProcess.start(config, ports[1], dir.resolve("envoy.log"),
                "--concurrency", "1", "--log-level", "warn");
        return new StaticHttpSidecar(envoy, ports[0]);
    }

    private static String config(LocalMesh mesh, Path dir, String name, int listener, int admin, int appPort) {
        StringBuilder y = new StringBuilder();
        y.append("admin:\n  address:\n    socket_address: { address: 127.0.0.1, port_value: ").append(admin).append(" }\n");
        y.append("""
                static_resources:
                  listeners:
                  - name: %1$s
                    address: { socket_address: { address: 127.0.0.1, port_value: %2$d } }
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.http_connection_manager
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                          stat_prefix: %1$s
                          route_config:
                            virtual_hosts: [{ name: app, domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster: app } }] }]
                          http_filters:
                          - name: envoy.filters.http.ext_proc
                            typed_config:
                              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
                              grpc_service: { envoy_grpc: { cluster_name: filter_service }, timeout: 10s }
                              failure_mode_allow: false
                              allow_mode_override: true
                              message_timeout: 5s
                              processing_mode:
                                request_header_mode: SEND
                                request_body_mode: BUFFERED
                                request_trailer_mode: SKIP
                                response_header_mode: SEND
                                response_body_mode: BUFFERED
                                response_trailer_mode: SKIP
                          - name: envoy.filters.http.router
                            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
                  clusters:
                """.formatted(name, listener));
        StaticSidecar.filterServiceCluster(y, mesh.filterGrpcPort(), LocalMesh.TLS ? mutualTls(mesh, dir, name) : "");
        StaticSidecar.cluster(y, "app", "127.0.0.1", appPort);
        return y.toString();
    }

    /** The filter_service cluster's TLS: a certificate of the mesh CA, issued into a copy of it. */
    private static String mutualTls(LocalMesh mesh, Path dir, String name) {
        Path pki = dir.resolve("pki");
        try {
            Files.createDirectories(pki);
            for (String file : List.of(LocalCa.CA_CERTIFICATE, "ca-key.pem")) {
                Files.copy(mesh.pki().resolve(file), pki.resolve(file), StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        LocalCa.Issued issued = LocalCa.openOrCreate(pki)
                .issue("sidecar-" + name + "-http", LocalCa.spiffeId("sidecar/" + name + "-http"), List.of(), Duration.ofHours(1));
        String context = "{ alpn_protocols: [h2], tls_certificates: [{ certificate_chain: { filename: \"%s\" },"
                + " private_key: { filename: \"%s\" } }], validation_context: { trusted_ca: { filename: \"%s\" } } }";
        return "    transport_socket: { name: envoy.transport_sockets.tls, typed_config: { \"@type\":"
                + " type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext, common_tls_context: "
                + context.formatted(issued.certificate(), issued.privateKey(), pki.resolve(LocalCa.CA_CERTIFICATE)) + " } }\n";
    }

    @Override
    public void close() {
        envoy.close();
    }
}
