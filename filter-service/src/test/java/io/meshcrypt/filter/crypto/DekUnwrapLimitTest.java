package io.meshcrypt.filter.crypto;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.kms.KekRefusedException;
import io.meshcrypt.filter.kms.KeyNotReadyException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Review item 7: a hostile broker serving envelopes with a known KEK id and random wrapped DEKs can neither make the
 * KMS unwrap at will nor push good DEKs out of the cache; review item 11: KEK ids from envelopes are shown escaped.
 */
class DekUnwrapLimitTest extends DekManagerFixture {
    private final Random random = new Random(7);

    /** A version-2 envelope anyone can write: any KEK id, any DEK id, any wrapped DEK. */
    private static ByteBuffer forged(String kekId, long dekId, byte[] wrapped) {
        byte[] header = ValueEnvelopeV2.header(kekId, dekId, wrapped);
        byte[] value = new byte[header.length + ValueEnvelope.NONCE_LENGTH + 5 + ValueEnvelope.TAG_LENGTH];
        System.arraycopy(header, 0, value, 0, header.length);
        return ByteBuffer.wrap(value);
    }

    private ByteBuffer forgedUnderKnownKek(long dekId) throws Exception {
        byte[] wrapped = new byte[65];
        random.nextBytes(wrapped);
        return forged(provider.currentKekId(), dekId, wrapped);
    }

    @Test
    void givenForgedWrappedDeksUnderAKnownKek_whenMoreThanTheBurstArrive_thenOnlyTheBurstIsUnwrappedAndTheRestWaitForTokens() throws Exception {
        DekManager m = manager(settings().withUnwrapRate(10, 5));
        ValueCipherV2 cipher = new ValueCipherV2(m, null);
        awaitKnownKeks(cipher);
        provider.delayMillis = 200; // the KMS is slow: the first five are still running when the rest arrive
        List<ByteBuffer> forged = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            forged.add(forgedUnderKnownKek(i));
        }

        List<KeyNotReadyException> waits = new ArrayList<>();
        for (ByteBuffer envelope : forged) {
            waits.add(assertThrows(KeyNotReadyException.class, () -> cipher.decrypt("orders", envelope)));
        }
        for (int i = 0; i < 5; i++) {
            awaitReady(waits.get(i));
            int n = i;
            assertThrows(KekRefusedException.class, () -> cipher.decrypt("orders", forged.get(n)));
        }

        assertEquals(5, provider.unwraps.get(), "one unwrap per token, not one per forged envelope");
        assertEquals(15, m.metrics().unwrapsDelayed());
        for (int i = 5; i < 20; i++) {
            assertTrue(waits.get(i).getMessage().startsWith("unwrap rate limit (10.0/s, burst 5) reached: DEK "),
                    waits.get(i).getMessage());
        }
        // The failed ones are remembered: asking again costs no KMS call and no token.
        for (int i = 0; i < 5; i++) {
            int n = i;
            assertThrows(KekRefusedException.class, () -> cipher.decrypt("orders", forged.get(n)));
        }
        assertEquals(5, provider.unwraps.get());
        // The wait of a refused one ends when a token is due (100 ms at 10/s); one second later five more may start.
        awaitReady(waits.get(19));
        clock.addAndGet(Duration.ofSeconds(1).toNanos());
        int started = 0;
        for (int i = 5; i < 20; i++) {
            int n = i;
            KeyNotReadyException again = assertThrows(KeyNotReadyException.class, () -> cipher.decrypt("orders", forged.get(n)));
            if (again.getMessage().startsWith("waiting for KMS")) {
                started++;
            }
        }
        assertEquals(5, started, "five of the fifteen got a token");
        assertEquals(25, m.metrics().unwrapsDelayed());
    }

    @Test
    void givenCacheFullOfGoodDeks_whenManyForgedUnwrapsFail_thenTheGoodDeksStayCached() throws Exception {
        ValueCipherV2 producer = new ValueCipherV2(manager(settings()), null);
        List<ByteBuffer> good = new ArrayList<>();
        for (String topic : List.of("t1", "t2", "t3")) {
            good.add(producer.blocking(WAIT).encrypt(topic, ByteBuffer.wrap(topic.getBytes(StandardCharsets.UTF_8))));
        }
        DekManager replica = manager(new DekManager.Settings(DekManager.Settings.DEFAULT_MAX_RECORDS, Duration.ofHours(1),
                Duration.ofHours(1), 3, Duration.ofSeconds(5), Duration.ofMillis(200), Duration.ofSeconds(5),
                Duration.ofMinutes(5)).withUnwrapRate(1000, 1000).withMaxFailedUnwraps(4));
        ValueCipherV2 cipher = new ValueCipherV2(replica, null);
        awaitKnownKeks(cipher);
        List<String> topics = List.of("t1", "t2", "t3");
        for (int i = 0; i < 3; i++) {
            int n = i;
            KeyNotReadyException.awaitBlocking(() -> cipher.decrypt(topics.get(n), good.get(n).duplicate()), WAIT);
        }
        assertEquals(3, provider.unwraps.get());

        for (int i = 0; i < 50; i++) {
            ByteBuffer envelope = forgedUnderKnownKek(i);
            assertThrows(KekRefusedException.class,
                    () -> KeyNotReadyException.awaitBlocking(() -> cipher.decrypt("t1", envelope), WAIT));
        }
        assertEquals(53, provider.unwraps.get());

        for (int i = 0; i < 3; i++) {
            ByteBuffer plain = cipher.decrypt(topics.get(i), good.get(i).duplicate()); // no KeyNotReadyException: cached
            assertEquals(topics.get(i), StandardCharsets.UTF_8.decode(plain).toString());
        }
        assertEquals(53, provider.unwraps.get(), "no good DEK was evicted by the failures");
    }

    @Test
    void givenExpiredGoodDek_whenNoUnwrapTokenIsLeft_thenItsReUnwrapNeedsNoToken() throws Exception {
        ByteBuffer good = new ValueCipherV2(manager(settings()), null).blocking(WAIT)
                .encrypt("orders", ByteBuffer.wrap("x".getBytes(StandardCharsets.UTF_8)));
        DekManager replica = manager(settings().withUnwrapRate(1, 1));
        ValueCipherV2 cipher = new ValueCipherV2(replica, null);
        awaitKnownKeks(cipher);
        KeyNotReadyException.awaitBlocking(() -> cipher.decrypt("orders", good.duplicate()), WAIT);
        clock.addAndGet(Duration.ofHours(2).toNanos()); // past cacheTtl
        ByteBuffer forged = forgedUnderKnownKek(1);
        assertThrows(KekRefusedException.class, () -> KeyNotReadyException.awaitBlocking(
                () -> cipher.decrypt("orders", forged), WAIT)); // takes the only token
        int unwraps = provider.unwraps.get();
        provider.delayMillis = 100; // the re-unwrap is still running when the caller polls it, even on an idle machine

        KeyNotReadyException wait = assertThrows(KeyNotReadyException.class, () -> cipher.decrypt("orders", good.duplicate()));

        assertTrue(wait.getMessage().startsWith("waiting for KMS"), wait.getMessage());
        awaitReady(wait);
        assertEquals("x", StandardCharsets.UTF_8.decode(cipher.decrypt("orders", good.duplicate())).toString());
        assertEquals(unwraps + 1, provider.unwraps.get());
    }

    @Test
    void givenUnwrapCollectedLate_whenCacheTtlAfterTheUnwrapStartedHasPassed_thenTheDekIsUnwrappedAgain() throws Exception {
        ByteBuffer good = new ValueCipherV2(manager(settings()), null).blocking(WAIT)
                .encrypt("orders", ByteBuffer.wrap("x".getBytes(StandardCharsets.UTF_8)));
        ValueCipherV2 cipher = new ValueCipherV2(manager(settings()), null);
        awaitKnownKeks(cipher);
        provider.delayMillis = 100; // the unwrap is still running when the caller polls it
        KeyNotReadyException started = assertThrows(KeyNotReadyException.class, () -> cipher.decrypt("orders", good.duplicate()));
        awaitReady(started);
        clock.addAndGet(Duration.ofMinutes(40).toNanos()); // collected 40 minutes after the unwrap started
        assertEquals("x", StandardCharsets.UTF_8.decode(cipher.decrypt("orders", good.duplicate())).toString());
        int unwraps = provider.unwraps.get();

        clock.addAndGet(Duration.ofMinutes(30).toNanos()); // past cacheTtl (1 h) from the start, not from the collection
        ByteBuffer decrypted = KeyNotReadyException.awaitBlocking(() -> cipher.decrypt("orders", good.duplicate()), WAIT);

        assertEquals("x", StandardCharsets.UTF_8.decode(decrypted).toString());
        assertEquals(unwraps + 1, provider.unwraps.get(), "the DEK left the cache cacheTtl after its unwrap started");
    }

    @Test
    void givenForgedKekIdWithNewlinesAndMaxLength_whenRefused_thenTheMessageShowsItEscapedAndCut() throws Exception {
        DekManager m = manager(settings());
        ValueCipherV2 cipher = new ValueCipherV2(m, null);
        awaitKnownKeks(cipher);
        String kekId = "evil\n2026-12-01 INFO all good\r\u001b[31m" + "A".repeat(200);

        UnknownKekException e = assertThrows(UnknownKekException.class, () -> KeyNotReadyException.awaitBlocking(
                () -> cipher.decrypt("orders", forged(kekId, 1, new byte[65])), WAIT));

        String shown = "evil\\x0a2026-12-01 INFO all good\\x0d\\x1b[31m" + "A".repeat(64 - 35) + "...(235 bytes)";
        assertTrue(e.getMessage().contains(" names KEK " + shown + ", which is not a KEK"), e.getMessage());
        assertFalse(e.getMessage().contains("\n") || e.getMessage().contains("\r") || e.getMessage().contains("\u001b"));
        assertEquals(kekId, e.kekId(), "the accessor keeps the id as read");
    }
}
