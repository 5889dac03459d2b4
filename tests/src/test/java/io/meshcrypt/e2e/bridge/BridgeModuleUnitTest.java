package io.meshcrypt.e2e.bridge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.testsupport.RepoRoot;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The bridge module's own Rust unit tests (its config parser against garbage and hostile input, the protocol
 * encoding, the per-direction deadlines), run under {@code ./mvnw verify} so that CI runs them. Without cargo this
 * fails: the launcher's setup builds the module with the same cargo.
 */
class BridgeModuleUnitTest {

    @Test
    void givenTheBridgeCrate_whenCargoTestRuns_thenEveryRustTestPassesAndThereAreSome() throws Exception {
        Path crate = RepoRoot.find().resolve("envoy/dynamic-module/ext-proc-bridge");
        Path rustup = Path.of(System.getProperty("user.home"), ".cargo/bin/cargo");
        String cargo = Files.isExecutable(rustup) ? rustup.toString() : "cargo";
        Process process = new ProcessBuilder(cargo, "test", "--release", "--locked", "--manifest-path", crate.resolve("Cargo.toml").toString())
                .redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(process.waitFor(15, TimeUnit.MINUTES), "cargo test still running after 15 minutes");
        assertEquals(0, process.exitValue(), output);
        Matcher result = Pattern.compile("test result: ok\\. (\\d+) passed; 0 failed").matcher(output);
        assertTrue(result.find(), output);
        assertTrue(Integer.parseInt(result.group(1)) >= 18, "the module's unit tests ran: " + output);
        System.out.println("bridge module: " + List.of(result.group()));
    }
}
