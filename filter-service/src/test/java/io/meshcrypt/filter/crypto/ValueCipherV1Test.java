package io.meshcrypt.filter.crypto;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.crypto.tink.Aead;
import com.google.crypto.tink.KeysetHandle;
import com.google.crypto.tink.aead.AeadConfig2026;
import com.google.crypto.tink.aead.PredefinedAeadParameters;
import io.meshcrypt.filter.kms.Keysets;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ValueCipherV1Test {

    private static final String TOPIC = "orders";
    private static final byte[] PLAINTEXT = "{\"order\":42,\"card\":\"4111\"}".getBytes(StandardCharsets.UTF_8);

    private static KeysetHandle keyset;
    private static ValueCipherV1 cipher;

    @BeforeAll
    static void keyset() throws GeneralSecurityException {
        keyset = Keysets.generate();
        cipher = ValueCipherV1.fromKeysetHandle(keyset);
    }

    @Test
    void givenValue_whenEncryptedAndDecrypted_thenPlaintextRestored() throws Exception {
        ByteBuffer envelope = cipher.encrypt(TOPIC, ByteBuffer.wrap(PLAINTEXT));

        assertArrayEquals(PLAINTEXT, bytes(cipher.decrypt(TOPIC, envelope)));
    }

    @Test
    void givenValue_whenEncrypted_thenLayoutIsMagicVersionTinkPrefixPrimaryKeyIdNonceCiphertextTag() throws Exception {
        byte[] env = bytes(cipher.encrypt(TOPIC, ByteBuffer.wrap(PLAINTEXT)));

        assertEquals(PLAINTEXT.length + 38, env.length);
        assertEquals(38, ValueEnvelopeV1.OVERHEAD);
        assertEquals(0x00, env[0]);
        assertEquals(0x4D, env[1]);
        assertEquals(0x43, env[2]);
        assertEquals(0x45, env[3]);
        assertEquals(0x01, env[4], "format version");
        assertEquals(0x01, env[5], "Tink output prefix marker");
        int keyId = ByteBuffer.wrap(env, 6, 4).getInt();
        assertEquals(keyset.getPrimary().getId(), keyId);
        assertEquals(cipher.primaryKeyId(), keyId);
        // the ciphertext must not contain the plaintext
        assertFalse(new String(env, StandardCharsets.ISO_8859_1).contains("4111"));
    }

    @Test
    void givenSamePlaintextTwice_whenEncrypted_thenNoncesDiffer() throws Exception {
        byte[] a = bytes(cipher.encrypt(TOPIC, ByteBuffer.wrap(PLAINTEXT)));
        byte[] b = bytes(cipher.encrypt(TOPIC, ByteBuffer.wrap(PLAINTEXT)));

        assertNotEquals(ByteBuffer.wrap(a, 10, 12), ByteBuffer.wrap(b, 10, 12));
        assertFalse(Arrays.equals(a, b));
    }

    @Test
    void givenEnvelope_whenDecryptedWithTinkAead_thenSameAadAndFormatAsTink() throws Exception {
        byte[] env = bytes(cipher.encrypt(TOPIC, ByteBuffer.wrap(PLAINTEXT)));
        Aead tink = keyset.getPrimitive(AeadConfig2026.get(), Aead.class);

        byte[] tinkCiphertext = Arrays.copyOfRange(env, 5, env.length);
        byte[] plaintext = tink.decrypt(tinkCiphertext, aad(TOPIC));

        assertArrayEquals(PLAINTEXT, plaintext);
    }

    @Test
    void givenTinkAeadCiphertextBehindHeader_whenDecrypted_thenPlaintextRestored() throws Exception {
        Aead tink = keyset.getPrimitive(AeadConfig2026.get(), Aead.class);
        byte[] tinkCiphertext = tink.encrypt(PLAINTEXT, aad(TOPIC));
        ByteBuffer env = ByteBuffer.allocate(5 + tinkCiphertext.length).put(new byte[] {0, 0x4D, 0x43, 0x45, 1})
                .put(tinkCiphertext).flip();

        assertArrayEquals(PLAINTEXT, bytes(cipher.decrypt(TOPIC, env)));
    }

    @Test
    void givenEnvelopeForOneTopic_whenDecryptedForAnother_thenFailsNamingTopicAndKey() throws Exception {
        ByteBuffer envelope = cipher.encrypt(TOPIC, ByteBuffer.wrap(PLAINTEXT));

        EnvelopeException e = assertThrows(EnvelopeException.class, () -> cipher.decrypt("payments", envelope));

        assertEquals(EnvelopeException.class, e.getClass());
        assertTrue(e.getMessage().contains("'payments'"), e.getMessage());
        assertTrue(e.getMessage().contains(Integer.toUnsignedString(cipher.primaryKeyId())), e.getMessage());
        assertFalse(e.getMessage().contains("4111"), e.getMessage());
    }

    @Test
    void givenAnyByteTampered_whenDecrypted_thenFails() throws Exception {
        byte[] env = bytes(cipher.encrypt(TOPIC, ByteBuffer.wrap(PLAINTEXT)));
        // offsets 0-5 and 6-9 fail as not-an-envelope / bad version / unknown key; the rest fails authentication
        for (int i = 0; i < env.length; i++) {
            byte[] tampered = env.clone();
            tampered[i] ^= 0x01;

            assertThrows(GeneralSecurityException.class, () -> cipher.decrypt(TOPIC, ByteBuffer.wrap(tampered)),
                    "flipped bit at offset " + i);
        }
        byte[] tampered = env.clone();
        tampered[env.length - 1] ^= (byte) 0x80;
        assertEquals(EnvelopeException.class,
                assertThrows(EnvelopeException.class, () -> cipher.decrypt(TOPIC, ByteBuffer.wrap(tampered))).getClass());
    }

    @Test
    void givenEnvelopeFromOtherKeyset_whenDecrypted_thenUnknownKeyNamingKeyId() throws Exception {
        ValueCipherV1 other = ValueCipherV1.fromKeysetHandle(Keysets.generate());
        ByteBuffer envelope = other.encrypt(TOPIC, ByteBuffer.wrap(PLAINTEXT));

        UnknownKeyException e = assertThrows(UnknownKeyException.class, () -> cipher.decrypt(TOPIC, envelope));

        assertEquals(other.primaryKeyId(), e.keyId());
        assertTrue(e.getMessage().contains(Integer.toUnsignedString(other.primaryKeyId())), e.getMessage());
        assertTrue(e.getMessage().contains("'orders'"), e.getMessage());
    }

    @Test
    void givenRotatedKeyset_whenDecryptingOldValue_thenReadableAndNewValuesUseNewKey(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("keyset.json");
        int firstId = Keysets.create(file);
        ValueCipherV1 before = ValueCipherV1.fromKeysetFile(file);
        ByteBuffer oldValue = before.encrypt(TOPIC, ByteBuffer.wrap(PLAINTEXT));

        int secondId = Keysets.rotate(file);
        ValueCipherV1 after = ValueCipherV1.fromKeysetFile(file);
        ByteBuffer newValue = after.encrypt(TOPIC, ByteBuffer.wrap(PLAINTEXT));

        assertNotEquals(firstId, secondId);
        assertEquals(secondId, after.primaryKeyId());
        assertEquals(secondId, ValueEnvelopeV1.inspect(newValue).keyId());
        assertArrayEquals(PLAINTEXT, bytes(after.decrypt(TOPIC, oldValue)));
        assertThrows(UnknownKeyException.class, () -> before.decrypt(TOPIC, newValue));
    }

    @Test
    void givenEmptyValue_whenEncryptedAndDecrypted_thenEmptyRestored() throws Exception {
        ByteBuffer envelope = cipher.encrypt(TOPIC, ByteBuffer.allocate(0));

        assertEquals(38, envelope.remaining());
        assertEquals(0, cipher.decrypt(TOPIC, envelope).remaining());
    }

    @Test
    void givenPlainValue_whenDecrypted_thenNotAnEnvelope() {
        ByteBuffer plain = ByteBuffer.wrap(PLAINTEXT);

        NotAnEnvelopeException e = assertThrows(NotAnEnvelopeException.class, () -> cipher.decrypt(TOPIC, plain));

        assertFalse(ValueEnvelope.isEnvelope(plain));
        assertTrue(e.getMessage().contains("'orders'"), e.getMessage());
        assertFalse(e.getMessage().contains("4111"), e.getMessage());
    }

    @Test
    void givenSliceOfLargerDirectBuffer_whenEncrypted_thenOnlyPositionToLimitUsedAndPositionKept() throws Exception {
        ByteBuffer batch = ByteBuffer.allocateDirect(PLAINTEXT.length + 20).order(ByteOrder.LITTLE_ENDIAN);
        batch.position(7);
        batch.put(PLAINTEXT);
        ByteBuffer value = batch.duplicate().position(7).limit(7 + PLAINTEXT.length);

        ByteBuffer envelope = cipher.encrypt(TOPIC, value);

        assertEquals(7, value.position());
        ByteBuffer framed = ByteBuffer.allocateDirect(envelope.remaining() + 9).position(4);
        framed.put(envelope.duplicate());
        framed.position(4).limit(4 + envelope.remaining());
        ByteBuffer decrypted = cipher.decrypt(TOPIC, framed);
        assertEquals(4, framed.position());
        assertArrayEquals(PLAINTEXT, bytes(decrypted));
    }

    @Test
    void givenManyThreads_whenEncryptingAndDecryptingConcurrently_thenAllRoundTrip() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(8);
        try {
            List<Callable<Boolean>> tasks = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                String topic = "topic-" + t;
                tasks.add(() -> {
                    for (int i = 0; i < 500; i++) {
                        byte[] value = (topic + ":" + i).getBytes(StandardCharsets.UTF_8);
                        if (!Arrays.equals(value, bytes(cipher.decrypt(topic, cipher.encrypt(topic, ByteBuffer.wrap(value)))))) {
                            return false;
                        }
                    }
                    return true;
                });
            }
            for (Future<Boolean> f : pool.invokeAll(tasks)) {
                assertTrue(f.get());
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void givenKeysetWithNonAesGcmKey_whenCipherCreated_thenRejectedNamingKey() throws Exception {
        KeysetHandle chacha = KeysetHandle.generateNew(PredefinedAeadParameters.CHACHA20_POLY1305, AeadConfig2026.get());

        GeneralSecurityException e = assertThrows(GeneralSecurityException.class,
                () -> ValueCipherV1.fromKeysetHandle(chacha));

        assertTrue(e.getMessage().contains(Integer.toUnsignedString(chacha.getPrimary().getId())), e.getMessage());
        assertTrue(e.getMessage().contains("AES-256-GCM"), e.getMessage());
    }

    private static byte[] aad(String topic) {
        byte[] suffix = ("topic:" + topic).getBytes(StandardCharsets.UTF_8);
        byte[] aad = new byte[5 + suffix.length];
        System.arraycopy(new byte[] {0, 0x4D, 0x43, 0x45, 1}, 0, aad, 0, 5);
        System.arraycopy(suffix, 0, aad, 5, suffix.length);
        return aad;
    }

    static byte[] bytes(ByteBuffer buffer) {
        byte[] out = new byte[buffer.remaining()];
        buffer.duplicate().get(out);
        return out;
    }
}
