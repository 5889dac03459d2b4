package io.meshcrypt.istio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.testsupport.RepoRoot;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Runs istio/istiod-config-check (its own Go module): istiod's real config generation, in-process, on the built
 * overlays, checked for what a client's, the filter-service's and a broker's sidecar would receive. Go and the Go
 * module proxy are required: without them this fails, it never skips. Cost on a fresh 2-core machine: see
 * docs/istio-config-check.md (download and first compile of istio.io/istio take minutes; later runs use Go's
 * build cache).
 */
class IstiodConfigCheckTest {

    @Test
    void givenTheOverlays_whenIstiodGeneratesTheirSidecarConfig_thenEveryPatchIsAppliedAsWrittenAndFailsClosed()
            throws IOException, InterruptedException {
        Path root = RepoRoot.find();
        Path log = root.resolve("tests/target/istiod-config-check.log");
        Files.createDirectories(log.getParent());
        ProcessBuilder pb = new ProcessBuilder("go", "test", "-count=1", "-v", "./...")
                .directory(root.resolve("istio/istiod-config-check").toFile())
                .redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("MESHCRYPT_ISTIOD_CONFIG_DIR", generatedConfigDir(root).toString());
        Process go;
        try {
            go = pb.start();
        } catch (IOException e) {
            throw new AssertionError("Go is required to check the manifests against istiod (./meshcrypt setup "
                    + "--for-tests installs it): " + e.getMessage(), e);
        }
        // a fresh machine downloads and compiles istio.io/istio first
        boolean done = go.waitFor(30, TimeUnit.MINUTES);
        if (!done) {
            go.destroyForcibly();
        }
        String output = Files.readString(log);
        assertTrue(done, "go test in istio/istiod-config-check did not finish in 30 minutes; see " + log);
        assertEquals(0, go.exitValue(), "istiod-config-check failed (a module proxy that cannot be reached fails "
                + "here too); see " + log + "\n" + tail(output));
        assertTrue(output.contains("--- PASS: TestIstiodGeneratedSidecarConfig"), output);
    }

    /** Where the Go test writes the listeners and clusters istiod generated, per overlay and sidecar. */
    static Path generatedConfigDir(Path root) {
        return root.resolve("tests/target/istiod-config");
    }

    private static String tail(String output) {
        return output.length() <= 20_000 ? output : output.substring(output.length() - 20_000);
    }
}
