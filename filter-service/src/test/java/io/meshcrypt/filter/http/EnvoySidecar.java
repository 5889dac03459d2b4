package io.meshcrypt.filter.http;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.meshcrypt.testsupport.EnvoyProcess;
import io.meshcrypt.testsupport.RepoRoot;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A real Envoy running envoy/http-sidecar.yaml.template, started by {@link EnvoyProcess} (so the binary is the one
 * {@code -Dmeshcrypt.envoy} names, as {@code ./meshcrypt test} passes it; without it the tests fail, never skip). The
 * listener binds port 0 and its port is read from the admin API.
 */
final class EnvoySidecar implements AutoCloseable {

    private static final String LISTENER = "http_inbound";

    private final EnvoyProcess envoy;
    private final int listenerPort;

    private EnvoySidecar(EnvoyProcess envoy, int listenerPort) {
        this.envoy = envoy;
        this.listenerPort = listenerPort;
    }

    static EnvoySidecar start(Path dir, int appPort, int filterPort) throws IOException {
        return start(dir, appPort, template().replace("@@FILTER_GRPC_PORT@@", Integer.toString(filterPort)));
    }

    /** With the filter-service reached on the Unix domain socket {@code filterSocket}: a {@code pipe} address. */
    static EnvoySidecar startOnUnixSocket(Path dir, int appPort, Path filterSocket) throws IOException {
        String tcp = "socket_address: { address: 127.0.0.1, port_value: @@FILTER_GRPC_PORT@@ }";
        String template = template();
        if (!template.contains(tcp)) {
            throw new IllegalStateException("the template's filter_service address changed: " + tcp + " not found");
        }
        return start(dir, appPort, template.replace(tcp, "pipe: { path: \"" + filterSocket + "\" }"));
    }

    private static String template() throws IOException {
        return Files.readString(RepoRoot.find().resolve("envoy/http-sidecar.yaml.template"));
    }

    private static EnvoySidecar start(Path dir, int appPort, String template) throws IOException {
        int adminPort = freePort();
        String yaml = template
                .replace("@@ENVOY_ADMIN_PORT@@", Integer.toString(adminPort))
                .replace("@@HTTP_LISTEN_PORT@@", "0")
                .replace("@@APP_PORT@@", Integer.toString(appPort));
        Path config = Files.writeString(dir.resolve("envoy.yaml"), yaml);
        EnvoyProcess envoy = EnvoyProcess.start(config, adminPort, dir.resolve("envoy.log"), "--log-level", "info");
        try {
            return new EnvoySidecar(envoy, listenerPort(envoy));
        } catch (IOException | RuntimeException e) {
            envoy.close();
            throw e;
        }
    }

    /** The admin port must be known before Envoy starts (EnvoyProcess waits on it): a port free a moment ago. */
    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0)) {
            return socket.getLocalPort();
        }
    }

    private static int listenerPort(EnvoyProcess envoy) throws IOException {
        String json = envoy.admin("/listeners?format=json");
        for (JsonNode listener : new ObjectMapper().readTree(json).path("listener_statuses")) {
            if (listener.path("name").asText().equals(LISTENER)) {
                return listener.path("local_address").path("socket_address").path("port_value").asInt();
            }
        }
        throw new IllegalStateException("listener " + LISTENER + " not found: " + json);
    }

    int port() {
        return listenerPort;
    }

    @Override
    public void close() {
        envoy.close();
    }
}
