package io.meshcrypt.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * The command lines the launcher starts the services with: a JVM that ran out of heap exits (to be restarted) rather
 * than serve in an unknown state, so every service JVM has {@code -XX:+ExitOnOutOfMemoryError}.
 */
class ServiceCommandsTest {

    @Test
    void givenTheFilterService_whenItsCommandIsBuilt_thenItIsTheJarsServeCommandWithExitOnOutOfMemoryError() {
        List<String> command = Components.filterServiceCommand(Path.of("/m/filter.jar"), Path.of("/s/filter.yaml"));

        assertEquals(List.of("-XX:+ExitOnOutOfMemoryError", "-jar", "/m/filter.jar", "serve", "--config", "/s/filter.yaml"),
                command.subList(1, command.size()));
    }

    @Test
    void givenTheXdsServer_whenItsCommandIsBuilt_thenItServesThePlansPortsWithExitOnOutOfMemoryError() {
        List<String> command = Components.xdsServerCommand(Path.of("/m/xds.jar"), Path.of("/s/mesh.yaml"), PortPlan.of(19000),
                Optional.empty());

        assertEquals(List.of("-XX:+ExitOnOutOfMemoryError", "-Xmx256m", "-jar", "/m/xds.jar", "serve", "--mesh", "/s/mesh.yaml",
                "--xds", "127.0.0.1:19018", "--status", "127.0.0.1:19019"), command.subList(1, command.size()));
    }

    @Test
    void givenTheXdsServerWithTls_whenItsCommandIsBuilt_thenItNamesItsCertificateKeyAndTheMeshCa() {
        List<String> command = Components.xdsServerCommand(Path.of("/m/xds.jar"), Path.of("/s/mesh.yaml"), PortPlan.of(19000),
                Optional.of(Path.of("/s/pki")));

        assertEquals(List.of("--tls-certificate", "/s/pki/xds-server/cert.pem", "--tls-private-key", "/s/pki/xds-server/key.pem",
                "--tls-trusted-ca", "/s/pki/ca.pem"), command.subList(command.size() - 6, command.size()));
    }
}
