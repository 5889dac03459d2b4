package io.meshcrypt.filter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.kms.Keysets;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The command line: {@code serve} refuses to start on bad files before it listens; exit codes and messages. */
@Timeout(value = 30, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class MainServeTest {

    @TempDir
    Path dir;

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();

    private int run(String... args) {
        return Main.commandLine(new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8)).execute(args);
    }

    private String err() {
        return err.toString(StandardCharsets.UTF_8);
    }

    private String out() {
        return out.toString(StandardCharsets.UTF_8);
    }

    @Test
    void givenWorldReadableKeyset_whenServing_thenRefusedBeforeListeningNamingTheFile() throws Exception {
        Path keyset = dir.resolve("keyset.json");
        Keysets.create(keyset);
        Files.setPosixFilePermissions(keyset, PosixFilePermissions.fromString("rw-r--r--"));
        Path config = dir.resolve("filter.yaml");
        Files.writeString(config, "listen: 127.0.0.1:0\nkeyset: keyset.json\n");

        assertEquals(1, run("serve", "--config", config.toString()));

        assertTrue(err().startsWith("meshcrypt: ") && err().contains(keyset.toString()) && err().contains("chmod 600"), err());
    }

    @Test
    void givenGroupReadableRecordKeyKeyset_whenServing_thenRefused() throws Exception {
        Keysets.create(dir.resolve("keyset.json"));
        Path siv = dir.resolve("siv.json");
        Files.writeString(siv, "{}");
        Files.setPosixFilePermissions(siv, PosixFilePermissions.fromString("rw-r-----"));
        Path config = dir.resolve("filter.yaml");
        Files.writeString(config, "listen: 127.0.0.1:0\nkeyset: keyset.json\nsivKeyset: siv.json\n");

        assertEquals(1, run("serve", "--config", config.toString()));

        assertTrue(err().contains(siv.toString()), err());
    }

    @Test
    void givenInvalidConfig_whenServing_thenExit2WithFileLineColumnAndField() throws Exception {
        Path config = dir.resolve("filter.yaml");
        Files.writeString(config, "keyset: keyset.json\nlimits:\n  maxInFlightRequests: 0\n");

        assertEquals(2, run("serve", "--config", config.toString()));

        assertTrue(err().startsWith("meshcrypt: invalid configuration: " + config
                + ":3:3: limits.maxInFlightRequests: must be a positive integer"), err());
    }

    @Test
    void givenNoCommand_whenRun_thenUsageOnStderrAndExit2() {
        assertEquals(2, run());

        assertTrue(err().contains("Usage: meshcrypt-filter-service") && err().contains("serve"), err());
    }

    @Test
    void givenKeysetWithoutItsCommand_whenRun_thenUsageError() {
        assertEquals(2, run("keyset", "--out", dir.resolve("k.json").toString()));
    }

    @Test
    void givenInspectWithConfigButNoTopic_whenRun_thenUsageError() {
        assertEquals(2, run("inspect", "--config", "filter.yaml", "00"));

        assertTrue(err().contains("--topic"), err());
    }

    @Test
    void givenHelp_whenRun_thenUsageOnStdoutAndExit0() {
        assertEquals(0, run("inspect", "--help"));

        assertTrue(out().contains("Usage: meshcrypt-filter-service inspect"), out());
    }

    @Test
    void givenKeysetCreateThenRotate_whenRun_thenBothReportTheFileAsGiven() {
        String file = dir.resolve("keyset.json").toString();

        assertEquals(0, run("keyset", "create", "--out", file));
        assertEquals(0, run("keyset", "rotate", "--file", file));

        assertEquals("created keyset " + file + "\nrotated keyset " + file
                + ": new values use a new primary key, old ones stay readable\n", out());
    }

    @Test
    void givenNotAnEnvelope_whenInspected_thenExit1AndSaysSo() {
        assertEquals(1, run("inspect", "7b7d"));

        assertTrue(out().startsWith("not a meshcrypt envelope"), out());
    }
}
