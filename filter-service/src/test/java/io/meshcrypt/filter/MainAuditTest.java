package io.meshcrypt.filter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import io.meshcrypt.filter.kms.Keysets;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real filter-service started from a config with {@code audit:}: the KEK it starts with, a {@code keys rotate}
 * from the command line, and the data key of a Produce it encrypts over ext_proc are in the trail, which is owner-only.
 */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class MainAuditTest {
    private static final Pattern KEK_ID = Pattern.compile("\"kekId\":\"(local:[0-9]+)\"");

    @TempDir
    Path dir;

    @Test
    void givenAuditSection_whenServiceStartsAndKekRotated_thenCurrentAndRotatedKeksInTheTrail() throws Exception {
        Keysets.create(dir.resolve("kek.json"));
        Path config = dir.resolve("filter.yaml");
        Files.writeString(config, """
                listen: 127.0.0.1:0
                keys:
                  provider: local
                  local:
                    keyset: kek.json
                audit:
                  file: logs/audit.jsonl
                """);
        Path trail = dir.resolve("logs/audit.jsonl");

        try (Main.Running running = Main.start(config)) {
            awaitLine(trail, "\"event\":\"kek.current\"");
        }
        String first = kekId(Files.readAllLines(trail).getFirst());

        ByteArrayOutputStream out = new ByteArrayOutputStream();
        assertEquals(0, Main.commandLine(new PrintStream(out, true, StandardCharsets.UTF_8), System.err)
                .execute("keys", "rotate", "--config", config.toString()), out.toString(StandardCharsets.UTF_8));

        List<String> lines = Files.readAllLines(trail);
        String rotated = lines.getLast();
        assertTrue(rotated.contains("\"event\":\"kek.rotated\",\"outcome\":\"ok\",\"provider\":\"local\""), rotated);
        assertTrue(!kekId(rotated).equals(first), "a new KEK: " + lines);
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(trail)));

        try (Main.Running running = Main.start(config)) {
            awaitLine(trail, "\"event\":\"kek.current\",\"outcome\":\"ok\",\"provider\":\"local\",\"kekId\":\"" + kekId(rotated) + "\"");
        }
    }

    @Test
    void givenAuditSection_whenAProduceIsEncrypted_thenItsDataKeyIsInTheTrailAndThePlaintextIsNot() throws Exception {
        Keysets.create(dir.resolve("kek.json"));
        Path config = dir.resolve("filter.yaml");
        Files.writeString(config, "listen: 127.0.0.1:0\nkeys:\n  provider: local\n  local:\n    keyset: kek.json\n"
                + "audit:\n  file: logs/audit.jsonl\n");
        Path trail = dir.resolve("logs/audit.jsonl");

        try (Main.Running running = Main.start(config)) {
            ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", running.server().port()).usePlaintext().build();
            try {
                Object forwarded = ExtProcRequests.exchange(channel, ExtProcRequests.produceFrame("payments", "card 4111"));
                assertTrue(forwarded instanceof ProcessingResponse r && r.hasReadData()
                        && !r.getReadData().getData().toStringUtf8().contains("card 4111"), String.valueOf(forwarded));
                awaitLine(trail, "\"event\":\"dek.created\",\"outcome\":\"ok\",\"provider\":\"local\"");
            } finally {
                channel.shutdownNow();
            }
        }

        String text = Files.readString(trail);
        assertTrue(text.contains("\"event\":\"dek.wrapped\"") && text.contains("\"topic\":\"payments\""), text);
        assertTrue(!text.contains("card 4111"), text);
    }

    private static String kekId(String line) {
        Matcher m = KEK_ID.matcher(line);
        assertTrue(m.find(), line);
        return m.group(1);
    }

    /** The trail is written on its own thread: wait for the line rather than for the thread. */
    private static void awaitLine(Path file, String part) throws Exception {
        long deadline = System.nanoTime() + 20_000_000_000L;
        while (System.nanoTime() < deadline) {
            if (Files.exists(file) && Files.readAllLines(file).stream().anyMatch(l -> l.contains(part))) {
                return;
            }
            Thread.sleep(50);
        }
        throw new AssertionError("no line with " + part + " in " + file + ": "
                + (Files.exists(file) ? Files.readString(file) : "(no file)"));
    }
}
