package io.meshcrypt.filter.records;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.records.RecordBatches.Params;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.record.internal.CompressionType;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.junit.jupiter.api.Test;

/** A rewriter's failure keeps its answer when the batch rewriter names the record it happened at. */
class RecordRewriteAnswerTest {
    private static final MemoryRecords ONE_RECORD = RecordBatches.build(Params.plain(CompressionType.NONE),
            RecordBatches.contiguous(List.of(new SimpleRecord("k".getBytes(StandardCharsets.UTF_8),
                    "v".getBytes(StandardCharsets.UTF_8)))));

    @Test
    void givenARewriterThatAsksForARetry_whenTheBatchIsRewritten_thenTheRetryAndAnswerSurviveWithTheOffset() {
        CompletableFuture<Void> ready = new CompletableFuture<>();
        ValueRewriter notReady = value -> {
            throw new RecordRewriteException("key not ready", Errors.KAFKA_STORAGE_ERROR, ready, null);
        };

        RecordRewriteException e = assertThrows(RecordRewriteException.class,
                () -> RecordBatchRewrites.rewrite(ONE_RECORD, notReady));

        assertSame(ready, e.retryWhen());
        assertEquals(Errors.KAFKA_STORAGE_ERROR, e.answer());
        assertEquals(1000L, e.offset());
        assertTrue(e.getMessage().contains("key not ready"), e.getMessage());
    }

    @Test
    void givenARewriterThatFailsPlainly_whenTheBatchIsRewritten_thenCorruptMessageAndNoRetry() {
        ValueRewriter broken = value -> {
            throw new RecordRewriteException("not an envelope", null);
        };

        RecordRewriteException e = assertThrows(RecordRewriteException.class,
                () -> RecordBatchRewrites.rewrite(ONE_RECORD, broken));

        assertEquals(Errors.CORRUPT_MESSAGE, e.answer());
        assertEquals(null, e.retryWhen());
    }
}
