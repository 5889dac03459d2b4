package io.meshcrypt.filter.transform;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.crypto.tink.KeysetHandle;
import com.google.crypto.tink.aead.AeadConfig;
import com.google.crypto.tink.aead.PredefinedAeadParameters;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.meshconfig.transform.FieldOp;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Review item 4: the shared JSON engine parses client documents under explicit limits. */
class JsonLimitsTest {
    private static ValueCipherV1 cipher;
    private static final List<FieldOp> ENCRYPT_A = List.of(new FieldOp.Encrypt(JsonPointer.parse("/a"), false));

    @BeforeAll
    static void keys() throws Exception {
        AeadConfig.register();
        cipher = ValueCipherV1.fromKeysetHandle(KeysetHandle.generateNew(PredefinedAeadParameters.AES256_GCM));
    }

    /** {@code [{},{},...]}: 3 bytes of text per object, ~25 times that as a tree. */
    private static byte[] emptyObjects(int n) {
        byte[] out = new byte[1 + 3 * n];
        out[0] = '[';
        for (int i = 0; i < n; i++) {
            out[1 + 3 * i] = '{';
            out[2 + 3 * i] = '}';
            out[3 + 3 * i] = ',';
        }
        out[out.length - 1] = ']';
        return out;
    }

    private static byte[] nested(int depth) {
        return ("[".repeat(depth) + "]".repeat(depth)).getBytes(StandardCharsets.US_ASCII);
    }

    @Test
    void givenArrayOfMoreTokensThanTheDefaultLimit_whenApplied_thenInvalidInputNotAHugeTree() {
        // 600,000 empty objects = 1.2M tokens in 1.8 MB: under the document size limit, over the token limit.
        byte[] bomb = emptyObjects(600_000);
        JsonTransformer engine = new JsonTransformer(cipher);

        TransformException e = assertThrows(TransformException.class,
                () -> engine.apply(ByteBuffer.wrap(bomb), ENCRYPT_A, "t"));

        assertEquals(TransformException.Kind.INVALID_INPUT, e.kind());
        assertTrue(e.getMessage().startsWith("JSON document exceeds a parse limit: "), e.getMessage());
        assertTrue(e.getMessage().contains("Token count (1000001)"), e.getMessage());
    }

    @Test
    void givenArrayOfMoreTokensThanTheDefaultLimit_whenParsedStatically_thenInvalidInput() {
        byte[] bomb = emptyObjects(600_000);

        TransformException e = assertThrows(TransformException.class, () -> JsonTransformer.parse(bomb));

        assertEquals(TransformException.Kind.INVALID_INPUT, e.kind());
    }

    @Test
    void givenNestingDeeperThanTheDefaultLimit_whenApplied_thenInvalidInput() {
        byte[] deep = nested(JsonTransformer.Limits.DEFAULT_MAX_NESTING_DEPTH + 1);
        JsonTransformer engine = new JsonTransformer(cipher);

        TransformException e = assertThrows(TransformException.class,
                () -> engine.apply(ByteBuffer.wrap(deep), ENCRYPT_A, "t"));

        assertEquals(TransformException.Kind.INVALID_INPUT, e.kind());
        assertTrue(e.getMessage().contains("nesting depth"), e.getMessage());
    }

    @Test
    void givenNestingAtTheDefaultLimit_whenApplied_thenDocumentUnchanged() throws Exception {
        byte[] deep = nested(JsonTransformer.Limits.DEFAULT_MAX_NESTING_DEPTH);
        JsonTransformer engine = new JsonTransformer(cipher);

        ByteBuffer out = engine.apply(ByteBuffer.wrap(deep), ENCRYPT_A, "t");

        assertEquals(ByteBuffer.wrap(deep), out);
    }

    @Test
    void givenDocumentLongerThanTheConfiguredLimit_whenApplied_thenInvalidInputBeforeParsing() {
        JsonTransformer engine = new JsonTransformer(cipher, new JsonTransformer.Limits(16, 8, 100, 16));
        byte[] json = "{\"a\":\"0123456789\"}".getBytes(StandardCharsets.US_ASCII); // 18 bytes

        TransformException e = assertThrows(TransformException.class,
                () -> engine.apply(ByteBuffer.wrap(json), ENCRYPT_A, "t"));

        assertEquals(TransformException.Kind.INVALID_INPUT, e.kind());
        assertEquals("JSON document of 18 bytes exceeds the limit of 16 bytes", e.getMessage());
    }

    @Test
    void givenStringLongerThanTheConfiguredLimit_whenApplied_thenInvalidInput() {
        JsonTransformer engine = new JsonTransformer(cipher, new JsonTransformer.Limits(1 << 20, 8, 100, 1000));
        byte[] json = ("{\"a\":\"" + "x".repeat(1001) + "\"}").getBytes(StandardCharsets.US_ASCII);

        TransformException e = assertThrows(TransformException.class,
                () -> engine.apply(ByteBuffer.wrap(json), ENCRYPT_A, "t"));

        assertEquals(TransformException.Kind.INVALID_INPUT, e.kind());
        assertTrue(e.getMessage().contains("String value length (1001)"), e.getMessage());
    }

    @Test
    void givenDocumentWithinConfiguredLimits_whenEncryptedThenDecrypted_thenOriginalBack() throws Exception {
        JsonTransformer engine = new JsonTransformer(cipher, new JsonTransformer.Limits(4096, 4, 20, 1000));
        byte[] json = "{\"a\":{\"b\":[1,2]},\"c\":\"d\"}".getBytes(StandardCharsets.US_ASCII);

        ByteBuffer encrypted = engine.apply(ByteBuffer.wrap(json), ENCRYPT_A, "t");
        ByteBuffer decrypted = engine.apply(encrypted, List.of(new FieldOp.Decrypt(JsonPointer.parse("/a"), true)), "t");

        assertEquals(ByteBuffer.wrap(json), decrypted);
    }

    @Test
    void givenNonPositiveLimit_whenLimitsBuilt_thenRefused() {
        assertThrows(IllegalArgumentException.class, () -> new JsonTransformer.Limits(0, 1, 1, 1));
        assertThrows(IllegalArgumentException.class, () -> new JsonTransformer.Limits(1, 1, 0, 1));
    }
}
