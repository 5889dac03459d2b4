package io.meshcrypt.xds;

import com.google.protobuf.ByteString;
import io.meshcrypt.filter.transport.ConnectionHandler;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.function.IntFunction;

/** Bytes through a sidecar listener of a real Envoy, to an echo upstream, with a filter-service that marks what it read. */
final class SidecarExchange {

    private SidecarExchange() {
    }

    /** Read bytes get "R:" in front; the echo upstream sends them back unchanged through the write path. */
    static final class Prefixing implements ConnectionHandler {
        @Override
        public ByteString onRead(ByteString data, boolean endOfStream) {
            return data.isEmpty() ? data : ByteString.copyFromUtf8("R:").concat(data);
        }

        @Override
        public ByteString onWrite(ByteString data, boolean endOfStream) {
            return data;
        }

        @Override
        public void onClose() {
        }
    }

    /** Echoes every connection {@code server} accepts, each on a virtual thread, until it is closed. */
    static void echo(ServerSocket server) {
        Thread.ofVirtual().start(() -> {
            while (!server.isClosed()) {
                try {
                    Socket s = server.accept();
                    Thread.ofVirtual().start(() -> {
                        try (s; InputStream in = s.getInputStream(); OutputStream out = s.getOutputStream()) {
                            in.transferTo(out);
                        } catch (IOException ignored) {
                            // the client went away, or (TLS) the handshake failed
                        }
                    });
                } catch (IOException e) {
                    return;
                }
            }
        });
    }

    /** Sends {@code text} through the sidecar listener once xDS has created it, and reads as many bytes back as arrive. */
    static String exchangeWhenListening(int port, String text) throws Exception {
        return exchangeWhenListening(port, text, p -> {
            try {
                return new Socket("127.0.0.1", p);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
    }

    /**
     * As {@link #exchangeWhenListening(int, String)} over the socket {@code connect} opens to a port (TLS, say); an
     * empty answer means the sidecar closed the connection.
     */
    static String exchangeWhenListening(int port, String text, IntFunction<Socket> connect) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        Exception last = null;
        while (System.nanoTime() < deadline) {
            try (Socket socket = connect.apply(port)) {
                socket.setSoTimeout(10_000);
                socket.getOutputStream().write(text.getBytes(StandardCharsets.UTF_8));
                socket.getOutputStream().flush();
                byte[] buffer = new byte[64];
                int n = socket.getInputStream().readNBytes(buffer, 0, text.length() + 2);
                return new String(buffer, 0, n, StandardCharsets.UTF_8);
            } catch (IOException | java.io.UncheckedIOException e) {
                last = e;
                Thread.sleep(250);
            }
        }
        throw new AssertionError("no answer through port " + port, last);
    }

    /**
     * Writes an Envoy bootstrap to {@code file} that names only node {@code nodeId} and the xDS server on
     * {@code xdsPort} (ADS, state of the world; secrets come over the same stream).
     *
     * @param xdsTransportSocket YAML of the xds_server cluster's transport_socket (indented as a cluster field), or ""
     *     for plaintext
     */
    static Path bootstrap(Path file, String nodeId, int adminPort, int xdsPort, String xdsTransportSocket) throws IOException {
        Files.writeString(file, """
                node: {id: "%s", cluster: meshcrypt}
                admin: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                dynamic_resources:
                  ads_config:
                    api_type: GRPC
                    transport_api_version: V3
                    set_node_on_first_message_only: false
                    grpc_services: [{envoy_grpc: {cluster_name: xds_server}}]
                  cds_config: {ads: {}, resource_api_version: V3}
                  lds_config: {ads: {}, resource_api_version: V3}
                static_resources:
                  clusters:
                  - name: xds_server
                    type: STATIC
                    connect_timeout: 1s
                    typed_extension_protocol_options:
                      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                        explicit_http_config: {http2_protocol_options: {}}
                    load_assignment:
                      cluster_name: xds_server
                      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}}]}]
                """.formatted(nodeId, adminPort, xdsPort) + xdsTransportSocket.indent(4));
        return file;
    }
}
