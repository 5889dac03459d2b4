package io.meshcrypt.filter.records;

import static io.meshcrypt.filter.records.RecordBatches.apply;
import static io.meshcrypt.filter.records.RecordBatches.build;
import static io.meshcrypt.filter.records.RecordBatches.bytes;
import static io.meshcrypt.filter.records.RecordBatches.contiguous;
import static io.meshcrypt.filter.records.RecordBatches.decompressedRecords;
import static io.meshcrypt.filter.records.RecordBatches.headerWithoutLengthAndCrc;
import static io.meshcrypt.filter.records.RecordBatches.onlyBatch;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.records.RecordBatchRewriter.TruncatedTail;
import io.meshcrypt.filter.records.RecordBatches.Entry;
import io.meshcrypt.filter.records.RecordBatches.Params;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.apache.kafka.common.record.internal.CompressionType;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.MutableRecordBatch;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The optional key rewriter: keys rewritten alongside values, every other byte kept. */
class RecordBatchKeyRewriteTest {

    private static final ValueRewriter IDENTITY = value -> value;

    @Test
    void givenUncompressedIdempotentBatch_whenKeysAndValuesRewritten_thenBytesEqualBatchBuiltWithBoth() throws Exception {
        Params params = Params.plain(CompressionType.NONE).idempotent(42L, (short) 3, 17, false);
        List<Entry> entries = contiguous(RecordBatchRewriterTest.sampleRecords());
        MemoryRecords input = build(params, entries);

        MemoryRecords output = RecordBatchRewrites.rewrite(input, Transforms.GROW, Transforms.GROW,
                TruncatedTail.REJECT);

        assertArrayEquals(bytes(build(params, transformed(entries, Transforms.GROW, Transforms.GROW))), bytes(output));
        onlyBatch(output).ensureValid();
    }

    @ParameterizedTest
    @EnumSource(CompressionType.class)
    void givenBatchWithCodec_whenOnlyKeysRewritten_thenHeaderKeptAndRecordsEqualExpected(CompressionType codec)
            throws Exception {
        Params params = Params.plain(codec).idempotent(7L, (short) 1, 100, true);
        List<Entry> entries = contiguous(RecordBatchRewriterTest.sampleRecords());
        MemoryRecords input = build(params, entries);

        MutableRecordBatch out = onlyBatch(RecordBatchRewrites.rewrite(input, IDENTITY, Transforms.GROW,
                TruncatedTail.REJECT));

        out.ensureValid();
        assertEquals(codec, out.compressionType());
        assertArrayEquals(headerWithoutLengthAndCrc(onlyBatch(input)), headerWithoutLengthAndCrc(out));
        MutableRecordBatch expected = onlyBatch(build(params, transformed(entries, Transforms.GROW, IDENTITY)));
        assertArrayEquals(decompressedRecords(expected), decompressedRecords(out));
    }

    @ParameterizedTest
    @EnumSource(CompressionType.class)
    void givenKeysAndValuesRewritten_whenInversesApplied_thenOriginalRecordsRestored(CompressionType codec)
            throws Exception {
        MemoryRecords input = build(Params.plain(codec), contiguous(RecordBatchRewriterTest.sampleRecords()));

        MemoryRecords forth = RecordBatchRewrites.rewrite(input, Transforms.GROW, Transforms.GROW, TruncatedTail.REJECT);
        MemoryRecords back = RecordBatchRewrites.rewrite(forth, Transforms.SHRINK, Transforms.SHRINK,
                TruncatedTail.PASS_THROUGH);

        assertArrayEquals(decompressedRecords(onlyBatch(input)), decompressedRecords(onlyBatch(back)));
        if (codec == CompressionType.NONE) {
            assertArrayEquals(bytes(input), bytes(back));
        }
    }

    @Test
    void givenKeyRewriterReturnsItsInputView_whenValuesGrow_thenKeysAreNotOverwrittenByValues() throws Exception {
        Params params = Params.plain(CompressionType.NONE);
        List<Entry> entries = contiguous(RecordBatchRewriterTest.sampleRecords());
        MemoryRecords input = build(params, entries);

        MemoryRecords output = RecordBatchRewrites.rewrite(input, Transforms.GROW, IDENTITY, TruncatedTail.REJECT);

        assertArrayEquals(bytes(build(params, transformed(entries, IDENTITY, Transforms.GROW))), bytes(output));
    }

    @Test
    void givenOnlyNullKeysAndValues_whenRewrittenWithKeyRewriter_thenInputReturnedItself() throws Exception {
        MemoryRecords input = build(Params.plain(CompressionType.GZIP), contiguous(List.of(
                new SimpleRecord(1L, (byte[]) null, null), new SimpleRecord(2L, (byte[]) null, null))));
        ValueRewriter mustNotBeCalled = value -> {
            throw new AssertionError("no non-null key or value to rewrite");
        };

        assertSame(input, RecordBatchRewrites.rewrite(input, mustNotBeCalled, mustNotBeCalled, TruncatedTail.REJECT));
    }

    @Test
    void givenKeyRewriterFails_whenRewritten_thenExceptionNamesTheKeyAndRecordOffset() {
        MemoryRecords input = build(Params.plain(CompressionType.LZ4), contiguous(RecordBatchRewriterTest.sampleRecords()));
        ValueRewriter failsOnK2 = key -> {
            if (key.remaining() == 2 && key.get(key.position() + 1) == '2') {
                throw new RecordRewriteException("tampered", null);
            }
            return key;
        };

        RecordRewriteException e = assertThrows(RecordRewriteException.class,
                () -> RecordBatchRewrites.rewrite(input, IDENTITY, failsOnK2, TruncatedTail.PASS_THROUGH));

        assertEquals(1002L, e.offset());
        assertTrue(e.getMessage().startsWith("Key of record at offset 1002"), e.getMessage());
    }

    /** The same entries with every non-null key passed through {@code keys} and every non-null value through {@code values}. */
    private static List<Entry> transformed(List<Entry> entries, ValueRewriter keys, ValueRewriter values) {
        List<Entry> out = new ArrayList<>();
        for (Entry e : entries) {
            SimpleRecord r = e.record();
            ByteBuffer key = r.key() == null ? null : apply(keys, r.key());
            ByteBuffer value = r.value() == null ? null : apply(values, r.value());
            out.add(new Entry(e.offsetDelta(), new SimpleRecord(r.timestamp(), key, value, r.headers())));
        }
        return out;
    }
}
