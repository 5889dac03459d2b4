package io.meshcrypt.filter.crypto;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.kms.CountingKekProvider;
import io.meshcrypt.filter.kms.KekProvider;
import io.meshcrypt.filter.kms.KekRefusedException;
import io.meshcrypt.filter.kms.KeyNotReadyException;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.kms.LocalKekProvider;
import io.meshcrypt.filter.kms.TransientKmsException;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The per-record key calls never wait for the KMS, new DEKs are rate-limited, and unknown KEK ids never reach the KMS. */
class DekManagerTest {
    private static final Duration WAIT = Duration.ofSeconds(10);

    @TempDir
    Path dir;
    private Path keyset;
    private CountingKekProvider provider;
    private final List<DekManager> managers = new ArrayList<>();
    private final AtomicLong clock = new AtomicLong(1_000_000_000L);

    @BeforeEach
    void setUp() throws Exception {
        keyset = dir.resolve("kek.json");
        Keysets.create(keyset);
        provider = new CountingKekProvider(new LocalKekProvider(keyset));
    }

    @AfterEach
    void tearDown() {
        managers.forEach(DekManager::close);
    }

    private DekManager manager(DekManager.Settings settings) {
        DekManager m = new DekManager(provider, settings, clock::get);
        managers.add(m);
        return m;
    }

    private DekManager realTimeManager(KekProvider p, DekManager.Settings settings) {
        DekManager m = new DekManager(p, settings);
        managers.add(m);
        return m;
    }

    private static DekManager.Settings settings() {
        DekManager.Settings d = DekManager.Settings.defaults();
        return new DekManager.Settings(d.maxRecordsPerDek(), d.maxDekAge(), d.cacheTtl(), d.cacheMaxEntries(),
                Duration.ofSeconds(5), Duration.ofMillis(200), Duration.ofSeconds(5), d.kekCheckInterval());
    }

    private static ByteBuffer utf8(String s) {
        return ByteBuffer.wrap(s.getBytes(StandardCharsets.UTF_8));
    }

    private static void awaitReady(KeyNotReadyException e) throws Exception {
        try {
            e.ready().get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.ExecutionException completedExceptionally) {
            // also a signal to retry
        }
    }

    /** Waits until the startup listing of known KEKs is done: an unknown KEK id is refused only after it. */
    private static void awaitKnownKeks(ValueCipherV2 cipher) {
        assertThrows(UnknownKekException.class,
                () -> KeyNotReadyException.awaitBlocking(() -> cipher.decrypt("orders", forged("local:1", 65)), WAIT));
    }

    /** A version-2 envelope with the given KEK id and wrapped-DEK length: a header anyone can write. */
    private static ByteBuffer forged(String kekId, int wrappedLength) {
        byte[] header = ValueEnvelopeV2.header(kekId, 0x0102030405060708L, new byte[wrappedLength]);
        byte[] value = new byte[header.length + ValueEnvelope.NONCE_LENGTH + 5 + ValueEnvelope.TAG_LENGTH];
        System.arraycopy(header, 0, value, 0, header.length);
        return ByteBuffer.wrap(value);
    }

    @Test
    void givenNewTopicAndSlowKms_whenForEncryption_thenKeyNotReadyAtOnceAndTheRetryAfterReadyGetsTheDek() throws Exception {
        provider.delayMillis = 500;
        DekManager m = manager(settings());

        long start = System.nanoTime();
        KeyNotReadyException e = assertThrows(KeyNotReadyException.class, () -> m.forEncryption("orders"));
        long tookMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);

        assertTrue(tookMillis < 250, "the caller must not wait for the 500 ms wrap, took " + tookMillis + " ms");
        assertFalse(e.ready().isDone());
        assertInstanceOf(TransientKmsException.class, e, "callers that do not park treat it as a transient KMS failure");
        // Asked again while the wrap runs: the same work, no second KMS call.
        assertThrows(KeyNotReadyException.class, () -> m.forEncryption("orders"));
        awaitReady(e);
        Dek dek = m.forEncryption("orders");
        assertNotNull(dek);
        assertSame(dek, m.forEncryption("orders"));
        assertEquals(1, provider.wraps.get());
        assertEquals(2, m.metrics().keysNotReady());
    }

    @Test
    void givenUncachedDekAndSlowKms_whenForDecryption_thenKeyNotReadyAtOnceAndTheRetryAfterReadyHitsTheCache() throws Exception {
        ByteBuffer envelope = new ValueCipherV2(manager(settings()), null).blocking(WAIT).encrypt("orders", utf8("hello"));
        provider.delayMillis = 500;
        DekManager replica = manager(settings());
        ValueCipherV2 cipher = new ValueCipherV2(replica, null);
        awaitKnownKeks(cipher);

        long start = System.nanoTime();
        KeyNotReadyException e = assertThrows(KeyNotReadyException.class, () -> cipher.decrypt("orders", envelope));
        long tookMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertTrue(tookMillis < 250, "the caller must not wait for the 500 ms unwrap, took " + tookMillis + " ms");

        awaitReady(e);
        assertEquals("hello", StandardCharsets.UTF_8.decode(cipher.decrypt("orders", envelope)).toString());
        assertEquals("hello", StandardCharsets.UTF_8.decode(cipher.decrypt("orders", envelope)).toString());
        assertEquals(1, provider.unwraps.get());
    }

    @Test
    void givenKmsDown_whenReadyCompletes_thenTheRetryGetsTransientKmsExceptionNotKeyNotReady() throws Exception {
        ByteBuffer envelope = new ValueCipherV2(manager(settings()), null).blocking(WAIT).encrypt("orders", utf8("x"));
        provider.down.set(true);
        provider.delayMillis = 100; // the KMS answers (with an error) after the caller has been told to wait
        DekManager m = manager(settings());
        ValueCipherV2 cipher = new ValueCipherV2(m, null);

        KeyNotReadyException produce = assertThrows(KeyNotReadyException.class, () -> m.forEncryption("fresh"));
        awaitReady(produce);
        GeneralSecurityException outage = assertThrows(GeneralSecurityException.class, () -> m.forEncryption("fresh"));
        assertEquals(TransientKmsException.class, outage.getClass(), outage.toString());

        clock.addAndGet(Duration.ofSeconds(1).toNanos()); // past the backoff of the failed wrap: the unwrap is sent
        awaitKnownKeks(cipher);
        KeyNotReadyException fetch = assertThrows(KeyNotReadyException.class, () -> cipher.decrypt("orders", envelope));
        awaitReady(fetch);
        GeneralSecurityException unwrapOutage = assertThrows(GeneralSecurityException.class, () -> cipher.decrypt("orders", envelope));
        assertEquals(TransientKmsException.class, unwrapOutage.getClass(), unwrapOutage.toString());
    }

    @Test
    void givenKekRefuses_whenReadyCompletes_thenTheRetryGetsKekRefused() throws Exception {
        Path other = dir.resolve("other.json");
        Keysets.create(other);
        DekManager foreign = realTimeManager(new LocalKekProvider(other), settings());
        ByteBuffer envelope = new ValueCipherV2(foreign, null).blocking(WAIT).encrypt("orders", utf8("x"));
        String kek = ValueEnvelopeV2.parse(envelope, null).kekId();
        DekManager m = manager(settings().withKnownKekIds(Set.of(kek)));
        ValueCipherV2 cipher = new ValueCipherV2(m, null);
        provider.delayMillis = 100;

        awaitKnownKeks(cipher);
        KeyNotReadyException e = assertThrows(KeyNotReadyException.class, () -> cipher.decrypt("orders", envelope));
        awaitReady(e);
        KekRefusedException refused = assertThrows(KekRefusedException.class, () -> cipher.decrypt("orders", envelope));
        assertTrue(refused.getMessage().contains(kek), refused.getMessage());
        assertEquals(1, provider.unwraps.get());
    }

    @Test
    void givenHungKms_whenKmsTimeoutPasses_thenReadyCompletesAndTheRetryGetsTransientKmsException() throws Exception {
        provider.delayMillis = 3000;
        DekManager.Settings d = settings();
        DekManager m = manager(new DekManager.Settings(d.maxRecordsPerDek(), d.maxDekAge(), d.cacheTtl(), d.cacheMaxEntries(),
                Duration.ofMillis(200), d.backoffMin(), d.backoffMax(), d.kekCheckInterval()));

        KeyNotReadyException e = assertThrows(KeyNotReadyException.class, () -> m.forEncryption("orders"));
        long start = System.nanoTime();
        e.ready().get(2, TimeUnit.SECONDS);
        assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(2));

        GeneralSecurityException timedOut = assertThrows(GeneralSecurityException.class, () -> m.forEncryption("orders"));
        assertEquals(TransientKmsException.class, timedOut.getClass(), timedOut.toString());
        assertTrue(timedOut.getMessage().contains("within 200 ms"), timedOut.getMessage());
        assertEquals(1, provider.wraps.get(), "still single-flight: the hung call is not repeated");
    }

    @Test
    void givenOneProduceNaming1000NewTopics_whenEncrypted_thenKmsCallsBoundedByTheBurstAndCachedTopicsUnaffected() throws Exception {
        // The fake clock never advances: no token is refilled during the flood.
        DekManager m = manager(settings().withNewDataKeyRate(50, 5));
        ValueCipherV2 cipher = new ValueCipherV2(m, null);
        ByteBuffer before = cipher.blocking(WAIT).encrypt("orders", utf8("before"));
        provider.delayMillis = 100; // a KMS round trip: no new topic can be served within the flood
        int wrapsBefore = provider.wraps.get();

        int notReady = 0;
        for (int i = 0; i < 1000; i++) {
            String topic = "t-" + i;
            try {
                cipher.encrypt(topic, utf8("x"));
            } catch (KeyNotReadyException e) {
                notReady++;
            }
        }
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (m.metrics().deksGenerated() < 5 && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }

        assertEquals(1000, notReady);
        assertEquals(4, provider.wraps.get() - wrapsBefore, "burst 5, one token spent on 'orders': 4 more KMS wraps");
        assertEquals(996, m.metrics().newDeksDelayed());
        // The cached topic never noticed.
        assertEquals("before", StandardCharsets.UTF_8.decode(cipher.decrypt("orders", before)).toString());
        cipher.encrypt("orders", utf8("during"));
    }

    @Test
    void givenRequestNamingSeveralNewTopics_whenPrepared_thenTheirDeksAreMadeInParallelAndAllServeAfterOneWait() throws Exception {
        provider.delayMillis = 300;
        DekManager m = manager(settings());
        List<String> topics = List.of("t1", "t2", "t3", "t4");

        long start = System.nanoTime();
        List<java.util.concurrent.CompletableFuture<Void>> waits = new ArrayList<>();
        for (String t : topics) {
            waits.add(m.prepareForEncryption(t));
        }
        assertTrue(waits.stream().allMatch(w -> w != null && !w.isDone()));
        java.util.concurrent.CompletableFuture.allOf(waits.toArray(java.util.concurrent.CompletableFuture[]::new))
                .get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
        long tookMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);

        for (String t : topics) {
            assertNotNull(m.forEncryption(t), t);
            assertEquals(null, m.prepareForEncryption(t), "ready now: " + t);
        }
        assertTrue(tookMillis < 1100, "4 wraps of 300 ms on the KMS pool run side by side, took " + tookMillis + " ms");
        assertEquals(4, provider.wraps.get());
    }

    @Test
    void givenNoTokenLeft_whenANewTopicWaits_thenReadyCompletesWhenTheNextTokenIsDueWithoutKmsCall() throws Exception {
        DekManager m = realTimeManager(provider, settings().withNewDataKeyRate(2, 1));
        provider.delayMillis = 50;
        KeyNotReadyException first = assertThrows(KeyNotReadyException.class, () -> m.forEncryption("a"));
        awaitReady(first);
        m.forEncryption("a");
        int wraps = provider.wraps.get();

        long start = System.nanoTime();
        KeyNotReadyException waiting = assertThrows(KeyNotReadyException.class, () -> m.forEncryption("b"));
        assertTrue(waiting.getMessage().contains("rate limit"), waiting.getMessage());
        assertFalse(waiting.ready().isDone());
        assertEquals(wraps, provider.wraps.get(), "no KMS call without a token");
        // Another new topic queues behind it; nothing polls.
        KeyNotReadyException alsoWaiting = assertThrows(KeyNotReadyException.class, () -> m.forEncryption("c"));
        assertEquals(2, m.metrics().newDeksDelayed());

        waiting.ready().get(3, TimeUnit.SECONDS);
        long waitedMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertTrue(waitedMillis < 1000, "a token every 500 ms, waited " + waitedMillis + " ms");
        // The token went to 'b' with its DEK made: the retry is served at once.
        assertNotNull(m.forEncryption("b"));
        assertFalse(alsoWaiting.ready().isDone(), "'c' asked later: it gets the next token");
        alsoWaiting.ready().get(3, TimeUnit.SECONDS);
        assertNotNull(m.forEncryption("c"));
        assertEquals(wraps + 2, provider.wraps.get());
    }

    @Test
    void givenATopicWaitingForAToken_whenAFloodOfNewNamesArrivesLater_thenTheEarlierTopicIsServedFirst() throws Exception {
        DekManager m = realTimeManager(provider, settings().withNewDataKeyRate(10, 1));
        KeyNotReadyException.awaitBlocking(() -> m.forEncryption("warm"), WAIT);

        KeyNotReadyException legit = assertThrows(KeyNotReadyException.class, () -> m.forEncryption("legit"));
        for (int i = 0; i < 200; i++) {
            String topic = "flood-" + i;
            assertThrows(KeyNotReadyException.class, () -> m.forEncryption(topic));
        }
        legit.ready().get(3, TimeUnit.SECONDS);

        assertNotNull(m.forEncryption("legit"), "served by the first token, before any name asked later");
        assertTrue(m.metrics().deksGenerated() <= 4, "the flood got at most the tokens due meanwhile: " + m.metrics().deksGenerated());
    }

    @Test
    void givenTheWaitingQueueFull_whenAnotherNewTopicAsks_thenItIsRefusedAtOnceAsAnOutageWithoutKmsCall() throws Exception {
        DekManager m = manager(settings().withNewDataKeyRate(1, 1).withMaxTopicsWaitingForDek(3));
        KeyNotReadyException.awaitBlocking(() -> m.forEncryption("a"), WAIT);
        int wraps = provider.wraps.get();
        for (String t : List.of("b", "c", "d")) {
            assertThrows(KeyNotReadyException.class, () -> m.forEncryption(t));
        }
        assertThrows(KeyNotReadyException.class, () -> m.forEncryption("b"), "asking again keeps its place");

        GeneralSecurityException refused = assertThrows(GeneralSecurityException.class, () -> m.forEncryption("e"));

        assertEquals(TransientKmsException.class, refused.getClass(), refused.toString());
        assertEquals(1, m.metrics().newDeksRefused());
        assertEquals(3, m.metrics().newDeksDelayed());
        assertEquals(wraps, provider.wraps.get());
        assertEquals(null, m.prepareForEncryption("f"), "prepare leaves the refusal to forEncryption");
    }

    @Test
    void givenNoTokenLeft_whenAnExistingTopicsDekIsRotated_thenItsReplacementNeedsNoToken() throws Exception {
        DekManager m = manager(settings().withNewDataKeyRate(1, 1));
        Dek first = KeyNotReadyException.awaitBlocking(() -> m.forEncryption("orders"), WAIT);
        assertThrows(KeyNotReadyException.class, () -> m.forEncryption("other"), "the only token is spent");

        m.rotateDeks();
        assertSame(first, m.forEncryption("orders"), "the retired DEK keeps serving while its replacement is made");
        long deadline = System.nanoTime() + WAIT.toNanos();
        Dek next = first;
        while (next == first && System.nanoTime() < deadline) {
            Thread.sleep(5);
            next = m.forEncryption("orders");
        }
        assertTrue(next != first, "replaced without a token");
    }

    @Test
    void givenForgedHeaderWithUnknownKekId_whenDecrypted_thenRefusedAsCorruptWithZeroKmsCalls() throws Exception {
        DekManager m = manager(settings());
        ValueCipherV2 cipher = new ValueCipherV2(m, null);
        // The startup listing of known KEKs (the provider's own keys, no id from any record) has finished.
        awaitKnownKeks(cipher);
        int lists = provider.lists.get();
        int current = provider.currentChecks.get();

        for (String kek : List.of("local:1", "arn:aws:kms:eu-west-1:666666666666:key/attacker", "pkcs11:evil.1", "x")) {
            UnknownKekException e = assertThrows(UnknownKekException.class, () -> cipher.decrypt("orders", forged(kek, 65)));
            assertEquals(kek, e.kekId());
            // An EnvelopeException, not a TransientKmsException (the type system says so): Fetch answers
            // CORRUPT_MESSAGE, not the retriable KAFKA_STORAGE_ERROR.
            assertInstanceOf(EnvelopeException.class, e);
        }

        assertEquals(0, provider.unwraps.get(), "no unwrap for a KEK id the configuration does not know");
        assertEquals(lists, provider.lists.get(), "no re-listing within kekListMinInterval");
        assertEquals(current, provider.currentChecks.get());
        assertEquals(5, m.metrics().unknownKeks());
    }

    @Test
    void givenKekRotatedByAnotherProcess_whenItsFirstEnvelopeArrivesAfterTheListingIsStale_thenTheCurrentKekIsReadOnceAndDecrypted() throws Exception {
        DekManager replica = manager(settings());
        ValueCipherV2 reader = new ValueCipherV2(replica, null);
        awaitKnownKeks(reader);
        int lists = provider.lists.get();
        int currentChecks = provider.currentChecks.get();

        Keysets.rotate(keyset);
        DekManager writer = realTimeManager(new LocalKekProvider(keyset), settings());
        ByteBuffer envelope = new ValueCipherV2(writer, null).blocking(WAIT).encrypt("orders", utf8("rotated"));
        provider.listDelayMillis = 100;
        // Within kekListMinInterval of the last listing an unknown id is refused at once (the documented trade-off).
        assertThrows(UnknownKekException.class, () -> reader.decrypt("orders", envelope));
        clock.addAndGet(Duration.ofSeconds(61).toNanos());

        KeyNotReadyException e = assertThrows(KeyNotReadyException.class, () -> reader.decrypt("orders", envelope));
        assertTrue(e.getMessage().contains("known KEKs"), e.getMessage());
        awaitReady(e);
        String text = StandardCharsets.UTF_8.decode(KeyNotReadyException.awaitBlocking(() -> reader.decrypt("orders", envelope), WAIT)).toString();

        assertEquals("rotated", text);
        assertEquals(currentChecks + 1, provider.currentChecks.get(), "one cheap call: the current KEK");
        assertEquals(lists, provider.lists.get(), "the full list is read again only after kekCheckInterval");
        assertEquals(1, provider.unwraps.get(), "only the KEK the provider listed was asked");
    }

    @Test
    void givenTopicsWhoseDeksExpired_whenSwept_thenTheirStateIsDroppedAndTheNextRecordNeedsANewToken() throws Exception {
        DekManager m = manager(settings().withNewDataKeyRate(1, 2));
        KeyNotReadyException.awaitBlocking(() -> m.forEncryption("a"), WAIT);
        KeyNotReadyException.awaitBlocking(() -> m.forEncryption("b"), WAIT);
        m.sweepIdleTopics();
        assertNotNull(m.forEncryption("a"), "a live DEK is not swept");

        clock.addAndGet(Duration.ofHours(2).toNanos()); // past maxDekAge; also refills the bucket (2 tokens)
        provider.delayMillis = 100;
        m.sweepIdleTopics();
        int wraps = provider.wraps.get();
        assertThrows(KeyNotReadyException.class, () -> m.forEncryption("a"));
        assertThrows(KeyNotReadyException.class, () -> m.forEncryption("b"));
        KeyNotReadyException noToken = assertThrows(KeyNotReadyException.class, () -> m.forEncryption("c"));

        assertTrue(noToken.getMessage().contains("rate limit"), noToken.getMessage());
        assertEquals(1, m.metrics().newDeksDelayed(), "a and b were new topics again after the sweep: they took the 2 tokens");
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (provider.wraps.get() < wraps + 2 && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertEquals(wraps + 2, provider.wraps.get());
    }

    @Test
    void givenProviderThatMayNotListKeks_whenAnOldKeksEnvelopeArrives_thenOnlyKnownKekIdsFromTheConfigurationAreAsked() throws Exception {
        ByteBuffer old = new ValueCipherV2(realTimeManager(new LocalKekProvider(keyset), settings()), null).blocking(WAIT)
                .encrypt("orders", utf8("old"));
        String oldKek = ValueEnvelopeV2.parse(old, null).kekId();
        Keysets.rotate(keyset);
        KekProvider noList = new CountingKekProvider(provider) {
            @Override
            public List<KekInfo> list() throws GeneralSecurityException {
                throw new KekRefusedException("AccessDeniedException (kms:ListKeys)");
            }
        };

        ValueCipherV2 current = new ValueCipherV2(realTimeManager(noList, settings()), null);
        assertThrows(UnknownKekException.class, () -> KeyNotReadyException.awaitBlocking(() -> current.decrypt("orders", old), WAIT));
        assertEquals(0, provider.unwraps.get());

        ValueCipherV2 configured = new ValueCipherV2(realTimeManager(noList, settings().withKnownKekIds(Set.of(oldKek))), null);
        assertEquals("old", StandardCharsets.UTF_8.decode(configured.blocking(WAIT).decrypt("orders", old)).toString());
        assertEquals(1, provider.unwraps.get());
    }

    @Test
    void givenTopicWaitingForAToken_whenTheManagerCloses_thenItsWaitEndsAndTheRetryFailsInsteadOfWaitingAgain() throws Exception {
        DekManager m = manager(settings().withNewDataKeyRate(1, 1));
        KeyNotReadyException.awaitBlocking(() -> m.forEncryption("a"), WAIT);
        KeyNotReadyException waiting = assertThrows(KeyNotReadyException.class, () -> m.forEncryption("b"));

        m.close();

        assertTrue(waiting.ready().isDone());
        GeneralSecurityException retry = assertThrows(GeneralSecurityException.class, () -> m.forEncryption("b"));
        assertEquals(TransientKmsException.class, retry.getClass(), retry.toString());
    }

    @Test
    void givenForgedHeaderWithHugeWrappedDek_whenDecrypted_thenRefusedWithoutKmsCall() throws Exception {
        DekManager m = manager(settings().withMaxWrappedDekBytes(512));
        ValueCipherV2 cipher = new ValueCipherV2(m, null);
        String kek = provider.currentKekId();

        EnvelopeException e = assertThrows(EnvelopeException.class, () -> cipher.decrypt("orders", forged(kek, 513)));
        assertTrue(e.getMessage().contains("513"), e.getMessage());
        assertEquals(0, provider.unwraps.get());
        // The length field itself cannot claim more than the value holds.
        ByteBuffer truncated = forged(kek, 600).limit(100);
        assertThrows(EnvelopeException.class, () -> ValueEnvelopeV2.parse(truncated, "orders"));
    }

    @Test
    void givenCachedKeys_whenManyRecords_thenTheKeyCallsAllocateNothing() throws Exception {
        DekManager m = manager(settings());
        ValueCipherV2 cipher = new ValueCipherV2(m, null);
        ByteBuffer envelope = cipher.blocking(WAIT).encrypt("orders", utf8("x"));
        ValueEnvelopeV2.Info info = ValueEnvelopeV2.parse(envelope, "orders");
        SecretKeySpec key = KeyNotReadyException.awaitBlocking(() -> m.forDecryption("orders", envelope, info), WAIT);
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        int keySection = ValueEnvelopeV2.keySectionLength(envelope);
        assertEquals(info.headerLength() - info.keyOffset(), keySection);
        for (int i = 0; i < 20_000; i++) { // warm up
            m.forEncryption("orders");
            m.forDecryption("orders", envelope, info);
            m.cachedForDecryption("orders", envelope, keySection);
        }

        long before = threads.getCurrentThreadAllocatedBytes();
        for (int i = 0; i < 100_000; i++) {
            m.forEncryption("orders");
            m.forDecryption("orders", envelope, info);
            m.cachedForDecryption("orders", envelope, keySection);
        }
        long allocated = threads.getCurrentThreadAllocatedBytes() - before;

        assertTrue(allocated < 64 * 1024, "300,000 cached key lookups allocated " + allocated + " bytes");
        assertArrayEquals(key.getEncoded(), m.forDecryption("orders", envelope, info).getEncoded());
        assertSame(m.forDecryption("orders", envelope, info), m.cachedForDecryption("orders", envelope, keySection));
        assertEquals(null, m.cachedForDecryption("payments", envelope, keySection), "the cached key is bound to its topic");
    }
}
