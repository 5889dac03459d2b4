package io.meshcrypt.filter.crypto;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.kms.KeyNotReadyException;
import io.meshcrypt.filter.kms.TransientKmsException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** DEKs for encrypting: a topic without one waits for a token of the new-DEK bucket, in order, bounded; idle topics are dropped. */
class EncryptionDeksTest extends DekManagerFixture {
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
    void givenTopicWaitingForAToken_whenTheManagerCloses_thenItsWaitEndsAndTheRetryFailsInsteadOfWaitingAgain() throws Exception {
        DekManager m = manager(settings().withNewDataKeyRate(1, 1));
        KeyNotReadyException.awaitBlocking(() -> m.forEncryption("a"), WAIT);
        KeyNotReadyException waiting = assertThrows(KeyNotReadyException.class, () -> m.forEncryption("b"));

        m.close();

        assertTrue(waiting.ready().isDone());
        GeneralSecurityException retry = assertThrows(GeneralSecurityException.class, () -> m.forEncryption("b"));
        assertEquals(TransientKmsException.class, retry.getClass(), retry.toString());
    }
}
