package io.meshcrypt.filter.crypto;

import io.meshcrypt.filter.kms.KeyNotReadyException;

import static org.junit.jupiter.api.Assertions.assertSame;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.kms.KekRefusedException;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.kms.LocalKekProvider;
import io.meshcrypt.filter.kms.TransientKmsException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

class ValueCipherV2Test extends DekManagerFixture {
    private ValueCipherV2 raw(DekManager.Settings settings) {
        return new ValueCipherV2(manager(settings), null);
    }

    /** These tests are about envelopes and DEK lifetimes, not about waiting: they use the blocking view. */
    private Blocking cipher(DekManager.Settings settings) {
        return new Blocking(raw(settings));
    }

    record Blocking(ValueCipherV2 raw, ValueCipher view) implements ValueCipher {
        Blocking(ValueCipherV2 raw) {
            this(raw, raw.blocking(Duration.ofSeconds(10)));
        }

        DekManager deks() {
            return raw.deks();
        }

        @Override
        public ByteBuffer encrypt(String topic, ByteBuffer plaintext) throws GeneralSecurityException {
            return view.encrypt(topic, plaintext);
        }

        @Override
        public ByteBuffer decrypt(String topic, ByteBuffer envelope) throws GeneralSecurityException {
            return view.decrypt(topic, envelope);
        }
    }

    private static DekManager.Settings settings(long maxRecords, Duration maxAge) {
        DekManager.Settings d = DekManager.Settings.defaults();
        return new DekManager.Settings(maxRecords, maxAge, d.cacheTtl(), d.cacheMaxEntries(), Duration.ofSeconds(5),
                Duration.ofMillis(200), Duration.ofSeconds(5), d.kekCheckInterval());
    }

    private static String text(ByteBuffer b) {
        return StandardCharsets.UTF_8.decode(b.duplicate()).toString();
    }

    @Test
    void givenValue_whenEncryptedAndDecryptedByAnotherReplica_thenPlaintextAndHeaderNamesKeys() throws Exception {
        Blocking producer = cipher(DekManager.Settings.defaults());
        Blocking replica = cipher(DekManager.Settings.defaults());

        ByteBuffer envelope = producer.encrypt("orders", utf8("hello"));

        ValueEnvelopeV2.Info info = ValueEnvelopeV2.parse(envelope, "orders");
        assertEquals(2, envelope.get(4));
        assertEquals(new LocalKekProvider(keyset).currentKekId(), info.kekId());
        assertEquals(info.headerLength() + 12 + 5 + 16, envelope.remaining());
        assertEquals("hello", text(replica.decrypt("orders", envelope)));
        assertEquals(1, provider.unwraps.get(), "the replica unwrapped the DEK once");
    }

    @Test
    void givenManyRecords_whenDekCached_thenOneKmsCallEachWay() throws Exception {
        Blocking producer = cipher(DekManager.Settings.defaults());
        Blocking replica = cipher(DekManager.Settings.defaults());
        List<ByteBuffer> envelopes = new ArrayList<>();
        for (int i = 0; i < 1000; i++) {
            envelopes.add(producer.encrypt("orders", utf8("v" + i)));
        }
        for (int i = 0; i < 1000; i++) {
            assertEquals("v" + i, text(replica.decrypt("orders", envelopes.get(i))));
        }
        assertEquals(1, provider.wraps.get());
        assertEquals(1, provider.unwraps.get());
    }

    @Test
    void givenOneReusableBufferEachWay_whenValuesOfChangingSizesRoundTrip_thenEachResultIsExactAndViewsTheBuffer()
            throws Exception {
        ValueCipherV2 producer = raw(DekManager.Settings.defaults());
        ValueCipherV2 replica = raw(DekManager.Settings.defaults());
        new Blocking(producer).encrypt("orders", utf8("warm")); // the topic's DEK exists from here on
        ReusableBuffer envelopes = new ReusableBuffer();
        ReusableBuffer plaintexts = new ReusableBuffer();
        int[] sizes = {0, 1, 5000, 3, 70_000, 12, 4096, 1};
        byte[] previousArray = null;
        for (int round = 0; round < sizes.length; round++) {
            byte[] value = new byte[sizes[round]];
            java.util.Arrays.fill(value, (byte) ('a' + round));
            // An array-backed view in the middle of a larger array, as the record batch hands it out.
            byte[] batch = new byte[value.length + 20];
            System.arraycopy(value, 0, batch, 10, value.length);
            ByteBuffer plaintext = ByteBuffer.wrap(batch, 10, value.length);

            ByteBuffer envelope = producer.encrypt("orders", plaintext, envelopes);
            assertEquals(10, plaintext.position(), "the plaintext's position is not moved");
            byte[] stored = new byte[envelope.remaining()];
            envelope.duplicate().get(stored);
            ByteBuffer decrypted = new Blocking(replica).view().decrypt("orders", ByteBuffer.wrap(stored));
            assertArrayEquals(value, bytes(decrypted), "allocating decrypt of round " + round);
            ByteBuffer reused = KeyNotReadyException.awaitBlocking(
                    () -> replica.decrypt("orders", ByteBuffer.wrap(stored), plaintexts), Duration.ofSeconds(10));
            assertArrayEquals(value, bytes(reused), "decrypt into the reusable buffer, round " + round);
            if (round > 0 && sizes[round] <= sizes[round - 1]) {
                assertSame(previousArray, envelope.array(), "a value no larger than the last reuses the array");
            }
            previousArray = envelope.array();
        }
    }

    private static byte[] bytes(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.duplicate().get(out);
        return out;
    }

    @Test
    void givenEnvelope_whenTopicOrAnyHeaderByteChanged_thenDecryptionFails() throws Exception {
        Blocking c = cipher(DekManager.Settings.defaults());
        ByteBuffer envelope = c.encrypt("orders", utf8("secret"));
        // The wrapped DEK is bound to its topic, and so is the record: either check stops a copied value.
        assertThrows(GeneralSecurityException.class, () -> c.decrypt("payments", envelope));
        ValueEnvelopeV2.Info info = ValueEnvelopeV2.parse(envelope, "orders");
        // Every byte after the magic/version: KEK id, DEK id, wrapped DEK, nonce, ciphertext, tag.
        for (int i = 5; i < envelope.remaining(); i++) {
            byte[] tampered = envelope.array().clone();
            tampered[i] ^= 0x01;
            int at = i;
            assertThrows(GeneralSecurityException.class, () -> c.decrypt("orders", ByteBuffer.wrap(tampered)),
                    "flipped byte " + at + " of " + info.headerLength() + "-byte header");
        }
    }

    @Test
    void givenEnvelopeFromForeignKeyset_whenDecrypted_thenRefusedAsUnknownKekWithoutKmsCall() throws Exception {
        Path other = dir.resolve("other.json");
        Keysets.create(other);
        DekManager foreign = new DekManager(new LocalKekProvider(other), DekManager.Settings.defaults());
        managers.add(foreign);
        ByteBuffer envelope = new ValueCipherV2(foreign, null).blocking(Duration.ofSeconds(10)).encrypt("orders", utf8("x"));
        String kek = ValueEnvelopeV2.parse(envelope, null).kekId();

        UnknownKekException e = assertThrows(UnknownKekException.class,
                () -> cipher(DekManager.Settings.defaults()).decrypt("orders", envelope));
        assertTrue(e.getMessage().contains(kek), e.getMessage());
        assertEquals(kek, e.kekId());
        assertEquals(0, provider.unwraps.get(), "a KEK id the configuration does not know never reaches the KMS");
    }

    @Test
    void givenLostKek_whenRecordsPolledRepeatedly_thenOneUnwrapUntilTheFailureExpires() throws Exception {
        Path other = dir.resolve("other.json");
        Keysets.create(other);
        DekManager foreign = new DekManager(new LocalKekProvider(other), DekManager.Settings.defaults());
        managers.add(foreign);
        ByteBuffer envelope = new ValueCipherV2(foreign, null).blocking(Duration.ofSeconds(10)).encrypt("orders", utf8("x"));
        // Configured as known (e.g. a KEK that was deleted): the KMS is asked, refuses, and the refusal is remembered.
        Blocking c = cipher(settings(1000, Duration.ofHours(1))
                .withKnownKekIds(Set.of(ValueEnvelopeV2.parse(envelope, null).kekId())));

        for (int i = 0; i < 100; i++) {
            assertThrows(KekRefusedException.class, () -> c.decrypt("orders", envelope));
        }
        assertEquals(1, provider.unwraps.get());
        clock.addAndGet(Duration.ofSeconds(1).toNanos());
        assertThrows(KekRefusedException.class, () -> c.decrypt("orders", envelope));
        assertEquals(1, provider.unwraps.get(), "a missing KEK is not asked again within backoffMax");

        clock.addAndGet(Duration.ofSeconds(5).toNanos());
        assertThrows(KekRefusedException.class, () -> c.decrypt("orders", envelope));
        assertEquals(2, provider.unwraps.get(), "retried once the remembered failure expired (backoffMax 5 s)");
    }

    @Test
    void givenV1Envelope_whenDecryptedByV2Cipher_thenStillReadable() throws Exception {
        ValueCipherV1 v1 = ValueCipherV1.fromKeysetFile(keyset);
        ByteBuffer old = v1.encrypt("orders", utf8("legacy"));
        DekManager m = new DekManager(provider, DekManager.Settings.defaults());
        managers.add(m);

        assertEquals("legacy", text(new ValueCipherV2(m, v1).decrypt("orders", old)));
        assertThrows(UnsupportedEnvelopeVersionException.class, () -> new ValueCipherV2(m, null).decrypt("orders", old));
    }

    @Test
    void givenCountLimit_whenExceeded_thenNewDekAndAllRecordsDecrypt() throws Exception {
        Blocking c = cipher(settings(10, Duration.ofHours(1)));
        List<ByteBuffer> envelopes = new ArrayList<>();
        for (int i = 0; i < 35; i++) {
            envelopes.add(c.encrypt("orders", utf8("v" + i)));
        }
        long distinct = envelopes.stream().map(e -> uncheckedInfo(e).dekId()).distinct().count();
        assertTrue(distinct >= 4, "35 records at 10 per DEK use at least 4 DEKs, got " + distinct);
        // The replacement is generated ahead (at 90%) and may take over before the limit: what must hold is
        // that no DEK ever encrypts more records than the limit allows.
        Map<Long, Long> usesPerDek = envelopes.stream()
                .collect(Collectors.groupingBy(e -> uncheckedInfo(e).dekId(), Collectors.counting()));
        usesPerDek.forEach((dek, uses) -> assertTrue(uses <= 10, "DEK " + dek + " encrypted " + uses + " records, limit 10"));
        Blocking replica = cipher(DekManager.Settings.defaults());
        for (int i = 0; i < 35; i++) {
            assertEquals("v" + i, text(replica.decrypt("orders", envelopes.get(i))));
        }
    }

    @Test
    void givenAgeLimit_whenClockPassesIt_thenNewDek() throws Exception {
        Blocking c = cipher(settings(1000, Duration.ofMinutes(10)));
        long first = uncheckedInfo(c.encrypt("orders", utf8("a"))).dekId();
        clock.addAndGet(Duration.ofMinutes(11).toNanos());
        long second = uncheckedInfo(c.encrypt("orders", utf8("b"))).dekId();
        assertNotEquals(first, second);
    }

    @Test
    void givenForcedRotation_whenTrafficContinues_thenNewDekWithoutFailure() throws Exception {
        Blocking c = cipher(DekManager.Settings.defaults());
        long first = uncheckedInfo(c.encrypt("orders", utf8("a"))).dekId();
        c.deks().rotateDeks();
        long later = first;
        for (int i = 0; i < 10_000 && later == first; i++) {
            later = uncheckedInfo(c.encrypt("orders", utf8("b"))).dekId();
            Thread.onSpinWait();
        }
        assertNotEquals(first, later);
    }

    @Test
    void givenKekRotated_whenCurrentKekChecked_thenNewDeksUseNewKekAndOldRecordsStillDecrypt() throws Exception {
        Blocking c = cipher(DekManager.Settings.defaults());
        ByteBuffer before = c.encrypt("orders", utf8("before"));
        Keysets.rotate(keyset);
        c.deks().checkCurrentKek();
        ByteBuffer after = c.encrypt("orders", utf8("after"));
        for (int i = 0; i < 100_000 && uncheckedInfo(after).kekId().equals(uncheckedInfo(before).kekId()); i++) {
            after = c.encrypt("orders", utf8("after"));
        }

        assertEquals(new LocalKekProvider(keyset).currentKekId(), uncheckedInfo(after).kekId());
        assertNotEquals(uncheckedInfo(before).kekId(), uncheckedInfo(after).kekId());
        Blocking replica = cipher(DekManager.Settings.defaults());
        assertEquals("before", text(replica.decrypt("orders", before)));
        assertEquals("after", text(replica.decrypt("orders", after)));
    }

    @Test
    void givenNewTopic_whenManyThreadsEncryptAtOnce_thenOneWrapCall() throws Exception {
        provider.delayMillis = 200;
        Blocking c = cipher(DekManager.Settings.defaults());
        ExecutorService pool = Executors.newFixedThreadPool(8);
        CountDownLatch go = new CountDownLatch(1);
        List<Future<ByteBuffer>> results = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            results.add(pool.submit(() -> {
                go.await();
                return c.encrypt("fresh", utf8("x"));
            }));
        }
        go.countDown();
        for (Future<ByteBuffer> f : results) {
            f.get();
        }
        pool.shutdown();
        assertEquals(1, provider.wraps.get());
    }

    @Test
    void givenKmsDown_whenDekCached_thenTrafficContinuesAndNewTopicFailsWithBoundedCalls() throws Exception {
        Blocking c = cipher(DekManager.Settings.defaults());
        ByteBuffer cached = c.encrypt("orders", utf8("a"));
        provider.down.set(true);

        assertEquals("b", text(c.decrypt("orders", c.encrypt("orders", utf8("b")))));
        assertEquals("a", text(c.decrypt("orders", cached)));
        for (int i = 0; i < 200; i++) {
            assertThrows(TransientKmsException.class, () -> c.encrypt("new-topic", utf8("c")));
        }
        assertTrue(provider.wraps.get() <= 3, "backoff bounds the KMS calls, got " + provider.wraps.get());

        provider.down.set(false);
        clock.addAndGet(Duration.ofSeconds(10).toNanos());
        assertEquals("c", text(c.decrypt("new-topic", c.encrypt("new-topic", utf8("c")))));
    }

    private static ValueEnvelopeV2.Info uncheckedInfo(ByteBuffer e) {
        try {
            return ValueEnvelopeV2.parse(e, null);
        } catch (EnvelopeException ex) {
            throw new AssertionError(ex);
        }
    }

}
