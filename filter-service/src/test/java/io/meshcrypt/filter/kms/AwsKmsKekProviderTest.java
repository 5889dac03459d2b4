package io.meshcrypt.filter.kms;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.crypto.DekManager;
import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.crypto.ValueCipherV2;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Against moto's KMS server through the AWS SDK with an endpoint override. */
class AwsKmsKekProviderTest {
    private static MotoKms moto;

    @BeforeAll
    static void startMoto() throws Exception {
        moto = new MotoKms();
        moto.start();
    }

    @AfterAll
    static void stopMoto() throws Exception {
        if (moto != null) {
            moto.close();
        }
    }

    @Test
    void givenAlias_whenCreatedAndDekWrapped_thenUnwrapsAndRejectsOtherContext() throws Exception {
        try (AwsKmsKekProvider p = moto.provider("alias/unit-wrap")) {
            String arn = p.create();
            assertTrue(arn.startsWith("arn:aws:kms:"), arn);
            byte[] dek = new byte[32];
            dek[3] = 9;
            DekContext context = new DekContext("orders", 5L);

            WrappedDek wrapped = p.wrap(dek, context);

            assertEquals(arn, wrapped.kekId());
            assertArrayEquals(dek, p.unwrap(wrapped.kekId(), wrapped.bytes(), context));
            assertThrows(KekRefusedException.class, () -> p.unwrap(wrapped.kekId(), wrapped.bytes(), new DekContext("payments", 5L)));
        }
    }

    @Test
    void givenAliasRotated_whenNewDekWrapped_thenNewKeyAndOldStillUnwraps() throws Exception {
        try (AwsKmsKekProvider p = moto.provider("alias/unit-rotate")) {
            p.create();
            DekContext context = new DekContext("orders", 1L);
            WrappedDek old = p.wrap(new byte[32], context);

            String rotated = p.rotate();
            WrappedDek fresh = p.wrap(new byte[32], context);

            assertEquals(rotated, fresh.kekId());
            assertEquals(rotated, p.currentKekId());
            assertNotEquals(old.kekId(), fresh.kekId());
            assertArrayEquals(new byte[32], p.unwrap(old.kekId(), old.bytes(), context));
            List<KekProvider.KekInfo> keys = p.list();
            assertTrue(keys.stream().anyMatch(k -> k.kekId().equals(old.kekId()) && !k.current()), keys.toString());
        }
    }

    @Test
    void givenKmsStoppedThenRestartedEmpty_whenUnwrapped_thenTransientErrorThenLostKekNamed() throws Exception {
        try (MotoKms own = new MotoKms()) {
            own.start();
            try (AwsKmsKekProvider p = own.provider("alias/unit-lost")) {
                String arn = p.create();
                DekContext context = new DekContext("orders", 1L);
                WrappedDek wrapped = p.wrap(new byte[32], context);
                own.stop();

                GeneralSecurityException down = assertThrows(GeneralSecurityException.class, () -> p.unwrap(arn, wrapped.bytes(), context));
                assertTrue(!(down instanceof KekRefusedException), "an unreachable KMS is transient: " + down);

                // moto keeps keys in memory only: after a restart the key is gone, like a deleted KEK.
                own.start();
                GeneralSecurityException lost = assertThrows(KekRefusedException.class, () -> p.unwrap(arn, wrapped.bytes(), context));
                assertTrue(lost.getMessage().contains(arn), lost.getMessage());
            }
        }
    }

    @Test
    void givenEnvelopeCipherOnKms_whenKmsStopsAndReturns_thenCachedTopicFlowsNewTopicFailsWithBoundedCallsThenRecovers() throws Exception {
        try (MotoKms own = new MotoKms()) {
            own.start();
            AwsKmsKekProvider p = own.provider("alias/unit-outage");
            p.create();
            DekManager.Settings d = DekManager.Settings.defaults();
            DekManager deks = new DekManager(p, new DekManager.Settings(d.maxRecordsPerDek(), d.maxDekAge(), d.cacheTtl(),
                    d.cacheMaxEntries(), Duration.ofSeconds(5), Duration.ofMillis(200), Duration.ofSeconds(1), d.kekCheckInterval()));
            try {
                // Blocking view: the outage assertions are about the real error a retry gets, not about waiting.
                ValueCipher cipher = new ValueCipherV2(deks, null).blocking(Duration.ofSeconds(10));
                ByteBuffer before = cipher.encrypt("cached", utf8("before"));
                long callsBefore = deks.metrics().kmsCalls();
                own.stop();

                assertEquals("during", text(cipher.decrypt("cached", cipher.encrypt("cached", utf8("during")))));
                assertEquals("before", text(cipher.decrypt("cached", before)));
                for (int i = 0; i < 100; i++) {
                    assertThrows(TransientKmsException.class, () -> cipher.encrypt("fresh", utf8("x")));
                }
                long callsDuringOutage = deks.metrics().kmsCalls() - callsBefore;
                assertTrue(callsDuringOutage <= 3, "100 refused records cost " + callsDuringOutage + " KMS calls");

                // moto forgets its keys on restart; creating the alias again stands in for the KMS coming back.
                own.start();
                p.create();
                ByteBuffer after = null;
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (after == null) {
                    try {
                        after = cipher.encrypt("fresh", utf8("after"));
                    } catch (TransientKmsException backingOff) {
                        assertTrue(System.nanoTime() < deadline, "no recovery: " + backingOff.getMessage());
                        Thread.sleep(100);
                    }
                }
                assertEquals("after", text(cipher.decrypt("fresh", after)));
            } finally {
                deks.close();
            }
        }
    }

    private static ByteBuffer utf8(String s) {
        return ByteBuffer.wrap(s.getBytes(StandardCharsets.UTF_8));
    }

    private static String text(ByteBuffer b) {
        return StandardCharsets.UTF_8.decode(b.duplicate()).toString();
    }

    @Test
    void givenMissingKey_whenWrapped_thenKekRefused() throws Exception {
        try (AwsKmsKekProvider p = moto.provider("alias/never-created")) {
            assertThrows(KekRefusedException.class, () -> p.wrap(new byte[32], new DekContext("t", 1L)));
        }
    }
}
