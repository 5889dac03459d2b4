package io.meshcrypt.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The per-topic lines of ./meshcrypt status from a filter-service scrape. */
class FilterServiceStatusTest {

    @Test
    void givenAScrape_whenSummarised_thenOneLinePerTopicWithItsNonZeroCounts() {
        String scrape = """
                # TYPE meshcrypt_records_total counter
                meshcrypt_records_total{direction="fetch",outcome="decrypted",topic="orders"} 3.0
                meshcrypt_records_total{direction="fetch",outcome="denied",topic="orders"} 0.0
                meshcrypt_records_total{direction="produce",outcome="encrypted",topic="orders"} 5.0
                meshcrypt_records_total{direction="produce",outcome="encrypted",topic="other"} 0.0
                meshcrypt_records_total{direction="fetch",outcome="ciphertext",topic="audit"} 1.0
                meshcrypt_ready 1.0
                """;

        assertEquals("  topic audit       fetch ciphertext 1\n"
                + "  topic orders      fetch decrypted 3, produce encrypted 5\n", FilterServiceStatus.recordsPerTopic(scrape));
    }
}
