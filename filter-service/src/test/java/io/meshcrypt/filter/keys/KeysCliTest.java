package io.meshcrypt.filter.keys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.Main;
import io.meshcrypt.filter.config.FilterConfig;
import io.meshcrypt.filter.crypto.RecordKeyCipher;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.crypto.ValueCipherV2;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Base64;
import java.util.HexFormat;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class KeysCliTest {
    @TempDir
    Path dir;
    private Path config;
    private ByteArrayOutputStream output;
    private final ByteArrayOutputStream errors = new ByteArrayOutputStream();

    @BeforeEach
    void setUp() throws Exception {
        config = dir.resolve("filter.yaml");
        Files.writeString(config, "keyset: keyset.json\nkeys:\n  provider: local\n");
        output = new ByteArrayOutputStream();
    }

    /** Through the filter-service's own command line, as {@code java -jar meshcrypt-filter-service.jar ...}. */
    private int run(String... args) {
        output.reset();
        return Main.commandLine(new PrintStream(output, true, StandardCharsets.UTF_8),
                new PrintStream(errors, true, StandardCharsets.UTF_8)).execute(args);
    }

    private String out() {
        return output.toString(StandardCharsets.UTF_8);
    }

    @Test
    void givenLocalProvider_whenCreatedRotatedAndListed_thenTwoKeksAndTheNewOneCurrent() throws Exception {
        assertEquals(0, run("keys", "create", "--config", config.toString()));
        String first = out().split(" ")[2];
        assertEquals(0, run("keys", "rotate", "--config", config.toString()));
        assertEquals(0, run("keys", "list", "--config", config.toString()));

        String[] lines = out().strip().split("\n");
        assertEquals(2, lines.length, out());
        assertTrue(out().contains("  " + first + "  ENABLED"), out());
        assertTrue(lines[0].startsWith("* ") || lines[1].startsWith("* "), out());
        assertFalse(out().contains("* " + first), "the rotated-away KEK is no longer current: " + out());
    }

    @Test
    void givenV2Value_whenInspectedWithoutKeys_thenVersionAndKeyIdsShown() throws Exception {
        run("keys", "create", "--config", config.toString());
        byte[] value = v2("orders", "hello");

        assertEquals(0, run("inspect", Base64.getEncoder().encodeToString(value)));

        assertTrue(out().contains("format version 2"), out());
        assertTrue(out().contains("KEK id local:"), out());
        assertTrue(out().contains("DEK id "), out());
        assertTrue(out().contains("plaintext length 5"), out());
        assertFalse(out().contains("hello"));
    }

    @Test
    void givenV2Value_whenInspectedWithTopic_thenBindingCheckedWithoutDecryptingTheValue() throws Exception {
        run("keys", "create", "--config", config.toString());
        String hex = HexFormat.of().formatHex(v2("orders", "hello"));

        assertEquals(0, run("inspect", "--config", config.toString(), "--topic", "orders", hex));
        assertTrue(out().contains("bound to topic 'orders': yes"), out());
        assertEquals(1, run("inspect", "--config", config.toString(), "--topic", "payments", hex));
        assertTrue(out().contains("bound to topic 'payments': no"), out());
    }

    @Test
    void givenV1Value_whenInspected_thenVersion1KeyIdAndBinding() throws Exception {
        run("keys", "create", "--config", config.toString());
        ByteBuffer env = ValueCipherV1.fromKeysetFile(dir.resolve("keyset.json")).encrypt("orders", utf8("hi"));
        String hex = HexFormat.of().formatHex(env.array());

        assertEquals(0, run("inspect", "--config", config.toString(), "--topic", "orders", hex));
        assertTrue(out().contains("format version 1"), out());
        assertTrue(out().contains("key id "), out());
        assertEquals(1, run("inspect", "--config", config.toString(), "--topic", "other", hex));
    }

    @Test
    void givenRecordKeyEnvelope_whenInspected_thenItIsRecognisedAndItsTopicBindingChecked() throws Exception {
        Files.writeString(config, "keyset: keyset.json\nsivKeyset: siv.json\n");
        RecordKeyCipher keys = RecordKeyCipher.openOrCreate(dir.resolve("siv.json"));
        byte[] envelope = bytes(keys.encrypt("users", utf8("user-42")));
        String hex = HexFormat.of().formatHex(envelope);

        assertEquals(0, run("inspect", hex));
        assertTrue(out().contains("record-key envelope (deterministic AES-256-SIV), format version 1"), out());
        assertTrue(out().contains("key id " + Integer.toUnsignedString(ByteBuffer.wrap(envelope).getInt(RecordKeyCipher.KEY_ID_OFFSET))), out());
        assertTrue(out().contains("plaintext length 7"), out());
        assertFalse(out().contains("user-42"), "the key itself is never shown");

        assertEquals(0, run("inspect", "--config", config.toString(), "--topic", "users", hex));
        assertTrue(out().contains("bound to topic 'users': yes"), out());
        assertEquals(1, run("inspect", "--config", config.toString(), "--topic", "orders", hex));
        assertTrue(out().contains("bound to topic 'orders': no"), out());
        assertFalse(out().contains("user-42"));
    }

    private static byte[] bytes(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.duplicate().get(out);
        return out;
    }

    @Test
    void givenPlainValue_whenInspected_thenNotAnEnvelope() throws Exception {
        assertEquals(1, run("inspect", HexFormat.of().formatHex("{\"a\":1}".getBytes(StandardCharsets.UTF_8))));
        assertTrue(out().contains("not a meshcrypt envelope"), out());
    }

    @Test
    void givenUnknownKeysCommand_whenRun_thenExit1NamingTheKnownOnes() {
        assertEquals(1, run("keys", "erase", "--config", config.toString()));

        assertEquals("meshcrypt: unknown keys command erase (create, rotate, list)\n",
                errors.toString(StandardCharsets.UTF_8));
    }

    @Test
    void givenKeysetCreate_whenRun_thenTheFileIsReadableByItsOwnerOnly() throws Exception {
        Path keyset = dir.resolve("new-keyset.json");

        assertEquals(0, run("keyset", "create", "--out", keyset.toString()));

        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(keyset)));
        assertEquals("created keyset " + keyset + "\n", out());
    }

    @Test
    void givenADeterministicKeysetCreated_whenTwoReplicasOpenIt_thenTheyEncryptAKeyAlikeAndASecondCreateIsRefused() throws Exception {
        Path siv = dir.resolve("siv-keyset.json");

        assertEquals(0, run("keyset", "create", "--deterministic", "--out", siv.toString()));

        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(siv)));
        assertEquals("created AES-SIV keyset " + siv + "\n", out());
        ByteBuffer a = RecordKeyCipher.fromKeysetFile(siv).encrypt("users", utf8("user-1"));
        ByteBuffer b = RecordKeyCipher.openOrCreate(siv).encrypt("users", utf8("user-1"));
        assertEquals(a, b);
        assertEquals(1, run("keyset", "create", "--deterministic", "--out", siv.toString()));
    }

    private byte[] v2(String topic, String value) throws Exception {
        ValueCipherV2 cipher = (ValueCipherV2) KeyServices.cipher(FilterConfig.load(config));
        try {
            return cipher.blocking(java.time.Duration.ofSeconds(10)).encrypt(topic, utf8(value)).array();
        } finally {
            cipher.deks().close();
        }
    }

    private static ByteBuffer utf8(String s) {
        return ByteBuffer.wrap(s.getBytes(StandardCharsets.UTF_8));
    }
}
