package io.meshcrypt.filter.transform;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.IntNode;
import com.fasterxml.jackson.databind.node.TextNode;
import com.google.crypto.tink.KeysetHandle;
import com.google.crypto.tink.aead.AeadConfig;
import com.google.crypto.tink.aead.PredefinedAeadParameters;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.crypto.ValueEnvelope;
import io.meshcrypt.meshconfig.transform.BodyReplace;
import io.meshcrypt.meshconfig.transform.FieldOp;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.List;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class JsonTransformerTest {
    private static ValueCipherV1 cipher;
    private static JsonTransformer engine;

    @BeforeAll
    static void keys() throws Exception {
        AeadConfig.register();
        cipher = ValueCipherV1.fromKeysetHandle(KeysetHandle.generateNew(PredefinedAeadParameters.AES256_GCM));
        engine = new JsonTransformer(cipher);
    }

    @Test
    void givenFieldsOfEveryType_whenEncryptedThenDecrypted_thenOriginalBytesBack() throws Exception {
        String original = "{\"s\":\"text\",\"n\":12.50,\"big\":123456789012345678901234567890,\"o\":{\"k\":[1,true,null]},\"b\":false,\"z\":null}";
        List<String> fields = List.of("/s", "/n", "/big", "/o", "/b", "/z");

        String encrypted = apply(original, fields.stream().<FieldOp>map(f -> new FieldOp.Encrypt(JsonPointer.parse(f), true)).toList(), "t");
        String decrypted = apply(encrypted, fields.stream().<FieldOp>map(f -> new FieldOp.Decrypt(JsonPointer.parse(f), true)).toList(), "t");

        JsonNode doc = JsonTransformer.parse(encrypted.getBytes(StandardCharsets.UTF_8));
        for (String f : fields) {
            byte[] envelope = Base64.getDecoder().decode(JsonPointer.parse(f).find(doc).textValue());
            assertTrue(ValueEnvelope.isEnvelope(ByteBuffer.wrap(envelope)), f);
        }
        assertEquals(original, decrypted);
    }

    @Test
    void givenFieldEncryptedForOneBinding_whenDecryptedUnderAnother_thenInvalidInput() throws Exception {
        String encrypted = apply("{\"a\":1}", List.of(new FieldOp.Encrypt(JsonPointer.parse("/a"), false)), "orders");

        TransformException e = assertThrows(TransformException.class,
                () -> apply(encrypted, List.of(new FieldOp.Decrypt(JsonPointer.parse("/a"), false)), "payments"));

        assertEquals(TransformException.Kind.INVALID_INPUT, e.kind());
    }

    @ParameterizedTest
    @ValueSource(strings = {"{\"a\":5}", "{\"a\":\"not base64!\"}", "{\"a\":\"aGVsbG8=\"}"})
    void givenFieldThatIsNotAnEnvelope_whenDecrypted_thenInvalidInputWithoutQuotingIt(String doc) {
        TransformException e = assertThrows(TransformException.class,
                () -> apply(doc, List.of(new FieldOp.Decrypt(JsonPointer.parse("/a"), false)), "t"));

        assertEquals(TransformException.Kind.INVALID_INPUT, e.kind());
        assertFalse(e.getMessage().contains("aGVsbG8") || e.getMessage().contains("base64!"), e.getMessage());
    }

    @Test
    void givenTamperedEnvelope_whenDecrypted_thenInvalidInput() throws Exception {
        String encrypted = apply("{\"a\":\"secret\"}", List.of(new FieldOp.Encrypt(JsonPointer.parse("/a"), false)), "t");
        JsonNode doc = JsonTransformer.parse(encrypted.getBytes(StandardCharsets.UTF_8));
        byte[] envelope = Base64.getDecoder().decode(doc.get("a").textValue());
        envelope[envelope.length - 1] ^= 1;
        String tampered = "{\"a\":\"" + Base64.getEncoder().encodeToString(envelope) + "\"}";

        assertThrows(TransformException.class, () -> apply(tampered, List.of(new FieldOp.Decrypt(JsonPointer.parse("/a"), false)), "t"));
    }

    @Test
    void givenRedactReplaceAndSet_whenApplied_thenFieldsChangedInOrder() throws Exception {
        String out = apply("{\"cvv\":123,\"email\":\"ada@example.com\",\"meta\":{}}", List.of(
                new FieldOp.Redact(JsonPointer.parse("/cvv"), "***", false),
                new FieldOp.Replace(JsonPointer.parse("/email"), Pattern.compile("^[^@]+"), "xxx", false),
                new FieldOp.Set(JsonPointer.parse("/meta/by"), TextNode.valueOf("meshcrypt")),
                new FieldOp.Set(JsonPointer.parse("/v"), IntNode.valueOf(2))), "t");

        assertEquals("{\"cvv\":\"***\",\"email\":\"xxx@example.com\",\"meta\":{\"by\":\"meshcrypt\"},\"v\":2}", out);
    }

    @Test
    void givenMissingFields_whenOptionalOrRequired_thenSkippedOrInvalid() throws Exception {
        String doc = "{\"a\":1}";

        assertEquals(doc, apply(doc, List.of(new FieldOp.Encrypt(JsonPointer.parse("/b"), false),
                new FieldOp.Redact(JsonPointer.parse("/a/x"), "r", false)), "t"));
        TransformException e = assertThrows(TransformException.class,
                () -> apply(doc, List.of(new FieldOp.Encrypt(JsonPointer.parse("/b"), true)), "t"));
        assertEquals(TransformException.Kind.INVALID_INPUT, e.kind());
        assertThrows(TransformException.class,
                () -> apply(doc, List.of(new FieldOp.Set(JsonPointer.parse("/missing/x"), IntNode.valueOf(1))), "t"));
    }

    @Test
    void givenReplaceOnNonString_whenApplied_thenInvalidInput() {
        assertThrows(TransformException.class, () -> apply("{\"a\":1}",
                List.of(new FieldOp.Replace(JsonPointer.parse("/a"), Pattern.compile("1"), "2", false)), "t"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "   ", "not json", "{\"a\":1", "{\"a\":1}{\"b\":2}", "{\"a\":1,\"a\":2}", "[1,]"})
    void givenNonJsonOrAmbiguousJson_whenApplied_thenInvalidInput(String body) {
        TransformException e = assertThrows(TransformException.class,
                () -> apply(body, List.of(new FieldOp.Redact(JsonPointer.parse("/a"), "r", false)), "t"));

        assertEquals(TransformException.Kind.INVALID_INPUT, e.kind());
    }

    @Test
    void givenDirectByteBufferSlice_whenApplied_thenOnlyItsWindowIsRead() throws Exception {
        byte[] json = "xx{\"a\":\"v\"}yy".getBytes(StandardCharsets.UTF_8);
        ByteBuffer direct = ByteBuffer.allocateDirect(json.length).put(json).flip().position(2).limit(json.length - 2);

        ByteBuffer out = engine.apply(direct.asReadOnlyBuffer(), List.of(new FieldOp.Redact(JsonPointer.parse("/a"), "r", false)), "t");

        assertArrayEquals("{\"a\":\"r\"}".getBytes(StandardCharsets.UTF_8), toArray(out));
        assertEquals(2, direct.position());
    }

    @Test
    void givenReplacementWithUnknownGroup_whenBuilt_thenRejectedUpFront() {
        assertThrows(IllegalArgumentException.class, () -> new BodyReplace(Pattern.compile("(a)"), "$2"));
        assertThrows(IllegalArgumentException.class, () -> new BodyReplace(Pattern.compile("a"), "${name}"));
        assertEquals("b-a", new BodyReplace(Pattern.compile("(a)-(b)"), "$2-$1").apply("a-b"));
    }

    private static String apply(String json, List<FieldOp> ops, String binding) throws TransformException {
        return new String(toArray(engine.apply(ByteBuffer.wrap(json.getBytes(StandardCharsets.UTF_8)), ops, binding)),
                StandardCharsets.UTF_8);
    }

    private static byte[] toArray(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.duplicate().get(out);
        return out;
    }
}
