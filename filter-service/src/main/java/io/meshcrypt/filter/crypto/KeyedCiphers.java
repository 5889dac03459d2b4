package io.meshcrypt.filter.crypto;

import java.util.function.Supplier;
import javax.crypto.Cipher;
import javax.crypto.spec.SecretKeySpec;

/**
 * One thread's AES-GCM ciphers, each last initialised with one key. The JCE expands the AES key schedule at every
 * {@code init} with a key other than the cipher's previous one: with one cipher per thread, per-subject keys (another
 * key almost every record) paid that expansion per record, several times the cost of sealing 1 KiB. Here a key finds
 * the cipher that used it last, whose schedule stays. Set-associative ({@value #SETS} sets of {@value #WAYS}, the least
 * recently used way of a set replaced and its cipher re-keyed), keyed by the key object's identity (the key services
 * keep one {@link SecretKeySpec} per key): no allocation on a hit, nor on a miss once the slot has its cipher; at most
 * {@code SETS * WAYS} ciphers (about 2 KB each) and as many key references per thread. Not thread-safe: one per thread.
 */
final class KeyedCiphers {
    // 16 ways: a set is a cache line of keys to scan; with 1,000 keys in 128 sets (7.8 a set on average) under 1 % of
    // sets hold more than 16, where a cyclic access pattern would miss every time.
    static final int SETS = 128;
    static final int WAYS = 16;

    /** Bumped when a subject is forgotten: every thread drops its ciphers, which hold expanded keys, at its next use. */
    private static volatile int generation;

    private final Supplier<Cipher> factory;
    private int seenGeneration;
    private final SecretKeySpec[] keys = new SecretKeySpec[SETS * WAYS];
    private final Cipher[] ciphers = new Cipher[SETS * WAYS];
    private final long[] lastUse = new long[SETS * WAYS];
    private long clock;

    KeyedCiphers(Supplier<Cipher> factory) {
        this.factory = factory;
    }

    /** @return the cipher to {@code init} with {@code key}: the one whose last key it was, when still held */
    Cipher forKey(SecretKeySpec key) {
        int g = generation;
        if (g != seenGeneration) {
            java.util.Arrays.fill(keys, null);
            java.util.Arrays.fill(ciphers, null);
            java.util.Arrays.fill(lastUse, 0L);
            seenGeneration = g;
        }
        int h = System.identityHashCode(key);
        int first = ((h ^ (h >>> 7) ^ (h >>> 16)) & (SETS - 1)) * WAYS;
        int victim = first;
        for (int i = first; i < first + WAYS; i++) {
            if (keys[i] == key) {
                lastUse[i] = ++clock;
                return ciphers[i];
            }
            if (lastUse[i] < lastUse[victim]) {
                victim = i;
            }
        }
        if (ciphers[victim] == null) {
            ciphers[victim] = factory.get();
        }
        keys[victim] = key;
        lastUse[victim] = ++clock;
        return ciphers[victim];
    }

    /**
     * Makes every thread drop its ciphers, and with them the key schedules of keys that may have just been destroyed
     * (a forgotten subject's), before its next operation. Forgetting is rare; the check costs one volatile read.
     */
    static synchronized void dropAll() {
        generation++;
    }
}
