package io.meshcrypt.filter.observability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.config.PolicyReloads;
import org.junit.jupiter.api.Test;

/** The policy version in force: one info series at a time, and when it was put in force. */
class PolicyVersionMetricsTest {

    @Test
    void givenANewVersion_whenScraped_thenOnlyItsSeriesIsShownWithItsTime() {
        PolicyReloads reloads = new PolicyReloads();
        reloads.inForce("7", 1_700_000_000_000L);
        try (FilterMetrics metrics = new FilterMetrics(10)) {
            metrics.bind(reloads);
            String first = metrics.scrape();
            reloads.inForce("8", 1_700_000_060_000L);
            String second = metrics.scrape();

            assertTrue(first.contains("\nmeshcrypt_policy_info{version=\"7\"} 1\n"), first);
            assertTrue(first.contains("\nmeshcrypt_policy_last_reload_timestamp_seconds 1.7E9\n"), first);
            assertTrue(second.contains("\nmeshcrypt_policy_info{version=\"8\"} 1\n"), second);
            assertFalse(second.contains("version=\"7\""), "the version no longer in force is gone");
            assertTrue(second.contains("\nmeshcrypt_policy_last_reload_timestamp_seconds 1.70000006E9\n"), second);
        }
    }

    @Test
    void givenTheSameVersionAgain_whenPutInForce_thenItsTimeStays() {
        PolicyReloads reloads = new PolicyReloads();
        reloads.inForce("7", 1_000L);

        reloads.inForce("7", 2_000L);

        assertEquals(1_000L, reloads.inForceSinceMillis());
        assertEquals("7", reloads.version());
    }
}
