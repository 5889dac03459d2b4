package io.meshcrypt.filter.subjects;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.kms.CountingKekProvider;
import io.meshcrypt.filter.kms.KeyNotReadyException;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.kms.LocalKekProvider;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** SubjectKeyStore against an in-memory log: log order decides, markers win, limits hold. */
class SubjectKeyStoreTest {
    static final String SCOPE = "users*";
    static final Duration WAIT = Duration.ofSeconds(5);

    @TempDir
    Path dir;
    private CountingKekProvider kms;
    private final FakeSubjectKeyLog log = new FakeSubjectKeyLog();

    @BeforeEach
    void kek() throws Exception {
        Keysets.create(dir.resolve("kek.json"));
        kms = new CountingKekProvider(new LocalKekProvider(dir.resolve("kek.json")));
    }

    private SubjectKeyStore store(SubjectKeyStore.Settings settings) {
        SubjectKeyStore store = new SubjectKeyStore(log.view(), kms, settings);
        store.loaded().join();
        return store;
    }

    private SubjectKeyStore store() {
        return store(SubjectKeyStore.Settings.defaults());
    }

    static ByteBuffer id(String subject) {
        return ByteBuffer.wrap(subject.getBytes(StandardCharsets.UTF_8));
    }

    static SubjectKeyStore.SubjectKey encryptionKey(SubjectKeyStore store, String subject) throws Exception {
        return KeyNotReadyException.awaitBlocking(() -> store.forEncryption(SCOPE, id(subject)), WAIT);
    }

    static SecretKeySpec decryptionKey(SubjectKeyStore store, SubjectKeyStore.SubjectKey key) throws Exception {
        return KeyNotReadyException.awaitBlocking(() -> store.forDecryption(ByteBuffer.wrap(key.ref()), 0,
                key.keyId()), WAIT);
    }

    @Test
    void givenANewSubject_whenEncrypting_thenOneKeyIsCreatedThroughTheLogAndReusedWithOneKmsWrapPerScope() throws Exception {
        try (SubjectKeyStore store = store()) {
            assertThrows(KeyNotReadyException.class, () -> store.forEncryption(SCOPE, id("alice")),
                    "the hot path never waits for the scope secret");

            SubjectKeyStore.SubjectKey alice = encryptionKey(store, "alice");
            SubjectKeyStore.SubjectKey again = encryptionKey(store, "alice");
            SubjectKeyStore.SubjectKey bob = encryptionKey(store, "bob");

            assertEquals(alice.keyId(), again.keyId());
            assertArrayEquals(alice.key().getEncoded(), again.key().getEncoded());
            assertFalse(java.util.Arrays.equals(alice.ref(), bob.ref()));
            assertFalse(java.util.Arrays.equals(alice.key().getEncoded(), bob.key().getEncoded()));
            assertEquals(1, kms.wraps.get(), "one KMS wrap for the scope secret, none per subject");
            assertEquals(3, log.records().size(), "scope secret + two subject keys");
            for (FakeSubjectKeyLog.Entry e : log.records()) {
                assertFalse(new String(e.key(), StandardCharsets.ISO_8859_1).contains("alice"), "no raw subject ids");
            }
        }
    }

    @Test
    void givenARestartedReplica_whenItReadsTheLog_thenItDecryptsWithTheSameKeysAfterOneKmsUnwrap() throws Exception {
        SubjectKeyStore.SubjectKey alice;
        try (SubjectKeyStore first = store()) {
            alice = encryptionKey(first, "alice");
        }
        try (SubjectKeyStore restarted = store()) {
            assertArrayEquals(alice.key().getEncoded(), decryptionKey(restarted, alice).getEncoded());
            assertEquals(alice.keyId(), encryptionKey(restarted, "alice").keyId());
            assertEquals(1, kms.unwraps.get());
        }
    }

    @Test
    void givenTwoReplicasCreatingAKeyForOneSubjectAtOnce_whenTheLogIsRead_thenBothUseTheFirstAndBothKeysStayReadable()
            throws Exception {
        try (SubjectKeyStore a = store(); SubjectKeyStore b = store()) {
            byte[] seed = encryptionKey(a, "seed").ref(); // scope secret in the log, read by both
            encryptionKey(b, "seed");
            log.auto = false;
            assertThrows(KeyNotReadyException.class, () -> a.forEncryption(SCOPE, id("carol")));
            assertThrows(KeyNotReadyException.class, () -> b.forEncryption(SCOPE, id("carol")));
            // Both carol candidates appended, one by each store's worker. Counting records is not enough: b may have
            // created a second key for "seed" before it read a's, and then two seed keys + one carol key look the same.
            waitUntil(() -> subjectKeysOtherThan(seed) >= 2);
            assertEquals(2, subjectKeysOtherThan(seed), "one carol candidate from each replica");
            log.deliver();
            log.auto = true;

            SubjectKeyStore.SubjectKey fromA = encryptionKey(a, "carol");
            SubjectKeyStore.SubjectKey fromB = encryptionKey(b, "carol");

            assertEquals(fromA.keyId(), fromB.keyId(), "first in log order wins on every replica");
            long loser = log.records().stream().map(e -> SubjectKeyRecords.parseKey(e.key()))
                    // carol's own candidates only: a and b may each have created a key for "seed" too
                    .filter(k -> k.kind() == SubjectKeyRecords.SUBJECT_KEY && java.util.Arrays.equals(k.ref(), fromA.ref()))
                    .mapToLong(k -> ByteBuffer.wrap(k.keyId()).getLong()).filter(id -> id != fromA.keyId())
                    .findFirst().orElseThrow();
            // b may read the losing key just after the winner it already returned: wait for it, as a reader would
            assertNotNull(KeyNotReadyException.awaitBlocking(
                            () -> b.forDecryption(ByteBuffer.wrap(fromA.ref()), 0, loser), WAIT),
                    "the losing key is kept: a replica may have used it before reading the winner");
        }
    }

    @Test
    void givenAForgottenSubject_whenLookedUp_thenDecryptionSaysForgottenProduceIsRefusedAndOthersAreUntouched()
            throws Exception {
        try (SubjectKeyStore store = store()) {
            SubjectKeyStore.SubjectKey alice = encryptionKey(store, "alice");
            SubjectKeyStore.SubjectKey bob = encryptionKey(store, "bob");

            String ref = store.forget(SCOPE, "alice", WAIT);

            assertEquals(java.util.HexFormat.of().formatHex(alice.ref()), ref);
            assertNull(store.forDecryption(ByteBuffer.wrap(alice.ref()), 0, alice.keyId()));
            assertThrows(SubjectKeyStore.SubjectForgottenException.class, () -> store.forEncryption(SCOPE, id("alice")));
            assertArrayEquals(bob.key().getEncoded(), decryptionKey(store, bob).getEncoded());
            assertTrue(store.isForgotten(SCOPE, "alice"));
            assertFalse(store.isForgotten(SCOPE, "bob"));
        }
    }

    @Test
    void givenAForgottenSubject_whenTheLogIsCompacted_thenNoWrappedKeyOfItRemainsAndARestartStillForgets()
            throws Exception {
        SubjectKeyStore.SubjectKey alice;
        try (SubjectKeyStore store = store()) {
            alice = encryptionKey(store, "alice");
            encryptionKey(store, "bob");
            store.forget(SCOPE, "alice", WAIT);
        }
        log.compact();

        for (FakeSubjectKeyLog.Entry e : log.records()) {
            SubjectKeyRecords.Key key = SubjectKeyRecords.parseKey(e.key());
            if (key.kind() != SubjectKeyRecords.SCOPE_SECRET
                    && java.util.Arrays.equals(key.ref(), alice.ref())) {
                assertTrue(SubjectKeyRecords.isForgotten(e.value()), "only forgotten values for alice after compaction");
            }
        }
        // A replica may, rarely, append a second candidate key for a subject it is creating (both are kept and both are
        // overwritten by forget): count alice's key records apart.
        long alicesKeys = log.records().stream().map(e -> SubjectKeyRecords.parseKey(e.key()))
                .filter(k -> k.kind() == SubjectKeyRecords.SUBJECT_KEY && java.util.Arrays.equals(k.ref(), alice.ref()))
                .count();
        assertTrue(alicesKeys >= 1, "alice's overwritten key");
        assertEquals(3, log.records().size() - alicesKeys, "secret, bob's key, alice's marker");
        try (SubjectKeyStore restarted = store()) {
            assertNull(restarted.forDecryption(ByteBuffer.wrap(alice.ref()), 0, alice.keyId()));
            assertEquals(1, restarted.subjects() - 1, "bob live, alice forgotten");
        }
    }

    @Test
    void givenAnOldKeyRecordReplayedAfterTheMarker_whenRead_thenTheMarkerWinsAndTheReplayIsOverwritten() throws Exception {
        try (SubjectKeyStore store = store()) {
            SubjectKeyStore.SubjectKey alice = encryptionKey(store, "alice");
            FakeSubjectKeyLog.Entry original = log.records().get(1);
            store.forget(SCOPE, "alice", WAIT);
            int before = log.records().size();

            log.appendRaw(original.key(), original.value());

            assertNull(store.forDecryption(ByteBuffer.wrap(alice.ref()), 0, alice.keyId()));
            FakeSubjectKeyLog.Entry last = waitForRecords(before + 2);
            assertArrayEquals(original.key(), last.key());
            assertTrue(SubjectKeyRecords.isForgotten(last.value()), "the replayed key was overwritten");
        }
    }

    private long subjectKeysOtherThan(byte[] ref) {
        return log.records().stream().map(e -> SubjectKeyRecords.parseKey(e.key()))
                .filter(k -> k.kind() == SubjectKeyRecords.SUBJECT_KEY && !java.util.Arrays.equals(k.ref(), ref))
                .count();
    }

    /** Polls until {@code condition} or {@link #WAIT}; the caller asserts what it needs afterwards. */
    private static void waitUntil(java.util.function.BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!condition.getAsBoolean() && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
    }

    private FakeSubjectKeyLog.Entry waitForRecords(int count) throws InterruptedException {
        waitUntil(() -> log.records().size() >= count);
        assertTrue(log.records().size() >= count, "records: " + log.records().size());
        return log.records().get(log.records().size() - 1);
    }

    @Test
    void givenMaxSubjects_whenANewSubjectComesBeyondIt_thenItIsRefusedAndKnownSubjectsStillWork() throws Exception {
        try (SubjectKeyStore store = store(new SubjectKeyStore.Settings(2, 1000, 10, WAIT))) {
            encryptionKey(store, "a");
            encryptionKey(store, "b");

            assertThrows(SubjectKeyStore.TooManySubjectsException.class, () -> store.forEncryption(SCOPE, id("c")));
            assertNotNull(encryptionKey(store, "a"));
        }
    }

    @Test
    void givenTheNewSubjectRate_whenTheBurstIsSpent_thenTheNextNewSubjectWaitsForAToken() throws Exception {
        try (SubjectKeyStore store = store(new SubjectKeyStore.Settings(100, 0.001, 2, WAIT))) {
            encryptionKey(store, "a");
            encryptionKey(store, "b");

            KeyNotReadyException wait = assertThrows(KeyNotReadyException.class, () -> store.forEncryption(SCOPE, id("c")));
            assertFalse(wait.ready().isDone(), "the next token is ~1000 s away");
            assertEquals(3, log.records().size(), "nothing appended for c");
        }
    }

    @Test
    void givenAKeyInNoRecord_whenDecrypting_thenItWaitsUnknownKeyWaitThenFailsClosed() throws Exception {
        AtomicLong now = new AtomicLong();
        SubjectKeyStore store = new SubjectKeyStore(log.view(), kms,
                new SubjectKeyStore.Settings(100, 100, 10, Duration.ofSeconds(10)), now::get);
        try (store) {
            store.loaded().join();
            SubjectKeyStore.SubjectKey alice = encryptionKey(store, "alice");
            ByteBuffer ref = ByteBuffer.wrap(alice.ref());

            assertThrows(KeyNotReadyException.class, () -> store.forDecryption(ref, 0, alice.keyId() + 1));
            now.addAndGet(Duration.ofSeconds(11).toNanos());
            java.security.GeneralSecurityException e = assertThrows(java.security.GeneralSecurityException.class,
                    () -> store.forDecryption(ref, 0, alice.keyId() + 1));
            assertFalse(e instanceof KeyNotReadyException, e.toString());
            assertTrue(e.getMessage().contains("is in no record of the subject-key log"), e.getMessage());
        }
    }

    @Test
    void givenMalformedOrForeignRecords_whenRead_thenTheyAreSkippedAndTheStoreKeepsWorking() throws Exception {
        log.appendRaw(new byte[] {9, 9, 9, 9}, new byte[] {1});
        log.appendRaw(SubjectKeyRecords.key(SubjectKeyRecords.SUBJECT_KEY, SCOPE, new byte[16], new byte[8]), new byte[] {1, 2});
        log.appendRaw(SubjectKeyRecords.key(SubjectKeyRecords.SCOPE_SECRET, SCOPE, new byte[8]), new byte[] {7});
        try (SubjectKeyStore store = store()) {
            assertNotNull(encryptionKey(store, "alice"));
            assertNotEquals(0, store.subjects());
        }
    }

    @Test
    void givenALogThatCannotBeRead_whenEncrypting_thenNoKeyIsCreatedAndTheFailureIsTransient() throws Exception {
        SubjectKeyLog unreadable = new SubjectKeyLog() {
            @Override
            public java.util.concurrent.CompletableFuture<Void> follow(Follower follower) {
                return java.util.concurrent.CompletableFuture.failedFuture(new IllegalStateException("3 partitions"));
            }

            @Override
            public java.util.concurrent.CompletableFuture<Void> append(byte[] key, byte[] value) {
                throw new AssertionError("nothing may be appended to a log that was not read");
            }

            @Override
            public void close() {
            }
        };
        try (SubjectKeyStore store = new SubjectKeyStore(unreadable, kms, SubjectKeyStore.Settings.defaults())) {
            assertThrows(java.util.concurrent.CompletionException.class, () -> store.loaded().join());
            java.security.GeneralSecurityException e = assertThrows(java.security.GeneralSecurityException.class,
                    () -> store.forEncryption(SCOPE, id("alice")));
            assertTrue(e instanceof io.meshcrypt.filter.kms.TransientKmsException && !(e instanceof KeyNotReadyException),
                    e.toString());
            assertEquals(0, kms.wraps.get());
        }
    }
}
