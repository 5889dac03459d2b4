package io.meshcrypt.filter.crypto;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.security.GeneralSecurityException;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import javax.crypto.Cipher;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.Test;

/** One thread's AES-GCM ciphers per recently used key: a key finds its cipher again; the cache stays bounded. */
class KeyedCiphersTest {
    private final AtomicInteger created = new AtomicInteger();
    private final KeyedCiphers ciphers = new KeyedCiphers(() -> {
        created.incrementAndGet();
        try {
            return Cipher.getInstance("AES/GCM/NoPadding");
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    });

    private static SecretKeySpec[] keys(int n) {
        SecretKeySpec[] keys = new SecretKeySpec[n];
        for (int i = 0; i < n; i++) {
            byte[] k = new byte[32];
            k[0] = (byte) i;
            k[1] = (byte) (i >> 8);
            keys[i] = new SecretKeySpec(k, "AES");
        }
        return keys;
    }

    @Test
    void givenKeysUsedInTurn_whenUsedAgain_thenEachFindsItsOwnCipher() {
        SecretKeySpec[] keys = keys(64);
        Cipher[] first = new Cipher[keys.length];
        for (int i = 0; i < keys.length; i++) {
            first[i] = ciphers.forKey(keys[i]);
        }

        for (int i = 0; i < keys.length; i++) {
            assertSame(first[i], ciphers.forKey(keys[i]), "key " + i + " keeps its cipher (and its key schedule)");
        }
        assertNotSame(first[0], first[1]);
        assertEquals(keys.length, created.get());
    }

    @Test
    void givenFarMoreKeysThanSlots_whenEachIsUsed_thenAtMostSetsTimesWaysCiphersExist() {
        Set<Cipher> seen = new HashSet<>();
        for (SecretKeySpec key : keys(20_000)) {
            seen.add(ciphers.forKey(key));
        }
        assertTrue(created.get() <= KeyedCiphers.SETS * KeyedCiphers.WAYS, "created " + created.get());
        assertEquals(created.get(), seen.size(), "an evicted slot's cipher is re-keyed, not replaced");
    }

    @Test
    void givenCachedCiphers_whenAnyKeyIsForgotten_thenNoCipherHoldingAnOldKeyScheduleIsHandedOutAgain() {
        SecretKeySpec[] keys = keys(8);
        Cipher[] before = new Cipher[keys.length];
        for (int i = 0; i < keys.length; i++) {
            before[i] = ciphers.forKey(keys[i]);
        }

        KeyedCiphers.dropAll();

        for (int i = 0; i < keys.length; i++) {
            assertNotSame(before[i], ciphers.forKey(keys[i]), "key " + i + " gets a fresh cipher");
        }
        assertEquals(2 * keys.length, created.get());
    }
}
