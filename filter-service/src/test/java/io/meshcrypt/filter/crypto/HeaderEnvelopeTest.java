package io.meshcrypt.filter.crypto;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.kms.LocalKekProvider;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.Arrays;
import java.util.Random;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Record-header envelopes: layout, binding to topic and header name, and what a reader refuses. */
class HeaderEnvelopeTest extends DekManagerFixture {
    private ValueCipher producer;
    private ValueCipher replica;
    private final ReusableBuffer out = new ReusableBuffer();

    @BeforeEach
    void ciphers() {
        producer = new ValueCipherV2(manager(DekManager.Settings.defaults()), null).blocking(Duration.ofSeconds(10));
        replica = new ValueCipherV2(manager(DekManager.Settings.defaults()), null).blocking(Duration.ofSeconds(10));
    }

    private static byte[] bytes(ByteBuffer b) {
        byte[] a = new byte[b.remaining()];
        b.duplicate().get(a);
        return a;
    }

    private byte[] encrypt(String topic, String name, String value) throws GeneralSecurityException {
        return bytes(producer.encryptHeader(topic, utf8(name), utf8(value), out));
    }

    @Test
    void givenHeaderValue_whenEncrypted_thenLayoutIsVersion2sAfterTheHeaderMagicAndTheAadBindsTopicAndName()
            throws Exception {
        byte[] envelope = encrypt("orders", "user-id", "u-42");
        byte[] asValue = bytes(producer.encrypt("orders", utf8("u-42")));

        assertArrayEquals(new byte[]{0x00, 0x4D, 0x43, 0x48, 0x01}, Arrays.copyOf(envelope, 5), "\\0MCH, version 1");
        ValueEnvelopeV2.Info info = ValueEnvelopeV2.parseHeaderEnvelope(ByteBuffer.wrap(envelope), "orders");
        assertEquals(new LocalKekProvider(keyset).currentKekId(), info.kekId());
        assertEquals(info.headerLength() + 12 + 4 + 16, envelope.length);
        assertEquals(asValue.length, envelope.length, "same overhead as a version-2 value");
        assertArrayEquals(Arrays.copyOfRange(asValue, 5, info.headerLength()),
                Arrays.copyOfRange(envelope, 5, info.headerLength()), "the topic's current DEK, wrapped as for values");

        // Documented AAD, checked independently of the cipher: header || "topic:orders" || 00 || "user-id".
        byte[] dek = dekOf(envelope);
        Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding");
        int h = info.headerLength();
        gcm.init(Cipher.DECRYPT_MODE, new javax.crypto.spec.SecretKeySpec(dek, "AES"),
                new GCMParameterSpec(128, envelope, h, 12));
        gcm.updateAAD(envelope, 0, h);
        gcm.updateAAD("topic:orders".getBytes(StandardCharsets.UTF_8));
        gcm.updateAAD(new byte[]{0x00});
        gcm.updateAAD("user-id".getBytes(StandardCharsets.UTF_8));
        assertEquals("u-42", new String(gcm.doFinal(envelope, h + 12, envelope.length - h - 12), StandardCharsets.UTF_8));
    }

    /** The DEK of the producer's current data key for {@code orders}, unwrapped with the local KEK. */
    private byte[] dekOf(byte[] envelope) throws Exception {
        ValueEnvelopeV2.Info info = ValueEnvelopeV2.parseHeaderEnvelope(ByteBuffer.wrap(envelope), "orders");
        byte[] wrapped = Arrays.copyOfRange(envelope, info.headerLength() - info.wrappedDekLength(), info.headerLength());
        return new LocalKekProvider(keyset).unwrap(info.kekId(), wrapped,
                new io.meshcrypt.filter.kms.DekContext("orders", info.dekId()));
    }

    @Test
    void givenHeaderEnvelope_whenDecryptedByAnotherReplicaUnderItsName_thenPlaintext() throws Exception {
        byte[] envelope = encrypt("orders", "user-id", "u-42");

        ByteBuffer plain = replica.decryptHeader("orders", utf8("user-id"), ByteBuffer.wrap(envelope), new ReusableBuffer());

        assertEquals("u-42", StandardCharsets.UTF_8.decode(plain).toString());
    }

    @Test
    void givenHeaderEnvelope_whenMovedToAnotherHeaderName_thenAuthenticationFails() throws Exception {
        byte[] envelope = encrypt("orders", "user-id", "u-42");

        EnvelopeException e = assertThrows(EnvelopeException.class, () -> replica.decryptHeader("orders",
                utf8("x-trace"), ByteBuffer.wrap(envelope), new ReusableBuffer()));

        assertTrue(e.getMessage().contains("another header name or topic"), e.getMessage());
        assertThrows(EnvelopeException.class, () -> replica.decryptHeader("orders", utf8("user-id "),
                ByteBuffer.wrap(envelope), null), "a name that only starts with the right one");
    }

    @Test
    void givenHeaderEnvelope_whenMovedToAnotherTopic_thenItFails() throws Exception {
        byte[] envelope = encrypt("orders", "user-id", "u-42");

        assertThrows(GeneralSecurityException.class, () -> replica.decryptHeader("payments", utf8("user-id"),
                ByteBuffer.wrap(envelope), null));
    }

    @Test
    void givenEnvelopesOfTheOtherKind_whenReadAsHeaderOrValue_thenRefused() throws Exception {
        byte[] headerEnvelope = encrypt("orders", "user-id", "u-42");
        byte[] valueEnvelope = bytes(producer.encrypt("orders", utf8("u-42")));

        assertThrows(NotAnEnvelopeException.class, () -> replica.decryptHeader("orders", utf8("user-id"),
                ByteBuffer.wrap(valueEnvelope), null), "a value envelope copied into a header");
        assertThrows(NotAnEnvelopeException.class, () -> replica.decrypt("orders", ByteBuffer.wrap(headerEnvelope)),
                "a header envelope copied into a value");
        assertFalse(ValueEnvelope.isEnvelope(ByteBuffer.wrap(headerEnvelope)));
        assertTrue(HeaderEnvelope.isHeaderEnvelope(ByteBuffer.wrap(headerEnvelope)));
    }

    @Test
    void givenTruncatedOrTamperedHeaderEnvelopes_whenDecrypted_thenEachFailsClosed() throws Exception {
        byte[] envelope = encrypt("orders", "user-id", "u-42");

        for (int length = 0; length < envelope.length; length++) {
            ByteBuffer cut = ByteBuffer.wrap(Arrays.copyOf(envelope, length));
            assertThrows(GeneralSecurityException.class, () -> replica.decryptHeader("orders", utf8("user-id"), cut, null),
                    "truncated to " + length + " bytes");
        }
        for (int i = 0; i < envelope.length; i++) {
            byte[] tampered = envelope.clone();
            tampered[i] ^= 0x01;
            assertThrows(GeneralSecurityException.class, () -> replica.decryptHeader("orders", utf8("user-id"),
                    ByteBuffer.wrap(tampered), null), "byte " + i + " flipped");
        }
        byte[] version2 = envelope.clone();
        version2[4] = 2;
        UnsupportedEnvelopeVersionException e = assertThrows(UnsupportedEnvelopeVersionException.class,
                () -> replica.decryptHeader("orders", utf8("user-id"), ByteBuffer.wrap(version2), null));
        assertTrue(e.getMessage().contains("version 2"), e.getMessage());
    }

    @Test
    void givenVersion1OnlyCipher_whenAskedForHeaders_thenRefusedNamingKeys() throws Exception {
        ValueCipher v1Only = new ValueCipher() {
            @Override
            public ByteBuffer encrypt(String topic, ByteBuffer plaintext) {
                throw new AssertionError();
            }

            @Override
            public ByteBuffer decrypt(String topic, ByteBuffer envelope) {
                throw new AssertionError();
            }
        };

        GeneralSecurityException e = assertThrows(GeneralSecurityException.class,
                () -> v1Only.encryptHeader("orders", utf8("user-id"), utf8("u"), null));
        assertTrue(e.getMessage().contains("keys:"), e.getMessage());
    }

    @Test
    void givenRandomNamesAndValues_whenEncryptedThenDecrypted_thenSameBytesAndAnyOtherNameFails() throws Exception {
        Random random = new Random(19);
        for (int round = 0; round < 200; round++) {
            byte[] value = new byte[random.nextInt(300)];
            byte[] name = new byte[1 + random.nextInt(40)];
            random.nextBytes(value);
            random.nextBytes(name);
            ByteBuffer envelope = ByteBuffer.wrap(bytes(producer.encryptHeader("t", ByteBuffer.wrap(name),
                    ByteBuffer.wrap(value), out)));

            assertArrayEquals(value, bytes(replica.decryptHeader("t", ByteBuffer.wrap(name), envelope, null)));
            byte[] other = name.clone();
            other[random.nextInt(other.length)] ^= 0x20;
            assertNotEquals(Arrays.toString(name), Arrays.toString(other));
            assertThrows(EnvelopeException.class, () -> replica.decryptHeader("t", ByteBuffer.wrap(other), envelope,
                    null), "round " + round);
        }
    }
}
