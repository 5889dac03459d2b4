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
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.Test;

/** The per-record key calls never wait for the KMS, and unknown KEK ids never reach the KMS (rate limits: EncryptionDeksTest). */
class DekManagerTest extends DekManagerFixture {
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

    @Test
    void givenACachedKey_whenLookedUpAndThenReusedForARunOfRecords_thenOneHitPerLookupNoneForTheRun() throws Exception {
        DekManager m = manager(settings());
        ValueCipherV2 cipher = new ValueCipherV2(m, null);
        ByteBuffer envelope = cipher.blocking(WAIT).encrypt("orders", utf8("x"));
        ValueEnvelopeV2.Info info = ValueEnvelopeV2.parse(envelope, "orders");
        int keySection = ValueEnvelopeV2.keySectionLength(envelope);
        long misses = m.metrics().cacheMisses();

        m.forDecryption("orders", envelope, info);
        m.forDecryption("orders", envelope, info);
        for (int i = 0; i < 5; i++) {
            m.cachedForDecryption("orders", envelope, keySection);
        }

        assertEquals(2, m.metrics().cacheHits(), "the producer's own key is cached: both lookups hit");
        assertEquals(misses, m.metrics().cacheMisses());
    }
}
