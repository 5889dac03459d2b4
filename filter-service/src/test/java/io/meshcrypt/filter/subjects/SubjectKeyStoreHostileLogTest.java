package io.meshcrypt.filter.subjects;

import static io.meshcrypt.filter.subjects.SubjectKeyStoreTest.SCOPE;
import static io.meshcrypt.filter.subjects.SubjectKeyStoreTest.WAIT;
import static io.meshcrypt.filter.subjects.SubjectKeyStoreTest.decryptionKey;
import static io.meshcrypt.filter.subjects.SubjectKeyStoreTest.encryptionKey;
import static io.meshcrypt.filter.subjects.SubjectKeyStoreTest.id;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.kms.LocalKekProvider;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A key topic someone hostile writes to (a broker, or any client with write access): floods of garbage, of new
 * subject refs, of markers and of scope secrets, and replays. The store stays bounded, fails closed for new subjects
 * when full and says so (stats, log), skips what is malformed without its follower stopping, and what was forgotten
 * stays forgotten.
 */
class SubjectKeyStoreHostileLogTest {

    @TempDir
    Path dir;
    private LocalKekProvider kms;
    private final FakeSubjectKeyLog log = new FakeSubjectKeyLog();
    private final SplittableRandom random = new SplittableRandom(19);

    @BeforeEach
    void kek() throws Exception {
        Keysets.create(dir.resolve("kek.json"));
        kms = new LocalKekProvider(dir.resolve("kek.json"));
    }

    private SubjectKeyStore store(int maxSubjects) {
        SubjectKeyStore store = new SubjectKeyStore(log.view(), kms, new SubjectKeyStore.Settings(maxSubjects, 1000,
                2000, WAIT));
        store.loaded().join();
        return store;
    }

    private byte[] bytes(int n) {
        byte[] b = new byte[n];
        random.nextBytes(b);
        return b;
    }

    /** A well-formed subject key record of a random ref, as only the key topic's writer could tell from a real one. */
    private void appendForgedKey(String scope) {
        log.appendRaw(SubjectKeyRecords.key(SubjectKeyRecords.SUBJECT_KEY, scope, bytes(16), bytes(8)),
                SubjectKeyRecords.subjectKeyValue(bytes(SubjectKeyRecords.WRAPPED_KEY_LENGTH)));
    }

    @Test
    void givenAFloodOfNewSubjectRefs_whenRead_thenTheIndexStopsAtMaxSubjectsNewSubjectsAreRefusedAndKnownOnesWork()
            throws Exception {
        try (SubjectKeyStore store = store(100)) {
            SubjectKeyStore.SubjectKey alice = encryptionKey(store, "alice");

            for (int i = 0; i < 20_000; i++) {
                appendForgedKey(SCOPE);
            }

            assertEquals(100, store.subjects(), "bounded by maxSubjects");
            assertTrue(store.stats().full());
            assertTrue(store.stats().refusedSubjects() >= 20_000 - 99, "refusals counted: " + store.stats());
            assertThrows(SubjectKeyStore.TooManySubjectsException.class, () -> store.forEncryption(SCOPE, id("carol")),
                    "a new subject fails closed");
            assertArrayEquals(alice.key().getEncoded(), encryptionKey(store, "alice").key().getEncoded());
            assertArrayEquals(alice.key().getEncoded(), decryptionKey(store, alice).getEncoded());
        }
    }

    @Test
    void givenAFloodOfGarbage_whenRead_thenEveryRecordIsSkippedAndCountedAndLaterRecordsStillApply() throws Exception {
        try (SubjectKeyStore store = store(1000); SubjectKeyStore replica = store(1000)) {
            SubjectKeyStore.SubjectKey alice = encryptionKey(store, "alice");
            int subjects = store.subjects();
            long skippedBefore = store.stats().skippedRecords();

            int garbage = 0;
            for (int i = 0; i < 2_000; i++) {
                log.appendRaw(bytes(random.nextInt(0, 64)), random.nextBoolean() ? null : bytes(random.nextInt(0, 128)));
                garbage++;
            }
            log.appendRaw(null, null);
            // Well-formed keys, foreign content: no scope secret, an oversized one, a malformed value, a bad marker.
            log.appendRaw(SubjectKeyRecords.key(SubjectKeyRecords.SUBJECT_KEY, "nobody*", bytes(16), bytes(8)),
                    SubjectKeyRecords.subjectKeyValue(bytes(SubjectKeyRecords.WRAPPED_KEY_LENGTH)));
            log.appendRaw(SubjectKeyRecords.key(SubjectKeyRecords.SUBJECT_MARKER, "nobody*", bytes(16)),
                    SubjectKeyRecords.forgottenValue());
            log.appendRaw(SubjectKeyRecords.key(SubjectKeyRecords.SCOPE_SECRET, "big*", bytes(8)),
                    SubjectKeyRecords.secretValue("kek", bytes(SubjectKeyStore.MAX_WRAPPED_SECRET_BYTES + 1)));
            log.appendRaw(SubjectKeyRecords.key(SubjectKeyRecords.SUBJECT_MARKER, SCOPE, alice.ref()), bytes(5));
            // Then a real marker, from another replica: the follower must still be applying.
            replica.forget(SCOPE, "alice", WAIT);

            assertNull(store.forDecryption(ByteBuffer.wrap(alice.ref()), 0, alice.keyId()), "alice forgotten");
            assertEquals(subjects, store.subjects(), "no garbage entered the index");
            assertTrue(store.stats().skippedRecords() - skippedBefore >= garbage + 5, "skipped: " + store.stats());
            assertNotNull(encryptionKey(store, "bob"), "the store keeps working");
        }
    }

    @Test
    void givenAFloodOfForgottenMarkers_whenTheIndexIsFull_thenItStaysBoundedAndForgetStillWorksForKnownSubjects()
            throws Exception {
        try (SubjectKeyStore store = store(50)) {
            SubjectKeyStore.SubjectKey alice = encryptionKey(store, "alice");

            for (int i = 0; i < 20_000; i++) {
                log.appendRaw(SubjectKeyRecords.key(SubjectKeyRecords.SUBJECT_MARKER, SCOPE, bytes(16)),
                        SubjectKeyRecords.forgottenValue());
            }
            assertEquals(50, store.subjects(), "bounded by maxSubjects");
            store.forget(SCOPE, "alice", WAIT);

            assertNull(store.forDecryption(ByteBuffer.wrap(alice.ref()), 0, alice.keyId()));
            assertThrows(SubjectKeyStore.SubjectForgottenException.class, () -> store.forEncryption(SCOPE, id("alice")));
        }
    }

    @Test
    void givenAFloodOfScopeSecrets_whenRead_thenAtMostMaxScopesAreHeldAndTheExistingScopeWorks() throws Exception {
        try (SubjectKeyStore store = store(1000)) {
            SubjectKeyStore.SubjectKey alice = encryptionKey(store, "alice");
            long skippedBefore = store.stats().skippedRecords();

            for (int i = 0; i < SubjectKeyStore.MAX_SCOPES + 500; i++) {
                log.appendRaw(SubjectKeyRecords.key(SubjectKeyRecords.SCOPE_SECRET, "flood-" + i + "*", bytes(8)),
                        SubjectKeyRecords.secretValue("kek", bytes(100)));
            }

            assertTrue(store.stats().skippedRecords() - skippedBefore >= 500, "beyond MAX_SCOPES skipped: " + store.stats());
            assertThrows(SubjectKeyStore.TooManySubjectsException.class, () -> store.forEncryption("orders*", id("x")),
                    "a scope the policy adds now fails closed");
            assertArrayEquals(alice.key().getEncoded(), encryptionKey(store, "alice").key().getEncoded());
        }
    }

    @Test
    void givenAForgottenSubjectsKeyReplayedManyTimes_whenRead_thenItStaysForgottenAcrossCompactionAndRestart()
            throws Exception {
        SubjectKeyStore.SubjectKey alice;
        FakeSubjectKeyLog.Entry original;
        try (SubjectKeyStore store = store(1000)) {
            alice = encryptionKey(store, "alice");
            original = log.records().get(1);
            store.forget(SCOPE, "alice", WAIT);

            for (int i = 0; i < 1_000; i++) {
                log.appendRaw(original.key(), original.value());
            }
            // A key of alice's under a new key id, as a replica that had not read the marker yet would append.
            log.appendRaw(SubjectKeyRecords.key(SubjectKeyRecords.SUBJECT_KEY, SCOPE, alice.ref(), bytes(8)),
                    original.value());

            assertNull(store.forDecryption(ByteBuffer.wrap(alice.ref()), 0, alice.keyId()));
            assertThrows(SubjectKeyStore.SubjectForgottenException.class, () -> store.forEncryption(SCOPE, id("alice")));
            awaitLastValueOf(original.key());
        }
        // Replayed once more after the last overwrite, then compacted: a restarted replica reads marker, then replay.
        log.appendRaw(original.key(), original.value());
        log.compact();
        try (SubjectKeyStore restarted = store(1000)) {
            assertNull(restarted.forDecryption(ByteBuffer.wrap(alice.ref()), 0, alice.keyId()), "still forgotten");
            awaitLastValueOf(original.key());
        }
    }

    /** Waits until the last record with this key in the log is a forgotten value (the overwrite is asynchronous). */
    private void awaitLastValueOf(byte[] recordKey) throws InterruptedException {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (true) {
            byte[] last = null;
            for (FakeSubjectKeyLog.Entry e : log.records()) {
                if (Arrays.equals(e.key(), recordKey)) {
                    last = e.value();
                }
            }
            if (SubjectKeyRecords.isForgotten(last)) {
                return;
            }
            assertTrue(System.nanoTime() < deadline, "the replayed key was not overwritten");
            Thread.sleep(10);
        }
    }
}
