package io.meshcrypt.filter.subjects;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.meshcrypt.filter.crypto.EnvelopeException;
import io.meshcrypt.filter.crypto.SubjectValueCipher;
import io.meshcrypt.filter.crypto.ValueEnvelopeV3;
import io.meshcrypt.filter.kms.KeyNotReadyException;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.kms.LocalKekProvider;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.HexFormat;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Envelope version 3 (values under subject keys): layout and AAD checked with plain JCE; forgotten subjects read as null. */
class SubjectValueCipherTest {
    private static final Duration WAIT = Duration.ofSeconds(5);
    private static final String SCOPE = "users*";
    private static final String TOPIC = "users.eu";

    @TempDir
    Path dir;
    private SubjectKeyStore store;
    private SubjectValueCipher cipher;

    @BeforeEach
    void store() throws Exception {
        Keysets.create(dir.resolve("kek.json"));
        store = new SubjectKeyStore(new FakeSubjectKeyLog().view(), new LocalKekProvider(dir.resolve("kek.json")),
                SubjectKeyStore.Settings.defaults());
        store.loaded().join();
        cipher = new SubjectValueCipher(store);
    }

    @AfterEach
    void close() {
        store.close();
    }

    private static ByteBuffer bytes(String s) {
        return ByteBuffer.wrap(s.getBytes(StandardCharsets.UTF_8));
    }

    private ByteBuffer encrypt(String subject, String value) throws Exception {
        return KeyNotReadyException.awaitBlocking(() -> cipher.encrypt(TOPIC, SCOPE, bytes(subject), bytes(value), null), WAIT);
    }

    private static byte[] array(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.duplicate().get(out);
        return out;
    }

    @Test
    void givenAValue_whenEncrypted_thenTheEnvelopeIsVersion3NamingTheSubjectKeyAndJceDecryptsItWithTheTopicBound()
            throws Exception {
        byte[] envelope = array(encrypt("alice", "{\"name\":\"Alice\"}"));
        SubjectKeyStore.SubjectKey key = store.forEncryption(SCOPE, bytes("alice"));

        assertEquals(29 + 12 + 16 + 16, envelope.length);
        assertEquals("004d434503", HexFormat.of().formatHex(envelope, 0, 5));
        assertArrayEquals(key.ref(), Arrays.copyOfRange(envelope, 5, 21));
        assertEquals(key.keyId(), ByteBuffer.wrap(envelope).getLong(21));
        Cipher jce = Cipher.getInstance("AES/GCM/NoPadding");
        jce.init(Cipher.DECRYPT_MODE, key.key(), new GCMParameterSpec(128, envelope, 29, 12));
        jce.updateAAD(envelope, 0, 29);
        jce.updateAAD(("topic:" + TOPIC).getBytes(StandardCharsets.UTF_8));
        assertEquals("{\"name\":\"Alice\"}", new String(jce.doFinal(envelope, 41, envelope.length - 41), StandardCharsets.UTF_8));
        assertEquals("{\"name\":\"Alice\"}", StandardCharsets.UTF_8.decode(cipher.decrypt(TOPIC, ByteBuffer.wrap(envelope), null)).toString());
    }

    @Test
    void givenAnEnvelopeMovedToAnotherTopicOrTampered_whenDecrypted_thenItFails() throws Exception {
        byte[] envelope = array(encrypt("alice", "secret"));

        assertThrows(EnvelopeException.class, () -> cipher.decrypt("orders", ByteBuffer.wrap(envelope), null));
        byte[] tampered = envelope.clone();
        tampered[tampered.length - 20] ^= 1;
        assertThrows(EnvelopeException.class, () -> cipher.decrypt(TOPIC, ByteBuffer.wrap(tampered), null));
        assertThrows(EnvelopeException.class, () -> cipher.decrypt(TOPIC, ByteBuffer.wrap(envelope, 0, 40), null),
                "truncated");
    }

    @Test
    void givenAForgottenSubject_whenItsRecordsAreDecrypted_thenNullAndOtherSubjectsStillDecrypt() throws Exception {
        ByteBuffer alice = encrypt("alice", "a");
        ByteBuffer bob = encrypt("bob", "b");

        store.forget(SCOPE, "alice", WAIT);

        assertNull(cipher.decrypt(TOPIC, alice, null));
        assertEquals("b", StandardCharsets.UTF_8.decode(cipher.decrypt(TOPIC, bob, null)).toString());
        assertThrows(SubjectKeyStore.SubjectForgottenException.class, () -> encrypt("alice", "again"));
        assertEquals(true, ValueEnvelopeV3.isVersion3(bob));
    }
}
