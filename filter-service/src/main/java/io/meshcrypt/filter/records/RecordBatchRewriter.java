package io.meshcrypt.filter.records;

import org.apache.kafka.common.record.internal.MemoryRecords;

/**
 * Rewrites record values inside v2 record batches in place: every batch header field is kept
 * (base offset, leader epoch, attributes incl. compression and transactional/control bits,
 * last offset delta, timestamps, producer id/epoch, base sequence, record count); only the records
 * section is re-encoded, with the same codec, and the CRC recomputed.
 */
public final class RecordBatchRewriter {
    private RecordBatchRewriter() {
    }

    /** Rewrites every non-null value of every data batch. Control batches and a truncated trailing batch are kept byte for byte. */
    public static MemoryRecords rewrite(MemoryRecords records, ValueRewriter rewriter) throws RecordRewriteException {
        throw new UnsupportedOperationException("being written");
    }
}
