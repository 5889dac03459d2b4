package io.meshcrypt.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.pki.LocalCa;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The command line: what {@code validate} prints, and the exit codes and messages of what is refused. */
class MainTest {

    @TempDir
    Path dir;

    /** What one run of the command line did. */
    private record Run(int exit, String out, String err) {
    }

    private static Run run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int exit = Main.commandLine(new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8)).execute(args);
        return new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void givenValidMesh_whenValidated_thenExit0AndWhatItHolds() throws Exception {
        Path mesh = Files.writeString(dir.resolve("mesh.yaml"), OneSidecarMesh.YAML);

        Run run = run("validate", "--mesh", mesh.toString());

        assertEquals(0, run.exit(), run.err());
        assertTrue(run.out().startsWith(mesh + ": valid (1 Kafka cluster(s), 1 sidecar(s), "), run.out());
    }

    @Test
    void givenInvalidMesh_whenValidated_thenExit2WithFileLineColumn() throws Exception {
        Path mesh = Files.writeString(dir.resolve("mesh.yaml"), OneSidecarMesh.YAML + "unknownKey: 1\n");

        Run run = run("validate", "--mesh", mesh.toString());

        assertEquals(2, run.exit());
        assertTrue(run.err().startsWith("meshcrypt-xds-server: invalid mesh file: " + mesh + ":")
                && run.err().contains("unknownKey"), run.err());
    }

    @Test
    void givenNoMesh_whenServing_thenUsageErrorExit2() {
        Run run = run("serve");

        assertEquals(2, run.exit());
        assertTrue(run.err().contains("--mesh"), run.err());
    }

    @Test
    void givenOnlySomeTlsOptions_whenServing_thenUsageErrorNamingTheMissingOnes() throws Exception {
        Path mesh = Files.writeString(dir.resolve("mesh.yaml"), OneSidecarMesh.YAML);

        Run run = run("serve", "--mesh", mesh.toString(), "--tls-certificate", "cert.pem");

        assertEquals(2, run.exit());
        assertTrue(run.err().contains("--tls-private-key") && run.err().contains("--tls-trusted-ca"), run.err());
    }

    @Test
    void givenNoCommand_whenRun_thenUsageOnStderrAndExit2() {
        Run run = run();

        assertEquals(2, run.exit());
        assertTrue(run.err().contains("Usage: meshcrypt-xds-server"), run.err());
    }

    @Test
    void givenATlsPrivateKeyOthersCanRead_whenServing_thenExit1NamingTheKeyAndTheFixBeforeListening() throws Exception {
        Path mesh = Files.writeString(dir.resolve("mesh.yaml"), OneSidecarMesh.YAML);
        LocalCa ca = LocalCa.openOrCreate(dir.resolve("pki"));
        LocalCa.Issued xds = ca.issue("xds-server", LocalCa.spiffeId("xds-server"), List.of("127.0.0.1"), Duration.ofHours(1));
        Files.setPosixFilePermissions(xds.privateKey(), PosixFilePermissions.fromString("rw-r--r--"));

        // a server that started would serve until stopped: bounded, so a missing check fails instead of hanging
        Run run = assertTimeoutPreemptively(Duration.ofSeconds(30), () -> run("serve", "--mesh", mesh.toString(),
                "--xds", "127.0.0.1:0", "--status", "127.0.0.1:0", "--tls-certificate", xds.certificate().toString(),
                "--tls-private-key", xds.privateKey().toString(), "--tls-trusted-ca", ca.caCertificate().toString()));

        assertEquals(1, run.exit(), run.err());
        assertTrue(run.err().contains("secret file " + xds.privateKey() + " is accessible to others")
                && run.err().contains("chmod 600 " + xds.privateKey()), run.err());
    }

    @Test
    void givenUnresolvableXdsAddress_whenServing_thenExit1NamingTheOption() throws Exception {
        Path mesh = Files.writeString(dir.resolve("mesh.yaml"), OneSidecarMesh.YAML);

        Run run = run("serve", "--mesh", mesh.toString(), "--xds", "no-port");

        assertEquals(1, run.exit());
        assertTrue(run.err().startsWith("meshcrypt-xds-server: --xds must be host:port"), run.err());
    }
}
