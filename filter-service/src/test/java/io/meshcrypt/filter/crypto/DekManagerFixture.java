package io.meshcrypt.filter.crypto;

import static org.junit.jupiter.api.Assertions.assertThrows;

import io.meshcrypt.filter.kms.CountingKekProvider;
import io.meshcrypt.filter.kms.KekProvider;
import io.meshcrypt.filter.kms.KeyNotReadyException;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.kms.LocalKekProvider;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

/** What the DEK tests share: a counting local KEK provider, a manual clock, and managers closed after each test. */
abstract class DekManagerFixture {
    static final Duration WAIT = Duration.ofSeconds(10);

    @TempDir
    Path dir;
    Path keyset;
    CountingKekProvider provider;
    final List<DekManager> managers = new ArrayList<>();
    final AtomicLong clock = new AtomicLong(1_000_000_000L);

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

    DekManager manager(DekManager.Settings settings) {
        DekManager m = new DekManager(provider, settings, clock::get);
        managers.add(m);
        return m;
    }

    DekManager realTimeManager(KekProvider p, DekManager.Settings settings) {
        DekManager m = new DekManager(p, settings);
        managers.add(m);
        return m;
    }

    static DekManager.Settings settings() {
        DekManager.Settings d = DekManager.Settings.defaults();
        return new DekManager.Settings(d.maxRecordsPerDek(), d.maxDekAge(), d.cacheTtl(), d.cacheMaxEntries(),
                Duration.ofSeconds(5), Duration.ofMillis(200), Duration.ofSeconds(5), d.kekCheckInterval());
    }

    static ByteBuffer utf8(String s) {
        return ByteBuffer.wrap(s.getBytes(StandardCharsets.UTF_8));
    }

    static void awaitReady(KeyNotReadyException e) throws Exception {
        try {
            e.ready().get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.ExecutionException completedExceptionally) {
            // also a signal to retry
        }
    }

    /** Waits until the startup listing of known KEKs is done: an unknown KEK id is refused only after it. */
    static void awaitKnownKeks(ValueCipherV2 cipher) {
        assertThrows(UnknownKekException.class,
                () -> KeyNotReadyException.awaitBlocking(() -> cipher.decrypt("orders", forged("local:1", 65)), WAIT));
    }

    /** A version-2 envelope with the given KEK id and wrapped-DEK length: a header anyone can write. */
    static ByteBuffer forged(String kekId, int wrappedLength) {
        byte[] header = ValueEnvelopeV2.header(kekId, 0x0102030405060708L, new byte[wrappedLength]);
        byte[] value = new byte[header.length + ValueEnvelope.NONCE_LENGTH + 5 + ValueEnvelope.TAG_LENGTH];
        System.arraycopy(header, 0, value, 0, header.length);
        return ByteBuffer.wrap(value);
    }
}
