package io.meshcrypt.filter.kms;

import io.meshcrypt.testsupport.Prerequisite;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A SoftHSM2 token initialised for a test, in the directory named by the SOFTHSM2_CONF the build sets for the test
 * JVM (SoftHSM reads it once per process). Each call initialises a fresh token with its own label.
 */
final class SoftHsm {
    static final String PIN = "1234";
    static final List<Path> LIBRARIES = List.of(
            Path.of("/usr/lib/softhsm/libsofthsm2.so"),
            Path.of("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
            Path.of("/usr/lib64/pkcs11/libsofthsm2.so"));

    private static boolean wiped;

    private SoftHsm() {
    }

    /** @return the PKCS#11 module; skips the test when SoftHSM2 is not installed (apt-get install softhsm2) */
    static Path library() {
        Path lib = LIBRARIES.stream().filter(Files::isReadable).findFirst().orElse(null);
        Prerequisite.require(lib != null && which("softhsm2-util"), "SoftHSM2 is not installed (apt-get install -y softhsm2)");
        return lib;
    }

    /** Initialises a token labelled {@code label} with user PIN {@link #PIN}; @return its slot id */
    static synchronized long initToken(String label) throws IOException, InterruptedException {
        String conf = System.getenv("SOFTHSM2_CONF");
        Prerequisite.require(conf != null, "SOFTHSM2_CONF is not set for this JVM (the Maven build sets it)");
        Path confFile = Path.of(conf);
        Path tokens = confFile.resolveSibling("tokens");
        if (!wiped) {
            // Tokens of earlier runs would pile up in target/; nothing in this JVM has opened them yet.
            try (var old = Files.walk(tokens)) {
                old.sorted(java.util.Comparator.reverseOrder()).filter(f -> !f.equals(tokens)).forEach(f -> f.toFile().delete());
            } catch (java.nio.file.NoSuchFileException e) {
                // first run
            }
            wiped = true;
        }
        Files.createDirectories(tokens);
        Files.writeString(confFile, "directories.tokendir = " + tokens + "\nobjectstore.backend = file\nlog.level = ERROR\n",
                StandardCharsets.UTF_8);
        Process p = new ProcessBuilder("softhsm2-util", "--init-token", "--free", "--label", label,
                "--so-pin", "5678", "--pin", PIN).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IOException("softhsm2-util --init-token failed: " + out);
        }
        Matcher m = Pattern.compile("reassigned to slot (\\d+)").matcher(out);
        if (!m.find()) {
            throw new IOException("softhsm2-util did not report the slot: " + out);
        }
        return Long.parseLong(m.group(1));
    }

    static boolean which(String command) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, command))) {
                return true;
            }
        }
        return false;
    }
}
