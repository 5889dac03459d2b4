package io.meshcrypt.e2e.support;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.Arrays;
import java.util.HexFormat;

/**
 * Black-box knowledge of the at-rest format, written from the spec (docs/envelope-format.md) rather than the
 * filter-service code so that a drift in the product is caught here. Magic 0x00 'M' 'C' 'E', then the version byte:
 * 1 = a Tink ciphertext (output prefix 0x01 + 4-byte key id + 12-byte nonce + ct + 16-byte tag); 2 = K, the KEK id
 * (K bytes), the DEK id (8), W (2), the wrapped DEK (W bytes), 12-byte nonce, ct, 16-byte tag.
 */
public final class Envelope {

    private static final byte[] MAGIC = {0x00, 0x4D, 0x43, 0x45};
    private static final byte TINK_OUTPUT_PREFIX = 0x01;
    /** Version 1: 5 envelope bytes + 5 Tink prefix bytes + 12 nonce bytes + 16 tag bytes. */
    public static final int OVERHEAD = 38;
    /** Version 2 without its KEK id and wrapped DEK: 5 + 1 (K) + 8 (DEK id) + 2 (W) + 12 (nonce) + 16 (tag). */
    private static final int V2_FIXED_OVERHEAD = 44;
    /** The version the local mesh (./meshcrypt up, filter.yaml with keys: local) writes. */
    public static final int MESH_DEFAULT_VERSION = 2;

    /** Long plaintexts are also searched for by their first bytes, which catches a partial leak. */
    private static final int LEAK_PROBE = 64;

    private Envelope() {
    }

    /** True if {@code value} starts with the envelope magic and a version whose header it holds completely. */
    public static boolean isEnvelope(byte[] value) {
        return value != null && value.length > MAGIC.length && Arrays.equals(value, 0, MAGIC.length, MAGIC, 0, MAGIC.length)
                && overhead(value) > 0 && value.length >= overhead(value);
    }

    /** The version byte; call only for an {@link #isEnvelope envelope}. */
    public static int version(byte[] envelope) {
        return envelope[MAGIC.length];
    }

    /** Bytes the envelope adds to its plaintext, from its own header; 0 when the version or header is not one the spec knows. */
    static int overhead(byte[] value) {
        switch (value[MAGIC.length]) {
            case 1:
                return OVERHEAD;
            case 2:
                int k = value.length > 5 ? value[5] & 0xFF : 0;
                if (k == 0 || value.length < 6 + k + 8 + 2) {
                    return 0;
                }
                int w = ((value[6 + k + 8] & 0xFF) << 8) | (value[6 + k + 8 + 1] & 0xFF);
                return w == 0 ? 0 : V2_FIXED_OVERHEAD + k + w;
            default:
                return 0;
        }
    }

    /** Asserts that {@code atRest} is an envelope of exactly {@code plaintext} and does not reveal it. */
    public static void assertEnvelopeOf(byte[] plaintext, byte[] atRest, String where) {
        assertEnvelope(atRest, where);
        assertEquals(plaintext.length + overhead(atRest), atRest.length, where + ": envelope length (version " + version(atRest) + ")");
        assertNoPlaintext(plaintext, atRest, where);
    }

    /**
     * Asserts that {@code atRest} carries an envelope header: version 1 with a Tink-prefixed ciphertext, or version 2
     * with a KEK id, DEK id and wrapped DEK.
     */
    public static void assertEnvelope(byte[] atRest, String where) {
        if (atRest == null) {
            fail(where + ": value at rest is null, expected an envelope");
        }
        if (!isEnvelope(atRest)) {
            fail(where + ": value at rest is not an envelope: " + preview(atRest));
        }
        if (version(atRest) == 1) {
            assertEquals(TINK_OUTPUT_PREFIX, atRest[MAGIC.length + 1], where + ": Tink output prefix");
        }
    }

    /** Asserts that {@code atRest} is an envelope of {@code version}. */
    public static void assertVersion(int version, byte[] atRest, String where) {
        assertEnvelope(atRest, where);
        assertEquals(version, version(atRest), where + ": envelope version");
    }

    /** Asserts that neither {@code plaintext} nor its first bytes occur inside {@code atRest}. */
    public static void assertNoPlaintext(byte[] plaintext, byte[] atRest, String where) {
        if (plaintext.length == 0) {
            return;
        }
        assertTrue(indexOf(atRest, plaintext) < 0, () -> where + ": plaintext found at rest: " + preview(atRest));
        if (plaintext.length > LEAK_PROBE) {
            byte[] probe = Arrays.copyOf(plaintext, LEAK_PROBE);
            assertTrue(indexOf(atRest, probe) < 0, () -> where + ": plaintext prefix found at rest");
        }
    }

    public static int indexOf(byte[] haystack, byte[] needle) {
        if (needle.length == 0) {
            return 0;
        }
        outer:
        for (int i = 0; i <= haystack.length - needle.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    public static String preview(byte[] value) {
        if (value == null) {
            return "null";
        }
        int n = Math.min(value.length, 24);
        return value.length + " bytes, starting " + HexFormat.ofDelimiter(" ").formatHex(value, 0, n);
    }
}
