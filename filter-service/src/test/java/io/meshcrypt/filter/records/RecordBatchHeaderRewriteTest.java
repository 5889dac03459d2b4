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
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.records.RecordBatchRewriter.TruncatedTail;
import io.meshcrypt.filter.records.RecordBatches.Entry;
import io.meshcrypt.filter.records.RecordBatches.Params;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.internal.CompressionType;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.MutableRecordBatch;
import org.apache.kafka.common.record.internal.Record;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The optional header rewriter: the chosen headers' values rewritten, every other byte of the batch kept. */
class RecordBatchHeaderRewriteTest {

    private static final ValueRewriter IDENTITY = value -> value;
    private static final Set<String> CHOSEN = Set.of("user-id", "x-pii-email");

    /** Chooses {@link #CHOSEN}; rewrites with {@link Transforms#GROW} after the name, so the output shows the binding. */
    static final class Grow implements HeaderRewriter {
        final AtomicInteger calls = new AtomicInteger();

        @Override
        public boolean rewrites(ByteBuffer name) {
            return CHOSEN.contains(StandardCharsets.UTF_8.decode(name.duplicate()).toString());
        }

        @Override
        public ByteBuffer rewrite(ByteBuffer name, ByteBuffer value) {
            calls.incrementAndGet();
            return ByteBuffer.wrap(grown(name, value));
        }
    }

    /** Inverse of {@link Grow}: fails when the value was grown under another name. */
    static final HeaderRewriter SHRINK = new HeaderRewriter() {
        @Override
        public boolean rewrites(ByteBuffer name) {
            return CHOSEN.contains(StandardCharsets.UTF_8.decode(name.duplicate()).toString());
        }

        @Override
        public ByteBuffer rewrite(ByteBuffer name, ByteBuffer value) throws RecordRewriteException {
            byte[] n = RecordBatches.toArray(name);
            for (int i = 0; i < n.length; i++) {
                if (value.remaining() <= n.length || value.get(value.position() + i) != n[i]) {
                    throw new RecordRewriteException("bound to another name", null);
                }
            }
            return Transforms.SHRINK.rewrite(value.duplicate().position(value.position() + n.length));
        }
    };

    private static byte[] grown(ByteBuffer name, ByteBuffer value) {
        byte[] n = RecordBatches.toArray(name);
        byte[] v = RecordBatches.toArray(apply(Transforms.GROW, value));
        byte[] out = new byte[n.length + v.length];
        System.arraycopy(n, 0, out, 0, n.length);
        System.arraycopy(v, 0, out, n.length, v.length);
        return out;
    }

    static Header[] headers(String userId) {
        return new Header[]{
                new RecordHeader("trace", "t-1".getBytes(StandardCharsets.UTF_8)),
                new RecordHeader("user-id", userId == null ? null : userId.getBytes(StandardCharsets.UTF_8)),
                new RecordHeader("x-pii-email", "a@example.com".getBytes(StandardCharsets.UTF_8)),
                new RecordHeader("user-id-extra", "not chosen: exact names only".getBytes(StandardCharsets.UTF_8)),
                new RecordHeader("x-pii-email", new byte[0])};
    }

    static List<SimpleRecord> records() {
        byte[] big = new byte[70]; // a 70-byte header value crosses the 1-byte varint limit once grown
        new Random(3).nextBytes(big);
        Header[] bigHeaders = {new RecordHeader("user-id", big)};
        return List.of(
                new SimpleRecord(1_700_000_000_000L, "k1".getBytes(), "v1".getBytes(), headers("u-1")),
                new SimpleRecord(1_700_000_000_001L, (byte[]) null, "v2".getBytes(), headers(null)),
                new SimpleRecord(1_700_000_000_002L, "k3".getBytes(), null, headers("u-3")),
                new SimpleRecord(1_700_000_000_003L, "k4".getBytes(), "v4".getBytes(), new Header[0]),
                new SimpleRecord(1_700_000_000_004L, (byte[]) null, null, bigHeaders));
    }

    /** The entries as a batch built with these headers already rewritten would hold them. */
    static List<Entry> expected(List<Entry> entries, ValueRewriter keys, ValueRewriter values) {
        List<Entry> out = new ArrayList<>();
        for (Entry e : entries) {
            SimpleRecord r = e.record();
            Header[] hs = new Header[r.headers().length];
            for (int i = 0; i < hs.length; i++) {
                Header h = r.headers()[i];
                boolean chosen = CHOSEN.contains(h.key()) && h.value() != null;
                hs[i] = chosen ? new RecordHeader(h.key(), grown(ByteBuffer.wrap(h.key().getBytes(StandardCharsets.UTF_8)),
                        ByteBuffer.wrap(h.value()))) : h;
            }
            ByteBuffer key = r.key() == null || keys == null ? r.key() : apply(keys, r.key());
            ByteBuffer value = r.value() == null ? null : apply(values, r.value());
            out.add(new Entry(e.offsetDelta(), new SimpleRecord(r.timestamp(), key, value, hs)));
        }
        return out;
    }

    private static MemoryRecords rewrite(MemoryRecords input, ValueRewriter values, ValueRewriter keys,
                                         HeaderRewriter headers, TruncatedTail tail) throws RecordRewriteException {
        return RecordBatchRewriter.rewrite(input, values, keys, headers, tail,
                new FrameBudget(TestLimits.CONFIG.maxDecompressedBytes(), Long.MAX_VALUE));
    }

    @Test
    void givenIdempotentUncompressedBatch_whenChosenHeadersRewritten_thenBytesEqualBatchBuiltWithThoseHeaders()
            throws Exception {
        Params params = Params.plain(CompressionType.NONE).idempotent(42L, (short) 3, 17, false);
        List<Entry> entries = contiguous(records());
        MemoryRecords input = build(params, entries);
        Grow grow = new Grow();

        MemoryRecords output = rewrite(input, IDENTITY, null, grow, TruncatedTail.REJECT);

        assertArrayEquals(bytes(build(params, expected(entries, null, IDENTITY))), bytes(output));
        onlyBatch(output).ensureValid();
        assertEquals(3 + 2 + 3 + 0 + 1, grow.calls.get(),
                "every chosen header with a value, empty ones included; the null user-id of the second record skipped");
    }

    @Test
    void givenChosenHeaders_whenRewritten_thenNullStaysNullAndOtherHeadersKeepTheirBytesAndOrder() throws Exception {
        MemoryRecords input = build(Params.plain(CompressionType.NONE), contiguous(records()));

        MutableRecordBatch out = onlyBatch(rewrite(input, IDENTITY, null, new Grow(), TruncatedTail.REJECT));

        List<Record> records = new ArrayList<>();
        out.forEach(records::add);
        Header[] second = records.get(1).headers();
        assertEquals("user-id", second[1].key());
        assertNull(second[1].value(), "a null header value stays null");
        assertArrayEquals("t-1".getBytes(), second[0].value());
        assertEquals("user-id-extra", second[3].key());
        assertArrayEquals("not chosen: exact names only".getBytes(), second[3].value());
        assertEquals(List.of("trace", "user-id", "x-pii-email", "user-id-extra", "x-pii-email"),
                java.util.Arrays.stream(second).map(Header::key).toList());
        assertFalse(java.util.Arrays.equals("a@example.com".getBytes(), second[2].value()), "the chosen header changed");
        assertNull(records.get(2).value(), "a null value stays null beside rewritten headers");
    }

    @ParameterizedTest
    @EnumSource(CompressionType.class)
    void givenBatchWithCodec_whenKeysValuesAndHeadersRewritten_thenBatchHeaderKeptAndRecordsEqualExpected(
            CompressionType codec) throws Exception {
        Params params = Params.plain(codec).idempotent(7L, (short) 1, 100, true);
        List<Entry> entries = contiguous(records());
        MemoryRecords input = build(params, entries);

        MutableRecordBatch out = onlyBatch(rewrite(input, Transforms.GROW, Transforms.GROW, new Grow(),
                TruncatedTail.REJECT));

        out.ensureValid();
        assertEquals(codec, out.compressionType());
        assertArrayEquals(headerWithoutLengthAndCrc(onlyBatch(input)), headerWithoutLengthAndCrc(out));
        MutableRecordBatch expected = onlyBatch(build(params, expected(entries, Transforms.GROW, Transforms.GROW)));
        assertArrayEquals(decompressedRecords(expected), decompressedRecords(out));
    }

    @Test
    void givenNoChosenHeader_whenRewrittenWithHeaderRewriter_thenBytesEqualTheValueOnlyRewrite() throws Exception {
        List<Entry> entries = contiguous(List.of(
                new SimpleRecord(1L, "k".getBytes(), "v".getBytes(), new Header[]{new RecordHeader("trace", "t".getBytes())}),
                new SimpleRecord(2L, (byte[]) null, "w".getBytes(), new Header[0])));
        MemoryRecords input = build(Params.plain(CompressionType.NONE), entries);
        Grow grow = new Grow();

        MemoryRecords withHeaders = rewrite(input, Transforms.GROW, null, grow, TruncatedTail.REJECT);

        assertArrayEquals(bytes(RecordBatchRewrites.rewrite(input, Transforms.GROW)), bytes(withHeaders));
        assertEquals(0, grow.calls.get());
    }

    @Test
    void givenOnlyNullValuesAndNoChosenHeader_whenRewritten_thenInputReturnedItself() throws Exception {
        MemoryRecords input = build(Params.plain(CompressionType.GZIP), contiguous(List.of(
                new SimpleRecord(1L, (byte[]) null, null, new Header[]{new RecordHeader("trace", "t".getBytes())}),
                new SimpleRecord(2L, (byte[]) null, null, new Header[]{new RecordHeader("user-id", null)}))));

        assertSame(input, rewrite(input, IDENTITY, null, new Grow(), TruncatedTail.REJECT));
    }

    @ParameterizedTest
    @EnumSource(CompressionType.class)
    void givenRewrittenHeaders_whenInverseApplied_thenOriginalRecordsRestored(CompressionType codec) throws Exception {
        MemoryRecords input = build(Params.plain(codec), contiguous(records()));

        MemoryRecords forth = rewrite(input, Transforms.GROW, null, new Grow(), TruncatedTail.REJECT);
        MemoryRecords back = rewrite(forth, Transforms.SHRINK, null, SHRINK, TruncatedTail.PASS_THROUGH);

        assertArrayEquals(decompressedRecords(onlyBatch(input)), decompressedRecords(onlyBatch(back)));
        if (codec == CompressionType.NONE) {
            assertArrayEquals(bytes(input), bytes(back));
        }
    }

    @Test
    void givenCompressedThenUncompressedBatchInOneFetch_whenHeadersRewritten_thenEachBatchReadsItsOwnHeaders()
            throws Exception {
        List<Entry> entries = contiguous(records());
        Params gzip = Params.plain(CompressionType.GZIP);
        Params none = Params.plain(CompressionType.NONE);
        MemoryRecords input = RecordBatches.concat(bytes(build(gzip, entries)), bytes(build(none, entries)),
                bytes(build(gzip, entries)));

        List<MutableRecordBatch> out = RecordBatches.batches(rewrite(input, IDENTITY, null, new Grow(),
                TruncatedTail.PASS_THROUGH));

        assertEquals(3, out.size());
        for (int i = 0; i < 3; i++) {
            out.get(i).ensureValid();
            Params params = i == 1 ? none : gzip;
            assertArrayEquals(decompressedRecords(onlyBatch(build(params, expected(entries, null, IDENTITY)))),
                    decompressedRecords(out.get(i)), "batch " + i);
        }
    }

    @Test
    void givenHeaderRewriterFails_whenRewritten_thenExceptionNamesTheHeaderAndRecordOffset() {
        MemoryRecords input = build(Params.plain(CompressionType.LZ4), contiguous(records()));
        HeaderRewriter failing = new HeaderRewriter() {
            @Override
            public boolean rewrites(ByteBuffer name) {
                return new Grow().rewrites(name);
            }

            @Override
            public ByteBuffer rewrite(ByteBuffer name, ByteBuffer value) throws RecordRewriteException {
                if (StandardCharsets.UTF_8.decode(value.duplicate()).toString().equals("u-3")) {
                    throw new RecordRewriteException("tampered", null);
                }
                return value;
            }
        };

        RecordRewriteException e = assertThrows(RecordRewriteException.class,
                () -> rewrite(input, IDENTITY, null, failing, TruncatedTail.PASS_THROUGH));

        assertEquals(1002L, e.offset());
        assertTrue(e.getMessage().startsWith("Header 2 of 5 of record at offset 1002 could not be rewritten: tampered"),
                e.getMessage());
    }

    @Test
    void givenRecordWithHugeNumberOfChosenHeaders_whenOutputBudgetIsSmall_thenBudgetExceededInsteadOfGrowing() {
        Header[] many = new Header[100_000];
        for (int i = 0; i < many.length; i++) {
            many[i] = new RecordHeader("user-id", new byte[]{(byte) i});
        }
        MemoryRecords input = build(Params.plain(CompressionType.NONE),
                contiguous(List.of(new SimpleRecord(1L, (byte[]) null, "v".getBytes(), many))));
        // Each header grows by over 100 bytes: 100,000 of them need ~10 MB, the frame allows 4 MiB of output.
        FrameBudget budget = new FrameBudget(TestLimits.CONFIG.maxDecompressedBytes(), 4L << 20);

        FrameBudgetExceededException e = assertThrows(FrameBudgetExceededException.class,
                () -> RecordBatchRewriter.rewrite(input, IDENTITY, null, new Grow(), TruncatedTail.REJECT, budget));

        assertTrue(e.getMessage().contains("output limit"), e.getMessage());
    }

    @Test
    void givenRecordWithHugeNumberOfHeadersNoneChosen_whenRewritten_thenHeadersPassByteForByte() throws Exception {
        Header[] many = new Header[100_000];
        for (int i = 0; i < many.length; i++) {
            many[i] = new RecordHeader("trace", null);
        }
        List<Entry> entries = contiguous(List.of(new SimpleRecord(1L, (byte[]) null, "v".getBytes(), many)));
        Params params = Params.plain(CompressionType.NONE);
        MemoryRecords input = build(params, entries);

        MemoryRecords out = rewrite(input, Transforms.GROW, null, new Grow(), TruncatedTail.REJECT);

        assertArrayEquals(bytes(build(params, RecordBatches.transformed(entries, Transforms.GROW))), bytes(out));
    }

    @Property(tries = 100)
    void givenRandomHeaders_whenRewrittenThenInverted_thenOriginalRestoredAndOnlyChosenValuesChanged(
            @ForAll CompressionType codec, @ForAll("headerLists") List<List<Header>> perRecord) throws Exception {
        List<SimpleRecord> records = new ArrayList<>();
        for (int i = 0; i < perRecord.size(); i++) {
            records.add(new SimpleRecord(1_000L + i, i % 3 == 0 ? null : ("k" + i).getBytes(),
                    i % 4 == 0 ? null : ("v" + i).getBytes(), perRecord.get(i).toArray(Header[]::new)));
        }
        Params params = Params.plain(codec).idempotent(5L, (short) 0, 3, false);
        List<Entry> entries = contiguous(records);
        MemoryRecords input = build(params, entries);

        MemoryRecords forth = rewrite(input, IDENTITY, null, new Grow(), TruncatedTail.REJECT);
        MemoryRecords back = rewrite(forth, IDENTITY, null, SHRINK, TruncatedTail.PASS_THROUGH);

        MutableRecordBatch out = onlyBatch(forth);
        out.ensureValid();
        assertArrayEquals(headerWithoutLengthAndCrc(onlyBatch(input)), headerWithoutLengthAndCrc(out));
        assertArrayEquals(decompressedRecords(onlyBatch(build(params, expected(entries, null, IDENTITY)))),
                decompressedRecords(out));
        assertArrayEquals(decompressedRecords(onlyBatch(input)), decompressedRecords(onlyBatch(back)));
    }

    @Provide
    Arbitrary<List<List<Header>>> headerLists() {
        Arbitrary<String> names = Arbitraries.of("user-id", "x-pii-email", "trace", "user-ids", "x-pii", "é-ü");
        Arbitrary<byte[]> values = Arbitraries.bytes().array(byte[].class).ofMaxSize(200).injectNull(0.2);
        Arbitrary<Header> header = names.flatMap(n -> values.map(v -> new RecordHeader(n, v)));
        return header.list().ofMaxSize(8).list().ofMinSize(1).ofMaxSize(12);
    }
}
