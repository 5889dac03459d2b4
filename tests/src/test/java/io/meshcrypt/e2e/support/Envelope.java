package io.meshcrypt.e2e.support;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.Arrays;
import java.util.HexFormat;

/**
 * Black-box knowledge of the at-rest format, written from the spec rather than the filter-service
 * code so that a drift in the product is caught here: envelope v1 = magic 0x00 'M' 'C' 'E', version
 * 0x01, then a Tink ciphertext (output prefix 0x01 + 4-byte key id + 12-byte nonce + ct + 16-byte tag).
 */
public final class Envelope {

    public static final byte[] MAGIC_AND_VERSION = {0x00, 0x4D, 0x43, 0x45, 0x01};
    private static final byte TINK_OUTPUT_PREFIX = 0x01;
    /** 5 envelope bytes + 5 Tink prefix bytes + 12 nonce bytes + 16 tag bytes. */
    public static final int OVERHEAD = 38;

    /** Long plaintexts are also searched for by their first bytes, which catches a partial leak. */
    private static final int LEAK_PROBE = 64;

    private Envelope() {
    }

    /** True if {@code value} starts with the envelope magic and version. */
    public static boolean isEnvelope(byte[] value) {
        return value != null && value.length >= OVERHEAD
                && Arrays.equals(value, 0, MAGIC_AND_VERSION.length, MAGIC_AND_VERSION, 0, MAGIC_AND_VERSION.length);
    }

    /** Asserts that {@code atRest} is an envelope of exactly {@code plaintext} and does not reveal it. */
    public static void assertEnvelopeOf(byte[] plaintext, byte[] atRest, String where) {
        assertEnvelope(atRest, where);
        assertEquals(plaintext.length + OVERHEAD, atRest.length, where + ": envelope length");
        assertNoPlaintext(plaintext, atRest, where);
    }

    /** Asserts that {@code atRest} carries the envelope header and a Tink-prefixed ciphertext. */
    public static void assertEnvelope(byte[] atRest, String where) {
        if (atRest == null) {
            fail(where + ": value at rest is null, expected an envelope");
        }
        if (!isEnvelope(atRest)) {
            fail(where + ": value at rest is not an envelope: " + preview(atRest));
        }
        assertEquals(TINK_OUTPUT_PREFIX, atRest[MAGIC_AND_VERSION.length], where + ": Tink output prefix");
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
