package io.meshcrypt.filter.kms;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The KMS decorators on their own: single-flight non-blocking unwraps, remembered failures, backoff, call counters. */
class ResilientKekProviderTest {
    private static final DekContext CONTEXT = new DekContext("orders", 7);

    @TempDir
    Path dir;
    private final AtomicLong clock = new AtomicLong(1_000_000_000L);
    private final KeyMetrics metrics = new KeyMetrics();
    private final ExecutorService pool = Executors.newFixedThreadPool(2);
    private final ScheduledThreadPoolExecutor timer = new ScheduledThreadPoolExecutor(1);
    private CountingKekProvider provider;
    private ResilientKekProvider kms;

    @BeforeEach
    void setUp() throws Exception {
        Path keyset = dir.resolve("kek.json");
        Keysets.create(keyset);
        provider = new CountingKekProvider(new LocalKekProvider(keyset));
        ResilientKekProvider.Settings settings = new ResilientKekProvider.Settings(Duration.ofHours(1), Duration.ofSeconds(5),
                Duration.ofMillis(200), Duration.ofSeconds(30), Duration.ofMinutes(5), Set.of(), Duration.ofSeconds(60),
                100, 200, 1000);
        kms = new ResilientKekProvider(new InstrumentedKekProvider(provider, metrics), settings, metrics, clock::get, pool, timer);
    }

    @AfterEach
    void tearDown() {
        timer.shutdownNow();
        pool.shutdownNow();
        kms.close();
    }

    private static void await(KeyNotReadyException e) throws Exception {
        try {
            e.ready().get(10, TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException completedExceptionally) {
            // also a signal to retry
        }
    }

    @Test
    void givenSlowKms_whenTwoCallersUnwrapTheSameDek_thenBothAreToldToWaitAndOneKmsCallServesThem() throws Exception {
        byte[] dek = new byte[KekProvider.DEK_BYTES];
        dek[0] = 42;
        WrappedDek wrapped = provider.delegate.wrap(dek, CONTEXT);
        provider.delayMillis = 300;

        KeyNotReadyException first = assertThrows(KeyNotReadyException.class, () -> kms.unwrap(wrapped.kekId(), wrapped.bytes(), CONTEXT));
        KeyNotReadyException second = assertThrows(KeyNotReadyException.class, () -> kms.unwrap(wrapped.kekId(), wrapped.bytes(), CONTEXT));
        await(first);
        await(second);

        assertArrayEquals(dek, kms.unwrap(wrapped.kekId(), wrapped.bytes(), CONTEXT));
        assertEquals(1, provider.unwraps.get());
        assertEquals(1, metrics.unwraps());
    }

    @Test
    void givenRefusedUnwrap_whenPolledAgainWithinTheLongestBackoff_thenTheRefusalIsRepeatedWithoutKmsCall() throws Exception {
        byte[] forged = new byte[60];
        String kek = provider.delegate.currentKekId();
        provider.delayMillis = 100; // the unwrap is still running when the caller polls it, even on an idle machine

        KeyNotReadyException wait = assertThrows(KeyNotReadyException.class, () -> kms.unwrap(kek, forged, CONTEXT));
        await(wait);
        assertThrows(KekRefusedException.class, () -> kms.unwrap(kek, forged, CONTEXT));
        clock.addAndGet(Duration.ofSeconds(29).toNanos());
        assertThrows(KekRefusedException.class, () -> kms.unwrap(kek, forged, CONTEXT));

        assertEquals(1, provider.unwraps.get());
        assertEquals(1, metrics.kmsFailures());
    }

    /** Starts an unwrap and waits until its KMS call finished, without collecting it. */
    private void unwrapAndWait(ResilientKekProvider kms, String kekId, byte[] wrapped, DekContext context) throws Exception {
        await(assertThrows(KeyNotReadyException.class, () -> kms.unwrap(kekId, wrapped, context)));
    }

    @Test
    void givenFinishedUnwrapNotYetCollected_whenFailedUnwrapsFillTheirBound_thenNeitherTheDekNorAFailureIsForgotten()
            throws Exception {
        // Room for two in-flight or failed unwraps; a finished good unwrap waiting for its caller takes none of it.
        ResilientKekProvider.Settings settings = new ResilientKekProvider.Settings(Duration.ofHours(1), Duration.ofSeconds(5),
                Duration.ofMillis(200), Duration.ofSeconds(30), Duration.ofMinutes(5), Set.of(), Duration.ofSeconds(60),
                100, 200, 2);
        ResilientKekProvider small = new ResilientKekProvider(new InstrumentedKekProvider(provider, metrics), settings,
                metrics, clock::get, pool, timer);
        byte[] dek = new byte[KekProvider.DEK_BYTES];
        dek[0] = 42;
        WrappedDek good = provider.delegate.wrap(dek, CONTEXT);
        String kek = good.kekId();
        byte[] forged1 = new byte[60];
        byte[] forged2 = new byte[61];
        provider.delayMillis = 200; // each caller is told to wait, then collects

        unwrapAndWait(small, kek, good.bytes(), CONTEXT);
        unwrapAndWait(small, kek, forged1, CONTEXT);
        unwrapAndWait(small, kek, forged2, CONTEXT);

        assertArrayEquals(dek, small.unwrap(kek, good.bytes(), CONTEXT), "the finished unwrap is collected, not started again");
        assertThrows(KekRefusedException.class, () -> small.unwrap(kek, forged1, CONTEXT));
        assertThrows(KekRefusedException.class, () -> small.unwrap(kek, forged2, CONTEXT));
        assertEquals(3, provider.unwraps.get(), "one KMS call per wrapped DEK");
    }

    @Test
    void givenKmsDown_whenCalledAgainBeforeTheBackoffPassed_thenItFailsFastWithoutKmsCallUntilTheBackoffPassed() throws Exception {
        provider.down.set(true);
        assertThrows(TransientKmsException.class, () -> kms.wrap(new byte[KekProvider.DEK_BYTES], CONTEXT));
        provider.down.set(false);

        TransientKmsException skipped = assertThrows(TransientKmsException.class, () -> kms.wrap(new byte[KekProvider.DEK_BYTES], CONTEXT));
        assertTrue(skipped.getMessage().contains("backing off"), skipped.getMessage());
        assertEquals(1, metrics.kmsSkipped());
        assertEquals(1, provider.wraps.get());

        clock.addAndGet(Duration.ofMillis(200).toNanos());
        WrappedDek wrapped = kms.wrap(new byte[KekProvider.DEK_BYTES], CONTEXT);
        assertTrue(kms.isKnownKek(wrapped.kekId()), "a KEK the service wrapped with is known");
        assertEquals(2, metrics.kmsCalls());
    }

    @Test
    void givenKekIdNeverReported_whenAskedAfterTheListing_thenItIsNotKnownAndNoUnwrapIsSent() throws Exception {
        kms.refreshKnownKeks();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        boolean known = false;
        while (System.nanoTime() < deadline) {
            try {
                known = kms.isKnownKek("local:1");
                break;
            } catch (KeyNotReadyException listing) {
                await(listing);
            }
        }
        assertFalse(known);
        assertTrue(kms.isKnownKek(provider.delegate.currentKekId()));
        assertEquals(0, provider.unwraps.get());
    }
}
