package io.meshcrypt.filter.keys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.meshcrypt.filter.config.FilterConfig;
import io.meshcrypt.filter.crypto.UnsupportedEnvelopeVersionException;
import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.crypto.ValueCipherV2;
import io.meshcrypt.filter.kms.Keysets;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What an upgraded mesh does: a filter config that wrote version 1 with {@code keyset:} gains {@code keys: {provider:
 * local}} (the launcher's, compose's and Istio's default now), and the same keyset becomes the local KEK keyset.
 */
class EnvelopeV2SwitchTest {
    private static final String V1_CONFIG = "listen: 127.0.0.1:0\nkeyset: keyset.json\n";
    /** The lines the launcher's filter.yaml adds. */
    private static final String V2_LINES = "keys:\n  provider: local\n";

    @TempDir
    Path dir;
    private final List<ValueCipherV2> opened = new ArrayList<>();

    @AfterEach
    void tearDown() {
        opened.forEach(c -> c.deks().close());
    }

    @Test
    void givenRecordsWrittenAsV1_whenTheConfigSwitchesToV2WithTheSameKeysetAsKek_thenOldAndNewRecordsDecrypt() throws Exception {
        Keysets.create(dir.resolve("keyset.json"));
        ValueCipher before = cipher(V1_CONFIG);
        ByteBuffer old = before.encrypt("orders", utf8("written as v1"));
        assertEquals(1, old.get(4), "the config without keys: writes version 1");

        ValueCipher after = blocking(cipher(V1_CONFIG + V2_LINES));
        ByteBuffer fresh = after.encrypt("orders", utf8("written as v2"));

        assertEquals(2, fresh.get(4), "keys: writes version 2");
        assertEquals("written as v1", text(after.decrypt("orders", old)));
        assertEquals("written as v2", text(after.decrypt("orders", fresh)));
    }

    @Test
    void givenAV2ConfigWithoutTheOldKeyset_whenAV1RecordArrives_thenItIsRefusedNotPassedOn() throws Exception {
        Keysets.create(dir.resolve("keyset.json"));
        ByteBuffer old = cipher(V1_CONFIG).encrypt("orders", utf8("written as v1"));
        Keysets.create(dir.resolve("kek.json"));

        ValueCipher kekOnly = blocking(cipher("listen: 127.0.0.1:0\nkeys:\n  provider: local\n  local:\n    keyset: kek.json\n"));

        assertInstanceOf(UnsupportedEnvelopeVersionException.class,
                assertThrows(Exception.class, () -> kekOnly.decrypt("orders", old)));
    }

    private ValueCipher cipher(String config) throws Exception {
        Path file = dir.resolve("filter.yaml");
        Files.writeString(file, config);
        ValueCipher cipher = KeyServices.cipher(FilterConfig.load(file));
        if (cipher instanceof ValueCipherV2 v2) {
            opened.add(v2);
        }
        return cipher;
    }

    private static ValueCipher blocking(ValueCipher cipher) {
        return ((ValueCipherV2) cipher).blocking(Duration.ofSeconds(10));
    }

    private static ByteBuffer utf8(String s) {
        return ByteBuffer.wrap(s.getBytes(StandardCharsets.UTF_8));
    }

    private static String text(ByteBuffer b) {
        return StandardCharsets.UTF_8.decode(b).toString();
    }
}
