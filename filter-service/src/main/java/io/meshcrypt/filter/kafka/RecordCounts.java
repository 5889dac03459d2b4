package io.meshcrypt.filter.kafka;

import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.MutableRecordBatch;

/** How many records a partition's batches hold, from their headers only (for the audit trail, never per record). */
final class RecordCounts {
    private RecordCounts() {
    }

    /** @return the records the batches of {@code records} declare; batches of the old formats, which do not, count 0 */
    static int of(MemoryRecords records) {
        long count = 0;
        for (MutableRecordBatch batch : records.batches()) {
            Integer n = batch.countOrNull();
            if (n != null && n > 0) {
                count += n;
            }
        }
        return (int) Math.min(Integer.MAX_VALUE, count);
    }
}
