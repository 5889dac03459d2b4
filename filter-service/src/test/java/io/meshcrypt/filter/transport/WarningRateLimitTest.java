package io.meshcrypt.filter.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class WarningRateLimitTest {

    @Test
    void givenAFloodOfResets_whenWarned_thenAtMostThePerWindowAreLoggedAndTheNextOneCountsTheRest() {
        AtomicLong now = new AtomicLong();
        WarningRateLimit warnings = new WarningRateLimit("reset", 3, 10_000_000_000L, now::get);

        assertEquals("", warnings.admit());
        assertEquals("", warnings.admit());
        assertEquals("", warnings.admit());
        for (int i = 0; i < 997; i++) {
            assertNull(warnings.admit(), "warning " + (i + 4) + " of the window is left out");
        }
        now.addAndGet(10_000_000_000L);

        assertEquals(" (997 earlier reset warning(s) not logged: more than 3 per 10 s)", warnings.admit());
        assertEquals("", warnings.admit());
    }
}
