package io.meshcrypt.filter.subjects;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.Arrays;
import java.util.HexFormat;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.Test;

/** Subject refs and wrapped subject keys of one scope, checked against plain JCE. */
class ScopeKeysTest {
    private static final byte[] SECRET = new byte[32];

    static {
        Arrays.fill(SECRET, (byte) 7);
    }

    private static byte[] hmac(byte[] key, byte[] data) throws Exception {
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(key, "HmacSHA256"));
        return mac.doFinal(data);
    }

    @Test
    void givenASubject_whenItsRefIsComputed_thenItIsTheTruncatedHmacUnderTheDerivedRefKey() throws Exception {
        ScopeKeys keys = new ScopeKeys("users*", SECRET);
        byte[] refKey = hmac(SECRET, "meshcrypt-subject-ref-v1".getBytes(StandardCharsets.US_ASCII));
        byte[] expected = Arrays.copyOf(hmac(refKey, "alice@example.com".getBytes(StandardCharsets.UTF_8)), 16);

        assertArrayEquals(expected, keys.ref("alice@example.com"));
        assertFalse(Arrays.equals(keys.ref("alice"), new ScopeKeys("users*", new byte[32]).ref("alice")),
                "another secret, another ref");
    }

    @Test
    void givenAWrappedKey_whenUnwrappedForAnotherScopeRefOrKeyId_thenAuthenticationFails() throws Exception {
        ScopeKeys keys = new ScopeKeys("users*", SECRET);
        byte[] subjectKey = HexFormat.of().parseHex("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
        byte[] ref = keys.ref("alice");
        byte[] keyId = {1, 2, 3, 4, 5, 6, 7, 8};

        byte[] wrapped = keys.wrap(subjectKey, ref, keyId);

        assertEquals(SubjectKeyRecords.WRAPPED_KEY_LENGTH, wrapped.length);
        assertArrayEquals(subjectKey, keys.unwrap(wrapped, ref, keyId));
        assertThrows(GeneralSecurityException.class, () -> keys.unwrap(wrapped, keys.ref("bob"), keyId));
        assertThrows(GeneralSecurityException.class, () -> keys.unwrap(wrapped, ref, new byte[8]));
        assertThrows(GeneralSecurityException.class, () -> new ScopeKeys("orders", SECRET).unwrap(wrapped, ref, keyId));
    }
}
