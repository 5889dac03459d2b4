package io.meshcrypt.filter.records;

import io.meshcrypt.filter.TestLimits;
import org.apache.kafka.common.record.internal.MemoryRecords;

/** {@link RecordBatchRewriter#rewrite} bounded by the config's default {@code maxDecompressedBytes}, for tests. */
public final class RecordBatchRewrites {

    private RecordBatchRewrites() {
    }

    /** Values only; control batches and a truncated trailing batch kept byte for byte. */
    public static MemoryRecords rewrite(MemoryRecords records, ValueRewriter rewriter) throws RecordRewriteException {
        return rewrite(records, rewriter, null, RecordBatchRewriter.TruncatedTail.PASS_THROUGH);
    }

    /** Values only. */
    public static MemoryRecords rewrite(MemoryRecords records, ValueRewriter rewriter,
                                        RecordBatchRewriter.TruncatedTail truncatedTail) throws RecordRewriteException {
        return rewrite(records, rewriter, null, truncatedTail);
    }

    /** Values, and keys too with a {@code keyRewriter}. */
    public static MemoryRecords rewrite(MemoryRecords records, ValueRewriter rewriter, ValueRewriter keyRewriter,
                                        RecordBatchRewriter.TruncatedTail truncatedTail) throws RecordRewriteException {
        return RecordBatchRewriter.rewrite(records, rewriter, keyRewriter, truncatedTail,
                TestLimits.CONFIG.maxDecompressedBytes());
    }
}
