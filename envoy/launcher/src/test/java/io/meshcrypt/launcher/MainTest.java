package io.meshcrypt.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MainTest {

    @TempDir
    Path home;

    private int run(Map<String, String> env, String... args) {
        return Main.execute(Path.of("."), env, args);
    }

    @Test
    void givenHelp_whenRun_thenExitCode0() {
        assertEquals(0, run(Map.of(), "help"));
        assertEquals(0, run(Map.of(), "--help"));
    }

    @Test
    void givenAnUnknownCommand_whenRun_thenExitCode2() {
        assertEquals(2, run(Map.of(), "bogus"));
    }

    @Test
    void givenAnUnknownOption_whenRun_thenExitCode2() {
        assertEquals(2, run(Map.of(), "demo", "--bogus"));
    }

    @Test
    void givenAnUnknownComponent_whenStarted_thenExitCode1() {
        assertEquals(1, run(Map.of("MESHCRYPT_HOME", home.toString()), "start", "kafka"));
    }

    @Test
    void givenAPortBaseWithoutRoom_whenStatusAsked_thenExitCode1() {
        assertEquals(1, run(Map.of("MESHCRYPT_HOME", home.toString(), "MESHCRYPT_PORT_BASE", "80"), "status"));
    }

    @Test
    void givenNothingRunning_whenStatusAsked_thenExitCode0() {
        assertEquals(0, run(Map.of("MESHCRYPT_HOME", home.toString(), "MESHCRYPT_PORT_BASE", "16000"), "status"));
    }

    @Test
    void givenABrokerCountOutsideOneToNine_whenUp_thenUsageErrorBeforeAnythingStarts() {
        Map<String, String> env = Map.of("MESHCRYPT_HOME", home.toString(), "MESHCRYPT_PORT_BASE", "16000");

        assertEquals(2, run(env, "up", "--brokers", "0"));
        assertEquals(2, run(env, "up", "--brokers", "10"));
        assertEquals(2, run(env, "up", "--brokers", "three"));
    }

    @Test
    void givenOneBroker_whenACluster2ndBrokerIsStarted_thenUnknownComponent() {
        assertEquals(1, run(Map.of("MESHCRYPT_HOME", home.toString(), "MESHCRYPT_PORT_BASE", "16000"), "start", "broker-2"));
    }

    @Test
    void givenNothingRunning_whenDown_thenExitCode0() {
        assertEquals(0, run(Map.of("MESHCRYPT_HOME", home.toString(), "MESHCRYPT_PORT_BASE", "16000"), "down"));
    }

    @Test
    void givenMeshcryptTlsNeitherOnNorOff_whenStatusAsked_thenExitCode1() {
        assertEquals(1, run(Map.of("MESHCRYPT_HOME", home.toString(), "MESHCRYPT_PORT_BASE", "16000", "MESHCRYPT_TLS", "yes"), "status"));
    }

    @Test
    void givenMeshcryptExtProcNeitherTcpNorUnix_whenStatusAsked_thenExitCode1() {
        assertEquals(1, run(Map.of("MESHCRYPT_HOME", home.toString(), "MESHCRYPT_PORT_BASE", "16000", "MESHCRYPT_EXT_PROC", "pipe"), "status"));
    }

    @Test
    void givenNoLocalCa_whenPkiAsked_thenExitCode0() {
        assertEquals(0, run(Map.of("MESHCRYPT_HOME", home.toString()), "pki"));
    }
}
