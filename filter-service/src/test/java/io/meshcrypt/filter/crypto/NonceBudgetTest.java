package io.meshcrypt.filter.crypto;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.kms.Keysets;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The version-1 random-nonce limit: counted per key, kept next to the keyset across restarts, fail closed. */
class NonceBudgetTest {

    @TempDir
    Path dir;
    private Path keyset;

    @BeforeEach
    void setUp() throws Exception {
        keyset = dir.resolve("keyset.json");
        Keysets.create(keyset);
    }

    /** A claim ahead may still be writing the counts file when a test returns; JUnit then deletes its folder. */
    @AfterEach
    void awaitBackgroundClaims() throws Exception {
        NonceBudget.awaitClaimsAhead();
    }

    @Test
    void givenASmallLimit_whenAKeyReachesIt_thenTheNextEncryptionIsRefusedNamingTheKeyAndTheNistLimit() throws Exception {
        ValueCipherV1 cipher = ValueCipherV1.fromKeysetFile(keyset, new NonceBudget.Settings(10, 5, 4));
        for (int i = 0; i < 10; i++) {
            cipher.encrypt("orders", utf8("v" + i));
        }

        NonceLimitException e = assertThrows(NonceLimitException.class, () -> cipher.encrypt("orders", utf8("one more")));

        String key = Integer.toUnsignedString(cipher.primaryKeyId());
        assertTrue(e.getMessage().contains("key " + key + " of the version-1 keyset"), e.getMessage());
        assertTrue(e.getMessage().contains("NIST SP 800-38D"), e.getMessage());
        assertTrue(e.getMessage().contains("keys:"), "says how to go on: " + e.getMessage());
        assertThrows(NonceLimitException.class, () -> cipher.encrypt("orders", utf8("and again")), "stays refused");
    }

    @Test
    void givenRecordsEncryptedBeforeARestart_whenTheKeysetIsLoadedAgain_thenTheCountGoesOnAndTheTotalStaysWithinTheLimit() throws Exception {
        NonceBudget.Settings limits = new NonceBudget.Settings(100, 50, 8);
        ValueCipherV1 before = ValueCipherV1.fromKeysetFile(keyset, limits);
        for (int i = 0; i < 30; i++) {
            before.encrypt("orders", utf8("before restart " + i));
        }

        ValueCipherV1 after = ValueCipherV1.fromKeysetFile(keyset, limits);
        int encryptedAfter = 0;
        while (encryptedAfter < 200) {
            try {
                after.encrypt("orders", utf8("after restart"));
                encryptedAfter++;
            } catch (NonceLimitException e) {
                break;
            }
        }

        assertTrue(30 + encryptedAfter <= 100, "at most the limit in all, got 30 + " + encryptedAfter);
        // what a restart may lose: the unused rest of the block in use and of the one claimed ahead
        assertTrue(encryptedAfter >= 100 - 30 - 2 * 8, "at most two blocks lost, got " + encryptedAfter);
        String counts = Files.readString(NonceBudget.countFile(keyset));
        assertTrue(counts.contains(Integer.toUnsignedString(after.primaryKeyId()) + " 100\n"), counts);
    }

    @Test
    void givenAnExhaustedKey_whenTheKeysetIsRotated_thenTheNewPrimaryEncryptsAndOldRecordsStillDecrypt() throws Exception {
        NonceBudget.Settings limits = new NonceBudget.Settings(3, 2, 2);
        ValueCipherV1 exhausted = ValueCipherV1.fromKeysetFile(keyset, limits);
        ByteBuffer old = exhausted.encrypt("orders", utf8("old"));
        exhausted.encrypt("orders", utf8("old"));
        exhausted.encrypt("orders", utf8("old"));
        assertThrows(NonceLimitException.class, () -> exhausted.encrypt("orders", utf8("refused")));

        Keysets.rotate(keyset);
        ValueCipherV1 rotated = ValueCipherV1.fromKeysetFile(keyset, limits);

        assertNotEquals(exhausted.primaryKeyId(), rotated.primaryKeyId());
        assertEquals("new", text(rotated.decrypt("orders", rotated.encrypt("orders", utf8("new")))));
        assertEquals("old", text(rotated.decrypt("orders", old)));
    }

    @Test
    void givenACountFileThatIsNotACount_whenEncrypting_thenRefusedInsteadOfGuessing() throws Exception {
        Files.writeString(NonceBudget.countFile(keyset), "garbage\n");
        ValueCipherV1 cipher = ValueCipherV1.fromKeysetFile(keyset);

        NonceLimitException e = assertThrows(NonceLimitException.class, () -> cipher.encrypt("orders", utf8("v")));

        assertTrue(e.getMessage().contains("cannot keep the encryption count"), e.getMessage());
        assertTrue(e.getMessage().contains(NonceBudget.countFile(keyset).toString()), e.getMessage());
    }

    @Test
    void givenAKeysetOnlyDecrypting_whenUsed_thenNoCountFileIsWritten() throws Exception {
        ByteBuffer envelope = ValueCipherV1.fromKeysetHandle(Keysets.read(keyset)).encrypt("orders", utf8("v"));

        assertEquals("v", text(ValueCipherV1.fromKeysetFile(keyset).decrypt("orders", envelope)));

        assertFalse(Files.exists(NonceBudget.countFile(keyset)), "a reader (inspect, version 2's version-1 reader) writes nothing");
    }

    @Test
    void givenManyThreads_whenTheyEncryptUntilRefused_thenExactlyTheLimitIsEncrypted() throws Exception {
        ValueCipherV1 cipher = ValueCipherV1.fromKeysetFile(keyset, new NonceBudget.Settings(1000, 500, 16));
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<Integer>> counts = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                counts.add(pool.submit(() -> {
                    int n = 0;
                    while (true) {
                        try {
                            cipher.encrypt("orders", utf8("x"));
                            n++;
                        } catch (NonceLimitException e) {
                            return n;
                        }
                    }
                }));
            }
            int total = 0;
            for (Future<Integer> f : counts) {
                total += f.get(30, TimeUnit.SECONDS);
            }

            assertEquals(1000, total);
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void givenAnInMemoryCount_whenTheLimitIsReached_thenRefused() throws Exception {
        NonceBudget budget = NonceBudget.inMemory(7, new NonceBudget.Settings(5, 3, 2));
        for (int i = 0; i < 5; i++) {
            budget.take();
        }

        assertThrows(NonceLimitException.class, budget::take);
    }

    @Test
    void givenMoreThanNistAllows_whenConfigured_thenRejected() {
        assertThrows(IllegalArgumentException.class, () -> new NonceBudget.Settings(NonceBudget.NIST_RANDOM_NONCE_LIMIT + 1, 1, 2));
        assertEquals(1L << 32, NonceBudget.Settings.defaults().maxRecords());
        assertEquals(1L << 31, NonceBudget.Settings.defaults().warnAt());
    }

    private static ByteBuffer utf8(String s) {
        return ByteBuffer.wrap(s.getBytes(StandardCharsets.UTF_8));
    }

    private static String text(ByteBuffer b) {
        return StandardCharsets.UTF_8.decode(b).toString();
    }
}
