package io.meshcrypt.filter.kms;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.security.GeneralSecurityException;
import java.util.List;
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
            assertThrows(KekUnavailableException.class, () -> p.unwrap(wrapped.kekId(), wrapped.bytes(), new DekContext("payments", 5L)));
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
                assertTrue(!(down instanceof KekUnavailableException), "an unreachable KMS is transient: " + down);

                // moto keeps keys in memory only: after a restart the key is gone, like a deleted KEK.
                own.start();
                GeneralSecurityException lost = assertThrows(KekUnavailableException.class, () -> p.unwrap(arn, wrapped.bytes(), context));
                assertTrue(lost.getMessage().contains(arn), lost.getMessage());
            }
        }
    }

    @Test
    void givenMissingKey_whenWrapped_thenKekUnavailable() throws Exception {
        try (AwsKmsKekProvider p = moto.provider("alias/never-created")) {
            assertThrows(KekUnavailableException.class, () -> p.wrap(new byte[32], new DekContext("t", 1L)));
        }
    }
}
