package io.meshcrypt.filter.records;

import static io.meshcrypt.filter.records.RecordBatches.build;
import static io.meshcrypt.filter.records.RecordBatches.decompressedRecords;
import static io.meshcrypt.filter.records.RecordBatches.headerWithoutLengthAndCrc;
import static io.meshcrypt.filter.records.RecordBatches.onlyBatch;
import static io.meshcrypt.filter.records.RecordBatches.transformed;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.meshcrypt.filter.records.RecordBatches.Entry;
import io.meshcrypt.filter.records.RecordBatches.Params;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.internal.CompressionType;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.MutableRecordBatch;
import org.apache.kafka.common.record.internal.SimpleRecord;

class RecordBatchRewriterPropertyTest {

    @Property(tries = 150)
    void givenRandomBatch_whenRewrittenThenInverted_thenOnlyValuesChangedAndOriginalRestored(
            @ForAll CompressionType codec,
            @ForAll("records") List<SimpleRecord> records,
            @ForAll boolean directValues,
            @ForAll long gapSeed) throws Exception {
        Params params = Params.plain(codec).idempotent(11L, (short) 2, 40, gapSeed % 2 == 0);
        List<Entry> entries = withOffsetGaps(records, new Random(gapSeed));
        MemoryRecords input = build(params, entries);
        ValueRewriter grow = directValues ? Transforms.GROW_DIRECT : Transforms.GROW;

        MemoryRecords rewritten = RecordBatchRewrites.rewrite(input, grow);
        MemoryRecords restored = RecordBatchRewrites.rewrite(rewritten, Transforms.SHRINK);

        MutableRecordBatch in = onlyBatch(input);
        MutableRecordBatch out = onlyBatch(rewritten);
        out.ensureValid();
        assertEquals(codec, out.compressionType());
        assertArrayEquals(headerWithoutLengthAndCrc(in), headerWithoutLengthAndCrc(out));
        assertArrayEquals(decompressedRecords(onlyBatch(build(params, transformed(entries, Transforms.GROW)))),
                decompressedRecords(out));
        RecordBatchRewriterTest.assertRecordsEqualExceptValues(in, out, Transforms.GROW);
        MutableRecordBatch back = onlyBatch(restored);
        back.ensureValid();
        assertArrayEquals(headerWithoutLengthAndCrc(in), headerWithoutLengthAndCrc(back));
        assertArrayEquals(decompressedRecords(in), decompressedRecords(back));
    }

    @Provide
    Arbitrary<List<SimpleRecord>> records() {
        Arbitrary<byte[]> bytes = Arbitraries.bytes().array(byte[].class).ofMaxSize(300);
        Arbitrary<byte[]> keys = Arbitraries.bytes().array(byte[].class).ofMaxSize(40);
        Arbitrary<Header> header = Combinators.combine(Arbitraries.strings().alpha().ofMaxLength(8),
                bytes.injectNull(0.3)).as(RecordHeader::new);
        return Combinators.combine(
                        Arbitraries.longs().between(1_600_000_000_000L, 1_800_000_000_000L),
                        keys.injectNull(0.3),
                        bytes.injectNull(0.25),
                        header.list().ofMaxSize(3))
                .as((timestamp, key, value, headers) ->
                        new SimpleRecord(timestamp, key, value, headers.toArray(Header[]::new)))
                .list().ofMinSize(1).ofMaxSize(25);
    }

    private static List<Entry> withOffsetGaps(List<SimpleRecord> records, Random random) {
        List<Entry> entries = new ArrayList<>();
        int delta = 0;
        for (SimpleRecord record : records) {
            entries.add(new Entry(delta, record));
            delta += 1 + random.nextInt(3);
        }
        return entries;
    }
}
