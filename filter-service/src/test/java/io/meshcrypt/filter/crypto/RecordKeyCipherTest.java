package io.meshcrypt.filter.crypto;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.crypto.tink.DeterministicAead;
import com.google.crypto.tink.KeyStatus;
import com.google.crypto.tink.KeysetHandle;
import com.google.crypto.tink.daead.DeterministicAeadConfig2026;
import com.google.crypto.tink.daead.PredefinedDeterministicAeadParameters;
import io.meshcrypt.filter.kms.Keysets;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RecordKeyCipherTest {

    private static final byte[] ORDER_42 = "order-42".getBytes(StandardCharsets.UTF_8);

    private static KeysetHandle newKeyset() throws GeneralSecurityException {
        return KeysetHandle.generateNew(PredefinedDeterministicAeadParameters.AES256_SIV, DeterministicAeadConfig2026.get());
    }

    private static byte[] array(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.duplicate().get(out);
        return out;
    }

    @Test
    void givenSameKeyAndTopic_whenEncryptedTwice_thenCiphertextsEqualAndDifferFromPlaintext() throws Exception {
        RecordKeyCipher cipher = RecordKeyCipher.fromKeysetHandle(newKeyset());

        byte[] first = array(cipher.encrypt("orders", ByteBuffer.wrap(ORDER_42)));
        byte[] second = array(cipher.encrypt("orders", ByteBuffer.wrap(ORDER_42.clone())));

        assertArrayEquals(first, second);
        assertEquals(ORDER_42.length + RecordKeyCipher.OVERHEAD, first.length);
        assertFalse(new String(first, StandardCharsets.ISO_8859_1).contains("order-42"));
        assertArrayEquals(ORDER_42, array(cipher.decrypt("orders", ByteBuffer.wrap(first))));
    }

    @Test
    void givenEncryptedKey_thenLayoutIsMagicVersionTinkPrefixAndPrimaryKeyId() throws Exception {
        KeysetHandle keyset = newKeyset();
        RecordKeyCipher cipher = RecordKeyCipher.fromKeysetHandle(keyset);

        ByteBuffer envelope = cipher.encrypt("orders", ByteBuffer.wrap(ORDER_42));

        assertTrue(RecordKeyCipher.isKeyEnvelope(envelope));
        assertEquals(RecordKeyCipher.MAGIC, envelope.getInt(0));
        assertEquals(RecordKeyCipher.VERSION_1, envelope.get(4));
        assertEquals(1, envelope.get(5));
        assertEquals(keyset.getPrimary().getId(), envelope.getInt(RecordKeyCipher.KEY_ID_OFFSET));
        // Bytes 5.. are Tink's own output: Tink alone decrypts them with the documented AAD.
        DeterministicAead tink = keyset.getPrimitive(DeterministicAeadConfig2026.get(), DeterministicAead.class);
        byte[] all = array(envelope);
        byte[] aad = ("\0MCK\u0001topic:orders").getBytes(StandardCharsets.ISO_8859_1);
        assertArrayEquals(ORDER_42, tink.decryptDeterministically(Arrays.copyOfRange(all, 5, all.length), aad));
    }

    @Test
    void givenEmptyKey_whenEncrypted_thenRoundTripsAndStaysDistinctFromNull() throws Exception {
        RecordKeyCipher cipher = RecordKeyCipher.fromKeysetHandle(newKeyset());

        ByteBuffer envelope = cipher.encrypt("t", ByteBuffer.allocate(0));

        assertEquals(RecordKeyCipher.OVERHEAD, envelope.remaining());
        assertEquals(0, cipher.decrypt("t", envelope).remaining());
    }

    @Test
    void givenSameKeyOnTwoTopics_whenEncrypted_thenCiphertextsDifferAndCrossTopicDecryptFails() throws Exception {
        RecordKeyCipher cipher = RecordKeyCipher.fromKeysetHandle(newKeyset());

        ByteBuffer orders = cipher.encrypt("orders", ByteBuffer.wrap(ORDER_42));
        ByteBuffer audit = cipher.encrypt("audit", ByteBuffer.wrap(ORDER_42));

        assertNotEquals(orders, audit);
        EnvelopeException e = assertThrows(EnvelopeException.class, () -> cipher.decrypt("audit", orders));
        assertTrue(e.getMessage().contains("another topic"), e.getMessage());
    }

    @Test
    void givenTamperedByte_whenDecrypted_thenEnvelopeException() throws Exception {
        RecordKeyCipher cipher = RecordKeyCipher.fromKeysetHandle(newKeyset());
        byte[] envelope = array(cipher.encrypt("orders", ByteBuffer.wrap(ORDER_42)));

        for (int i : new int[] {12, envelope.length - 1}) {
            byte[] tampered = envelope.clone();
            tampered[i] ^= 1;
            assertThrows(EnvelopeException.class, () -> cipher.decrypt("orders", ByteBuffer.wrap(tampered)));
        }
        byte[] truncated = Arrays.copyOf(envelope, RecordKeyCipher.OVERHEAD - 1);
        assertThrows(EnvelopeException.class, () -> cipher.decrypt("orders", ByteBuffer.wrap(truncated)));
    }

    @Test
    void givenPlaintextOrOtherVersion_whenDecrypted_thenSpecificExceptions() throws Exception {
        RecordKeyCipher cipher = RecordKeyCipher.fromKeysetHandle(newKeyset());
        byte[] envelope = array(cipher.encrypt("orders", ByteBuffer.wrap(ORDER_42)));
        envelope[4] = 2;

        assertInstanceOf(NotAnEnvelopeException.class,
                assertThrows(EnvelopeException.class, () -> cipher.decrypt("orders", ByteBuffer.wrap(ORDER_42))));
        assertInstanceOf(UnsupportedEnvelopeVersionException.class,
                assertThrows(EnvelopeException.class, () -> cipher.decrypt("orders", ByteBuffer.wrap(envelope))));
    }

    @Test
    void givenKeyFromAnotherKeyset_whenDecrypted_thenUnknownKeyNamesTheKeyId() throws Exception {
        KeysetHandle other = newKeyset();
        ByteBuffer envelope = RecordKeyCipher.fromKeysetHandle(other).encrypt("orders", ByteBuffer.wrap(ORDER_42));

        UnknownKeyException e = assertThrows(UnknownKeyException.class,
                () -> RecordKeyCipher.fromKeysetHandle(newKeyset()).decrypt("orders", envelope));

        assertEquals(other.getPrimary().getId(), e.keyId());
        assertTrue(e.getMessage().contains(Integer.toUnsignedString(other.getPrimary().getId())), e.getMessage());
    }

    @Test
    void givenRotatedKeyset_whenSameKeyEncrypted_thenCiphertextChangesAndOldOneStillDecrypts() throws Exception {
        KeysetHandle original = newKeyset();
        KeysetHandle rotated = KeysetHandle.newBuilder(original).setConfiguration(DeterministicAeadConfig2026.get())
                .addEntry(KeysetHandle.generateEntryFromParameters(PredefinedDeterministicAeadParameters.AES256_SIV)
                        .withRandomId().setStatus(KeyStatus.ENABLED).makePrimary())
                .build();
        ByteBuffer before = RecordKeyCipher.fromKeysetHandle(original).encrypt("orders", ByteBuffer.wrap(ORDER_42));

        RecordKeyCipher after = RecordKeyCipher.fromKeysetHandle(rotated);

        assertNotEquals(before, after.encrypt("orders", ByteBuffer.wrap(ORDER_42)));
        assertArrayEquals(ORDER_42, array(after.decrypt("orders", before)));
    }

    @Test
    void givenNoKeysetFile_whenOpenedOrCreated_thenOwnerOnlyFileWrittenAndReopenedWithSameKey(@TempDir Path dir)
            throws Exception {
        Path file = dir.resolve("siv-keyset.json");

        ByteBuffer first = RecordKeyCipher.openOrCreate(file).encrypt("orders", ByteBuffer.wrap(ORDER_42));
        ByteBuffer again = RecordKeyCipher.openOrCreate(file).encrypt("orders", ByteBuffer.wrap(ORDER_42));

        assertEquals(first, again);
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
    }

    @Test
    void givenAesGcmKeyset_whenLoadedAsKeyCipher_thenRejected() throws Exception {
        GeneralSecurityException e = assertThrows(GeneralSecurityException.class,
                () -> RecordKeyCipher.fromKeysetHandle(Keysets.generate()));

        assertTrue(e.getMessage().contains("not AES-SIV"), e.getMessage());
    }
}
