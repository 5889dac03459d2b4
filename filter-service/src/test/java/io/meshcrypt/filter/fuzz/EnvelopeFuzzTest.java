package io.meshcrypt.filter.fuzz;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.meshcrypt.filter.crypto.DekManager;
import io.meshcrypt.filter.crypto.EnvelopeException;
import io.meshcrypt.filter.crypto.RecordKeyCipher;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.crypto.ValueCipherV2;
import io.meshcrypt.filter.crypto.ValueEnvelope;
import io.meshcrypt.filter.crypto.ValueEnvelopeV1;
import io.meshcrypt.filter.crypto.ValueEnvelopeV2;
import io.meshcrypt.filter.kms.KeyNotReadyException;
import io.meshcrypt.filter.kms.LocalKekProvider;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every envelope parser on hostile record values and keys: {@link Envelope#inspect}, {@link ValueEnvelopeV2#parse},
 * {@link RecordKeyCipher#decrypt} (the record-key envelope) and {@link ValueCipherV2#decrypt} (v1 and v2, with a DEK manager
 * over the local KEK provider and fixed test keysets, so saved ciphertext stays valid).
 *
 * <p>Input of each: byte 0 = offset of the value inside the buffer and its byte order (a parser must read relative to
 * the position and byte by byte), the rest = the value. Invariants: only the documented exceptions escape
 * (EnvelopeException for the parsers, GeneralSecurityException for decryption), the buffer's position and limit do
 * not move, and what a parser accepts is internally consistent.
 */
class EnvelopeFuzzTest {
    static final String TOPIC = "orders";
    private static final Duration KEY_WAIT = Duration.ofSeconds(10);
    private static final ValueCipherV1 V1 = FuzzSupport.recordCipher();
    private static final RecordKeyCipher KEYS = FuzzSupport.keyCipher();
    private static final ValueCipherV2 CIPHER = new ValueCipherV2(new DekManager(
            new LocalKekProvider(FuzzSupport.keysetFile("fuzz-only-aead-keyset.json")), DekManager.Settings.defaults()), V1);

    /** The value placed at a position given by byte 0 inside a larger buffer, little-endian when bit 4 is set. */
    static ByteBuffer value(byte[] input) {
        int offset = input[0] & 0x0F;
        ByteBuffer b = ByteBuffer.allocate(offset + input.length - 1 + 3);
        b.position(offset).put(input, 1, input.length - 1).flip().position(offset);
        if ((input[0] & 0x10) != 0) {
            b.order(ByteOrder.LITTLE_ENDIAN);
        }
        return b;
    }

    @FuzzTest(maxDuration = "30s")
    void givenHostileValue_whenInspected_thenOnlyEnvelopeException(byte[] input) {
        if (input.length < 1) {
            return;
        }
        ByteBuffer value = value(input);
        int position = value.position();
        int limit = value.limit();
        try {
            ValueEnvelopeV1.Info info = ValueEnvelopeV1.inspect(value);
            assertEquals(ValueEnvelopeV1.VERSION_1, info.version());
            assertTrue(value.remaining() >= ValueEnvelopeV1.OVERHEAD, "accepted an envelope shorter than its overhead");
        } catch (EnvelopeException expected) {
            // rejected
        }
        assertEquals(position, value.position());
        assertEquals(limit, value.limit());
    }

    @FuzzTest(maxDuration = "30s")
    void givenHostileValue_whenParsedAsV2_thenOnlyEnvelopeExceptionAndConsistentLengths(byte[] input) {
        if (input.length < 1) {
            return;
        }
        ByteBuffer value = value(input);
        int position = value.position();
        int limit = value.limit();
        try {
            ValueEnvelopeV2.Info info = ValueEnvelopeV2.parse(value, TOPIC);
            assertTrue(info.kekId().length() > 0, "empty KEK id accepted");
            assertTrue(info.wrappedDekLength() > 0, "empty wrapped DEK accepted");
            assertTrue(info.keyOffset() < info.headerLength());
            assertTrue(info.headerLength() + ValueEnvelope.NONCE_LENGTH + ValueEnvelope.TAG_LENGTH <= value.remaining(),
                    "header " + info.headerLength() + " + nonce + tag exceeds the value of " + value.remaining() + " bytes");
        } catch (EnvelopeException expected) {
            // rejected
        }
        assertEquals(position, value.position());
        assertEquals(limit, value.limit());
    }

    @FuzzTest(maxDuration = "30s")
    void givenHostileRecordKey_whenDecrypted_thenOnlyGeneralSecurityException(byte[] input) {
        if (input.length < 1) {
            return;
        }
        ByteBuffer key = value(input);
        int position = key.position();
        try {
            ByteBuffer plain = KEYS.decrypt(TOPIC, key);
            // Deterministic: what decrypts must encrypt back to exactly the same envelope.
            ByteBuffer again = KEYS.encrypt(TOPIC, plain);
            assertArrayEquals(bytes(key), bytes(again), "a key envelope that decrypts must be the canonical one");
        } catch (GeneralSecurityException expected) {
            // rejected
        }
        assertEquals(position, key.position());
    }

    @FuzzTest(maxDuration = "60s")
    void givenHostileValue_whenDecrypted_thenOnlyGeneralSecurityException(byte[] input) {
        if (input.length < 1) {
            return;
        }
        ByteBuffer value = value(input);
        int position = value.position();
        int limit = value.limit();
        try {
            CIPHER.decrypt(TOPIC, value);
        } catch (GeneralSecurityException expected) {
            // rejected (or the KEK refused): the record is failed, never the process
        }
        assertEquals(position, value.position());
        assertEquals(limit, value.limit());
    }

    private static byte[] bytes(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.duplicate().get(out);
        return out;
    }

    @Test
    void writeSeeds(@TempDir Path scratch) throws Exception {
        Path root = FuzzSupport.seedRoot(scratch);
        byte[] v1 = bytes(V1.encrypt(TOPIC, utf8("a v1 value")));
        byte[] v1Empty = bytes(V1.encrypt(TOPIC, utf8("")));
        // a topic's first DEK comes from the KMS asynchronously: the writer may wait for it
        byte[] v2 = bytes(KeyNotReadyException.awaitBlocking(() -> CIPHER.encrypt(TOPIC, utf8("a v2 value")), KEY_WAIT));
        byte[] v2Other = bytes(KeyNotReadyException.awaitBlocking(() -> CIPHER.encrypt("other", utf8("x")), KEY_WAIT));
        byte[] key = bytes(KEYS.encrypt(TOPIC, utf8("customer-42")));
        byte[] forged = {0x00, 0x4D, 0x43, 0x45, 0x02};
        for (String method : new String[] {
                "givenHostileValue_whenInspected_thenOnlyEnvelopeException",
                "givenHostileValue_whenParsedAsV2_thenOnlyEnvelopeExceptionAndConsistentLengths",
                "givenHostileValue_whenDecrypted_thenOnlyGeneralSecurityException"}) {
            FuzzSupport.seed(root, getClass(), method, "v1", FuzzSupport.concat(new byte[] {0}, v1));
            FuzzSupport.seed(root, getClass(), method, "v1-empty-at-3-le", FuzzSupport.concat(new byte[] {0x13}, v1Empty));
            FuzzSupport.seed(root, getClass(), method, "v2", FuzzSupport.concat(new byte[] {0}, v2));
            FuzzSupport.seed(root, getClass(), method, "v2-other-topic-at-5", FuzzSupport.concat(new byte[] {5}, v2Other));
            FuzzSupport.seed(root, getClass(), method, "forged-header", FuzzSupport.concat(new byte[] {0}, forged));
        }
        String keys = "givenHostileRecordKey_whenDecrypted_thenOnlyGeneralSecurityException";
        FuzzSupport.seed(root, getClass(), keys, "key", FuzzSupport.concat(new byte[] {0}, key));
        FuzzSupport.seed(root, getClass(), keys, "key-at-7-le", FuzzSupport.concat(new byte[] {0x17}, key));
        FuzzSupport.seed(root, getClass(), keys, "truncated", FuzzSupport.concat(new byte[] {0}, Arrays.copyOf(key, 20)));
        FuzzSupport.requireSeeds(root, getClass());
    }

    private static ByteBuffer utf8(String s) {
        return ByteBuffer.wrap(s.getBytes(StandardCharsets.UTF_8));
    }
}
