package io.meshcrypt.filter.transform;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.google.crypto.tink.KeysetHandle;
import com.google.crypto.tink.aead.AeadConfig;
import com.google.crypto.tink.aead.PredefinedAeadParameters;
import io.meshcrypt.filter.crypto.EnvelopeException;
import io.meshcrypt.filter.crypto.SubjectValueCipher;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.kms.KeyNotReadyException;
import io.meshcrypt.filter.subjects.InMemorySubjectKeys;
import io.meshcrypt.filter.subjects.SubjectKeyStore;
import io.meshcrypt.meshconfig.policy.Forgotten;
import io.meshcrypt.meshconfig.policy.SubjectSource;
import io.meshcrypt.meshconfig.transform.FieldOp;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** JSON fields under subject keys: envelope layout and binding, forgotten subjects, missing subjects, wrong scopes. */
class SubjectFieldsTest {
    private static final Duration WAIT = Duration.ofSeconds(10);
    private static final String SCOPE = "customers";
    private static final String BINDING = "orders";
    private static final JsonPointer CARD = JsonPointer.parse("/card/number");
    private static final List<FieldOp> ENCRYPT = List.of(new FieldOp.Encrypt(CARD, false));
    private static final List<FieldOp> DECRYPT = List.of(new FieldOp.Decrypt(CARD, false));
    private static final FieldSubject IN_BODY = FieldSubject.of(SCOPE,
            SubjectSource.value(JsonPointer.parse("/customer/id")), Forgotten.NULL);

    @TempDir
    Path dir;
    private SubjectKeyStore store;
    private JsonTransformer transformer;

    @BeforeEach
    void setUp() throws Exception {
        AeadConfig.register();
        store = InMemorySubjectKeys.open(dir);
        ValueCipherV1 dataKeys = ValueCipherV1.fromKeysetHandle(KeysetHandle.generateNew(PredefinedAeadParameters.AES256_GCM));
        transformer = new JsonTransformer(dataKeys, new SubjectValueCipher(store));
    }

    @AfterEach
    void tearDown() {
        store.close();
    }

    private static ByteBuffer utf8(String s) {
        return ByteBuffer.wrap(s.getBytes(StandardCharsets.UTF_8));
    }

    /** The subject's key made ahead, so that the transform does not meet a key on its way. */
    private SubjectKeyStore.SubjectKey keyOf(String scope, String subject) throws Exception {
        return KeyNotReadyException.awaitBlocking(() -> store.forEncryption(scope, utf8(subject)), WAIT);
    }

    private String apply(String json, List<FieldOp> ops, FieldSubject subject) throws TransformException {
        return new String(JsonTransformer.serialize(transformer.apply(JsonTransformer.parse(
                json.getBytes(StandardCharsets.UTF_8)), ops, BINDING, subject)), StandardCharsets.UTF_8);
    }

    private static String order(String customer) {
        return "{\"customer\":{\"id\":\"" + customer + "\"},\"card\":{\"number\":\"4111111111111111\"},\"total\":12.50}";
    }

    @Test
    void givenASubjectInTheBody_whenItsFieldIsEncrypted_thenAVersion3EnvelopeBoundToBindingAndScopeThatJceOpens()
            throws Exception {
        SubjectKeyStore.SubjectKey key = keyOf(SCOPE, "alice");

        JsonNode out = JsonTransformer.parse(apply(order("alice"), ENCRYPT, IN_BODY).getBytes(StandardCharsets.UTF_8));
        byte[] envelope = Base64.getDecoder().decode(out.at("/card/number").textValue());

        assertEquals("alice", out.at("/customer/id").textValue(), "the rest untouched");
        assertEquals("12.50", out.at("/total").asText(), "the rest untouched");
        byte[] plaintext = "\"4111111111111111\"".getBytes(StandardCharsets.UTF_8);
        assertEquals(29 + 12 + plaintext.length + 16, envelope.length);
        assertEquals("004d434503", HexFormat.of().formatHex(envelope, 0, 5));
        assertArrayEquals(key.ref(), Arrays.copyOfRange(envelope, 5, 21));
        assertEquals(key.keyId(), ByteBuffer.wrap(envelope).getLong(21));
        Cipher jce = Cipher.getInstance("AES/GCM/NoPadding");
        jce.init(Cipher.DECRYPT_MODE, key.key(), new GCMParameterSpec(128, envelope, 29, 12));
        jce.updateAAD(envelope, 0, 29);
        jce.updateAAD(("topic:" + BINDING + "\0" + SCOPE).getBytes(StandardCharsets.UTF_8));
        assertArrayEquals(plaintext, jce.doFinal(envelope, 41, envelope.length - 41));
    }

    @Test
    void givenTwoSubjects_whenOneIsForgotten_thenItsFieldReadsAsNullOrThePlaceholderAndEverythingElseIsUntouched()
            throws Exception {
        keyOf(SCOPE, "alice");
        keyOf(SCOPE, "bob");
        String alice = apply(order("alice"), ENCRYPT, IN_BODY);
        String bob = apply(order("bob"), ENCRYPT, IN_BODY);
        assertEquals(order("alice"), apply(alice, DECRYPT, IN_BODY), "before the forget: plaintext");

        store.forget(SCOPE, "alice", WAIT);

        assertEquals("{\"customer\":{\"id\":\"alice\"},\"card\":{\"number\":null},\"total\":12.50}",
                apply(alice, DECRYPT, IN_BODY));
        FieldSubject placeholder = FieldSubject.of(SCOPE, SubjectSource.header("user-id"), new Forgotten("[erased]"));
        assertEquals("{\"customer\":{\"id\":\"alice\"},\"card\":{\"number\":\"[erased]\"},\"total\":12.50}",
                apply(alice, DECRYPT, placeholder));
        assertEquals(order("bob"), apply(bob, DECRYPT, IN_BODY), "another subject: untouched");
    }

    @Test
    void givenAFieldOfOneScope_whenARuleNamingAnotherScopeDecryptsIt_thenItFailsAndNoPlaintextComesOut() throws Exception {
        keyOf(SCOPE, "alice");
        String alice = apply(order("alice"), ENCRYPT, IN_BODY);
        FieldSubject otherScope = FieldSubject.of("payments", SubjectSource.value(JsonPointer.parse("/customer/id")),
                Forgotten.NULL);

        TransformException wrongScope = assertThrows(TransformException.class, () -> apply(alice, DECRYPT, otherScope));
        TransformException noSubject = assertThrows(TransformException.class, () -> apply(alice, DECRYPT, null));

        assertEquals(TransformException.Kind.INVALID_INPUT, wrongScope.kind());
        assertInstanceOf(EnvelopeException.class, wrongScope.getCause());
        assertFalse(wrongScope.getMessage().contains("4111"), wrongScope.getMessage());
        assertEquals(TransformException.Kind.INVALID_INPUT, noSubject.kind());
        assertTrue(noSubject.getMessage().contains("is under a subject key, and the rule names no subject"),
                noSubject.getMessage());
    }

    @Test
    void givenADocumentNamingNoSubject_whenItsFieldIsEncrypted_thenItIsRefusedWhateverOnInvalidSays() {
        TransformException missing = assertThrows(TransformException.class,
                () -> apply("{\"card\":{\"number\":\"4111111111111111\"}}", ENCRYPT, IN_BODY));
        TransformException notAString = assertThrows(TransformException.class,
                () -> apply("{\"customer\":{\"id\":{}},\"card\":{\"number\":\"4111\"}}", ENCRYPT, IN_BODY));
        TransformException noHeader = assertThrows(TransformException.class,
                () -> apply(order("alice"), ENCRYPT, FieldSubject.of(SCOPE, SubjectSource.header("user-id"),
                        Forgotten.NULL).withId(null)));

        assertEquals(TransformException.Kind.REFUSED, missing.kind());
        assertEquals("the document names no subject (no string or number at /customer/id): refused, as field"
                + " /card/number could not be forgotten", missing.getMessage());
        assertEquals(TransformException.Kind.REFUSED, notAString.kind());
        assertEquals(TransformException.Kind.REFUSED, noHeader.kind());
    }

    @Test
    void givenAForgottenSubject_whenNewDataOfItIsEncrypted_thenItIsRefused() throws Exception {
        keyOf(SCOPE, "alice");
        store.forget(SCOPE, "alice", WAIT);

        TransformException e = assertThrows(TransformException.class, () -> apply(order("alice"), ENCRYPT, IN_BODY));

        assertEquals(TransformException.Kind.REFUSED, e.kind());
        assertEquals("the document's subject was forgotten: refused", e.getMessage());
    }

    @Test
    void givenASubjectIdThatIsANumber_whenEncrypted_thenTheKeyOfItsTextIsUsed() throws Exception {
        SubjectKeyStore.SubjectKey key = keyOf(SCOPE, "42");

        JsonNode out = JsonTransformer.parse(apply("{\"customer\":{\"id\":42},\"card\":{\"number\":1}}", ENCRYPT,
                IN_BODY).getBytes(StandardCharsets.UTF_8));

        byte[] envelope = Base64.getDecoder().decode(out.at("/card/number").textValue());
        assertArrayEquals(key.ref(), Arrays.copyOfRange(envelope, 5, 21));
    }
}
