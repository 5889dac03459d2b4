package io.meshcrypt.filter.kms;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.crypto.DekManager;
import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.crypto.ValueCipherV2;
import io.meshcrypt.filter.crypto.ValueEnvelopeV2;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Against a real SoftHSM2 token through SunPKCS11. */
class Pkcs11KekProviderTest {
    private static Pkcs11KekProvider provider;
    private static long slot;

    @BeforeAll
    static void token() throws Exception {
        var library = SoftHsm.library();
        slot = SoftHsm.initToken("meshcrypt-unit");
        provider = new Pkcs11KekProvider(library, slot, SoftHsm.PIN.toCharArray(), "kek");
    }

    @Test
    void givenToken_whenKekCreatedAndDekWrapped_thenUnwrapsOnTokenAndRejectsOtherContext() throws Exception {
        String kek = provider.create();
        assertTrue(kek.startsWith("pkcs11:kek."), kek);
        byte[] dek = new byte[32];
        dek[0] = 42;
        DekContext context = new DekContext("orders", 7L);

        WrappedDek wrapped = provider.wrap(dek, context);

        assertEquals(provider.currentKekId(), wrapped.kekId());
        assertEquals(60, wrapped.bytes().length, "12-byte IV + 32-byte DEK + 16-byte tag");
        assertArrayEquals(dek, provider.unwrap(wrapped.kekId(), wrapped.bytes(), context));
        assertThrows(KekRefusedException.class,
                () -> provider.unwrap(wrapped.kekId(), wrapped.bytes(), new DekContext("payments", 7L)));
        assertThrows(KekRefusedException.class,
                () -> provider.unwrap(wrapped.kekId(), wrapped.bytes(), new DekContext("orders", 8L)));
    }

    @Test
    void givenRotation_whenNewDeksWrapped_thenNewVersionCurrentAndOldStillUnwraps() throws Exception {
        provider.create();
        DekContext context = new DekContext("orders", 1L);
        byte[] dek = new byte[32];
        WrappedDek old = provider.wrap(dek, context);

        String rotated = provider.rotate();
        WrappedDek fresh = provider.wrap(dek, context);

        assertEquals(rotated, fresh.kekId());
        assertTrue(!rotated.equals(old.kekId()));
        assertArrayEquals(dek, provider.unwrap(old.kekId(), old.bytes(), context));
        assertArrayEquals(dek, provider.unwrap(fresh.kekId(), fresh.bytes(), context));
        List<KekProvider.KekInfo> keys = provider.list();
        assertTrue(keys.stream().anyMatch(k -> k.kekId().equals(old.kekId()) && !k.current()), keys.toString());
        assertTrue(keys.stream().anyMatch(k -> k.kekId().equals(rotated) && k.current()), keys.toString());
    }

    @Test
    void givenEnvelopeCipherOnToken_whenRecordsEncrypted_thenAnotherInstanceDecryptsWithOneUnwrap() throws Exception {
        provider.create();
        DekManager producer = new DekManager(provider, DekManager.Settings.defaults());
        DekManager replica = new DekManager(provider, DekManager.Settings.defaults());
        try {
            ValueCipher writer = new ValueCipherV2(producer, null).blocking(Duration.ofSeconds(10));
            ValueCipher reader = new ValueCipherV2(replica, null).blocking(Duration.ofSeconds(10));
            List<ByteBuffer> envelopes = new ArrayList<>();
            for (int i = 0; i < 100; i++) {
                envelopes.add(writer.encrypt("orders", ByteBuffer.wrap(("v" + i).getBytes(StandardCharsets.UTF_8))));
            }
            ValueEnvelopeV2.Info info = ValueEnvelopeV2.parse(envelopes.get(0), "orders");
            assertEquals(provider.currentKekId(), info.kekId());
            assertEquals(60, info.wrappedDekLength());
            for (int i = 0; i < 100; i++) {
                assertEquals("v" + i, StandardCharsets.UTF_8.decode(reader.decrypt("orders", envelopes.get(i))).toString());
            }
            assertEquals(1, replica.metrics().unwraps());
            assertEquals(1, producer.metrics().deksGenerated());
        } finally {
            producer.close();
            replica.close();
        }
    }

    @Test
    void givenUnknownLabel_whenUnwrapped_thenErrorNamesKek() {
        GeneralSecurityException e = assertThrows(KekRefusedException.class,
                () -> provider.unwrap("pkcs11:kek.999", new byte[60], new DekContext("orders", 1L)));
        assertTrue(e.getMessage().contains("pkcs11:kek.999"), e.getMessage());
    }

    @Test
    void givenSecondProcessView_whenKeyRotatedThroughAnotherSession_thenCurrentKekFollows() throws Exception {
        provider.create();
        Pkcs11KekProvider other = new Pkcs11KekProvider(SoftHsm.library(), slot, SoftHsm.PIN.toCharArray(), "kek");
        String rotated = other.rotate();
        assertEquals(rotated, provider.currentKekId());
    }
}
