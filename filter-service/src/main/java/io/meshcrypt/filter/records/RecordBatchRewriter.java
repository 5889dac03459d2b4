package io.meshcrypt.filter.records;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Objects;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.record.internal.CompressionType;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.utils.internals.BufferSupplier;
import org.apache.kafka.common.utils.internals.ByteBufferOutputStream;
import org.apache.kafka.common.utils.internals.ByteUtils;
import org.apache.kafka.common.utils.internals.Crc32C;

/**
 * Rewrites record values inside v2 record batches in place: every batch header field is kept
 * (base offset, leader epoch, attributes incl. compression and transactional/control bits,
 * last offset delta, timestamps, producer id/epoch, base sequence, record count); only the records
 * section is re-encoded, with the same codec, and the CRC recomputed.
 *
 * <p>Records are parsed here rather than through Kafka's builders because those renumber offsets and
 * recompute timestamps: attributes, timestamp and offset deltas, keys and raw header bytes are copied
 * verbatim, so LogAppendTime batches and compacted batches with offset gaps survive unchanged.
 * Input CRCs are verified before rewriting so that a corrupt batch is rejected instead of being
 * re-signed with a fresh, valid CRC.
 */
public final class RecordBatchRewriter {

    /** What to do with a trailing batch shorter than its length field says. */
    public enum TruncatedTail {
        /** Append it untouched: Fetch responses may legitimately end with a partial batch. */
        PASS_THROUGH,
        /**
         * Fail: a Produce request never carries a partial batch, and passing it on would leak plaintext. Also marks the
         * input as one partition of a Produce request, which the broker accepts (ProduceRequest.validateRecords,
         * LogValidator) only as exactly one data batch: a second batch or a control batch fails the rewrite instead of
         * reaching the broker unrewritten (and each extra batch would be one more decompression).
         */
        REJECT
    }

    private static final byte MAGIC_V2 = 2;
    private static final int LENGTH_OFFSET = 8;
    private static final int LOG_OVERHEAD = 12;
    private static final int MAGIC_OFFSET = 16;
    private static final int HEADER_SIZE_UP_TO_MAGIC = MAGIC_OFFSET + 1;
    private static final int CRC_OFFSET = 17;
    private static final int ATTRIBUTES_OFFSET = 21;
    private static final int RECORDS_COUNT_OFFSET = 57;
    private static final int RECORD_BATCH_OVERHEAD = 61;
    private static final int COMPRESSION_CODEC_MASK = 0x07;
    private static final int CONTROL_FLAG_MASK = 0x20;
    private static final int MAX_ARRAY_SIZE = Integer.MAX_VALUE - 8;
    private static final int COPY_CHUNK = 8 * 1024;
    /**
     * The largest output and decompression arrays a thread keeps for its next call (see {@link Scratch}): typical
     * batches reuse them, and a rare huge frame's are left to the garbage collector instead of held per thread.
     */
    static final int RETAINED_SCRATCH_BYTES = 1024 * 1024;
    private static final ThreadLocal<Scratch> SCRATCH = new ThreadLocal<>();

    /** Stateless codecs indexed by compression id; recompression uses the codec's default level. */
    private static final Compression[] CODECS = new Compression[CompressionType.values().length];

    static {
        for (CompressionType type : CompressionType.values()) {
            CODECS[type.id] = Compression.of(type).build();
        }
    }

    private RecordBatchRewriter() {
    }

    /** As {@link #rewrite(MemoryRecords, ValueRewriter, ValueRewriter, TruncatedTail, FrameBudget)} with a budget of its own. */
    public static MemoryRecords rewrite(MemoryRecords records, ValueRewriter rewriter, ValueRewriter keyRewriter,
                                        TruncatedTail truncatedTail, int maxDecompressedBytes)
            throws RecordRewriteException {
        if (maxDecompressedBytes <= 0 || maxDecompressedBytes > MAX_ARRAY_SIZE) {
            throw new IllegalArgumentException("maxDecompressedBytes must be 1.." + MAX_ARRAY_SIZE + ", got "
                    + maxDecompressedBytes);
        }
        return rewrite(records, rewriter, keyRewriter, truncatedTail, FrameBudget.forOneCall(maxDecompressedBytes));
    }

    /**
     * Rewrites every non-null value, and with a {@code keyRewriter} every non-null key, of every data batch. Control
     * batches (fetch side) and header-only empty batches are kept byte for byte, and so is any batch whose values (and,
     * with a key rewriter, keys) are all null. Returns {@code records} itself when nothing changed. Inside a scope of the
     * thread's {@link OutputArena} the result may live there: valid until the response carrying it was sent.
     *
     * @param keyRewriter null to copy keys verbatim (the value-only path)
     * @param budget the frame's budget, shared by every call for the same frame: decompression draws on it (the
     *     scratch buffer never grows past what is left) and so does the rewritten output (its capacity)
     * @throws FrameBudgetExceededException when the batches decompress to, or rewrite into, more than is left
     * @throws RecordRewriteException on a legacy (magic &lt; 2) or unknown-magic batch, a corrupt batch or record,
     *     a CRC mismatch, a batch of no records that carries record bytes, a truncated trailing batch, a second batch
     *     or a control batch under {@link TruncatedTail#REJECT}, a zstd frame whose declared window exceeds the
     *     budget's limit, or when a rewriter fails
     */
    public static MemoryRecords rewrite(MemoryRecords records, ValueRewriter rewriter, ValueRewriter keyRewriter,
                                        TruncatedTail truncatedTail, FrameBudget budget)
            throws RecordRewriteException {
        return rewrite(records, rewriter, keyRewriter, null, truncatedTail, budget);
    }

    /**
     * As {@link #rewrite(MemoryRecords, ValueRewriter, ValueRewriter, TruncatedTail, FrameBudget)}, also rewriting the
     * non-null values of the headers {@code headerRewriter} chooses by name. A record none of whose headers is chosen
     * keeps its header bytes verbatim; in a record with chosen headers the others are copied byte for byte, in order.
     * Header names are looked at only when a header rewriter is given.
     *
     * @param headerRewriter null to copy every header verbatim
     * @throws FrameBudgetExceededException also when a record's rewritten headers need more than is left of the output
     */
    public static MemoryRecords rewrite(MemoryRecords records, ValueRewriter rewriter, ValueRewriter keyRewriter,
                                        HeaderRewriter headerRewriter, TruncatedTail truncatedTail, FrameBudget budget)
            throws RecordRewriteException {
        Objects.requireNonNull(records, "records");
        Objects.requireNonNull(rewriter, "rewriter");
        Objects.requireNonNull(truncatedTail, "truncatedTail");
        Objects.requireNonNull(budget, "budget");
        ByteBuffer in = arrayBacked(records.buffer().slice());
        if (!in.hasRemaining()) {
            return records;
        }
        Job job = new Job(in, rewriter, keyRewriter, headerRewriter, budget, truncatedTail, false);
        try {
            ByteBuffer out = job.run();
            return out == null ? records : MemoryRecords.readableRecords(out);
        } catch (OverBudget e) {
            throw e.exception;
        } finally {
            job.close();
        }
    }

    /**
     * Shows every non-null value of every data batch to {@code inspector} without rewriting anything: the batch checks
     * of {@link #rewrite(MemoryRecords, ValueRewriter, ValueRewriter, TruncatedTail, FrameBudget)} apply (CRC, record
     * layout, and under {@link TruncatedTail#REJECT} the Produce rules), compressed batches are decompressed within
     * {@code budget}, nothing is recompressed and no output is produced. The inspector's return value is ignored; it
     * fails the call by throwing.
     */
    public static void inspect(MemoryRecords records, ValueRewriter inspector, TruncatedTail truncatedTail,
                               FrameBudget budget) throws RecordRewriteException {
        inspect(records, inspector, null, truncatedTail, budget);
    }

    /** As {@link #inspect(MemoryRecords, ValueRewriter, TruncatedTail, FrameBudget)}, also showing every non-null key to {@code keyInspector} (when not null). */
    public static void inspect(MemoryRecords records, ValueRewriter inspector, ValueRewriter keyInspector,
                               TruncatedTail truncatedTail, FrameBudget budget) throws RecordRewriteException {
        inspect(records, inspector, keyInspector, null, truncatedTail, budget);
    }

    /**
     * As {@link #inspect(MemoryRecords, ValueRewriter, ValueRewriter, TruncatedTail, FrameBudget)}, also showing the
     * non-null values of the headers {@code headerInspector} chooses by name (when not null).
     */
    public static void inspect(MemoryRecords records, ValueRewriter inspector, ValueRewriter keyInspector,
                               HeaderRewriter headerInspector, TruncatedTail truncatedTail, FrameBudget budget)
            throws RecordRewriteException {
        Objects.requireNonNull(records, "records");
        Objects.requireNonNull(inspector, "inspector");
        Objects.requireNonNull(truncatedTail, "truncatedTail");
        Objects.requireNonNull(budget, "budget");
        ByteBuffer in = arrayBacked(records.buffer().slice());
        if (!in.hasRemaining()) {
            return;
        }
        Job job = new Job(in, inspector, keyInspector, headerInspector, budget, truncatedTail, true);
        try {
            job.run();
        } catch (OverBudget e) {
            throw e.exception;
        } finally {
            job.close();
        }
    }

    /**
     * {@code in} itself when it is array-backed (frames from the transport are), else a heap copy: Kafka's CRC32C goes
     * byte by byte on a read-only view, and the cipher would copy each value out of one.
     */
    private static ByteBuffer arrayBacked(ByteBuffer in) {
        if (in.hasArray()) {
            return in;
        }
        ByteBuffer copy = ByteBuffer.allocate(in.remaining());
        copy.put(in.duplicate());
        return copy.flip();
    }

    /** The error of a batch that needs more than is left of the frame's decompression budget. */
    static FrameBudgetExceededException overBudget(long baseOffset, int remaining, int frameMax) {
        String limit = remaining >= frameMax ? "maxDecompressedBytes=" + frameMax + " bytes"
                : "the " + remaining + " bytes left of maxDecompressedBytes=" + frameMax + " for this frame";
        return new FrameBudgetExceededException("Batch at base offset " + baseOffset + " decompresses to more than "
                + limit, baseOffset);
    }

    /**
     * What a thread reuses from call to call: the array the output is written into when the thread's
     * {@link OutputArena} lends no room (outside a stream's task; the result is then copied out of it exactly sized,
     * so a call allocates the bytes it returns and not a guess at them, which for decryption was a quarter more than the
     * input) and the decompression array. Taken by a call and given back by {@link Job#close},
     * so a nested call on the same thread (none today) would get a fresh one. At most {@link #RETAINED_SCRATCH_BYTES}
     * of each per thread; the rewrites run on the gRPC event loops, one per core.
     */
    private static final class Scratch {
        ByteBuffer output;
        byte[] decompressed;

        /** Takes the thread's scratch for one call. */
        static Scratch take() {
            Scratch scratch = SCRATCH.get();
            if (scratch == null) {
                return new Scratch();
            }
            SCRATCH.set(null);
            return scratch;
        }

        /** Gives it back, without any array larger than {@link #RETAINED_SCRATCH_BYTES}. */
        void giveBack() {
            if (output != null && output.capacity() > RETAINED_SCRATCH_BYTES) {
                output = null;
            }
            if (decompressed != null && decompressed.length > RETAINED_SCRATCH_BYTES) {
                decompressed = null;
            }
            SCRATCH.set(this);
        }
    }

    /** Per-call state: the output stream, the parse cursor and scratch buffers shared by all batches of the call. */
    private static final class Job {
        private final ByteBuffer in;
        private final ByteBuffer inValues;
        private final ValueRewriter rewriter;
        private final FrameBudget budget;
        /** A Produce partition: exactly one data batch (see {@link TruncatedTail#REJECT}). */
        private final TruncatedTail truncatedTail;
        /** Values are shown to the rewriter but nothing is written: {@link #inspect}. */
        private final boolean inspectOnly;
        /** Null on the value-only path. */
        private final ValueRewriter keyRewriter;
        /** A second view, because a rewritten key may be that view and must survive the value's rewrite. */
        private final ByteBuffer inKeys;
        /** Null when headers are copied verbatim. */
        private final HeaderRewriter headerRewriter;
        /** Views of the records section being parsed for header names and values; null without a header rewriter. */
        private ByteBuffer headerNames;
        private ByteBuffer headerValues;
        /** What {@link #headerNames} and {@link #headerValues} view: the input, or one batch's decompressed bytes. */
        private ByteBuffer headerSource;
        /** The rewritten headers section of one record, reused for every record of the call. */
        private byte[] headerScratch;
        private int headerScratchLength;
        private final byte[] varint = new byte[10];
        private ByteBufferOutputStream out;
        /**
         * Where {@link #out} started when the thread's {@link OutputArena} lent it room; null when it did not. Once the
         * output outgrows it, it continues in an array of its own and is copied out exactly sized, as without one.
         */
        private ByteBuffer arenaRegion;
        private byte[] chunk;
        private final Scratch scratch = Scratch.take();
        private byte[] decompressed = scratch.decompressed;
        private BufferSupplier bufferSupplier;
        /** Start of the run of input bytes that pass through unchanged and are not yet copied to {@link #out}. */
        private int pendingFrom;
        /** Parse cursor within the current records section. */
        private int pos;
        private boolean changed;
        /** The value rewriter when it reads keys and headers too, else null. */
        private final RecordAwareValueRewriter recordAware;
        /** With {@link #recordAware}: views of the current records section and the current record's positions. */
        private ByteBuffer awareKey;
        private ByteBuffer awareHeaders;
        private int awareKeyStart;
        private int awareKeyLength;
        private int awareHeadersStart;
        private int awareBodyEnd;

        Job(ByteBuffer in, ValueRewriter rewriter, ValueRewriter keyRewriter, HeaderRewriter headerRewriter,
            FrameBudget budget, TruncatedTail truncatedTail, boolean inspectOnly) {
            this.headerRewriter = headerRewriter;
            this.in = in;
            this.budget = budget;
            this.truncatedTail = truncatedTail;
            this.inspectOnly = inspectOnly;
            // Values are handed out through one reusable view: no allocation per record. Not a read-only view: the
            // cipher would copy every value out of it first (it needs the array); rewriters only read (ValueRewriter).
            this.inValues = in.duplicate();
            this.rewriter = rewriter;
            this.keyRewriter = keyRewriter;
            this.inKeys = keyRewriter == null ? null : in.duplicate();
            this.recordAware = rewriter instanceof RecordAwareValueRewriter aware ? aware : null;
        }

        /** Returns the rewritten bytes ready to read, or null when every input byte passes through unchanged. */
        ByteBuffer run() throws RecordRewriteException {
            int limit = in.limit();
            int p = 0;
            boolean produce = truncatedTail == TruncatedTail.REJECT;
            while (p < limit) {
                if (produce && p > 0) {
                    throw new RecordRewriteException("Produce partition carries more than one record batch (the broker"
                            + " accepts exactly one per partition since Produce v3)", null);
                }
                int remaining = limit - p;
                if (remaining < HEADER_SIZE_UP_TO_MAGIC) {
                    truncated(remaining, truncatedTail);
                    break;
                }
                long baseOffset = in.getLong(p);
                int bodyLength = in.getInt(p + LENGTH_OFFSET);
                if (bodyLength < 0 || bodyLength > MAX_ARRAY_SIZE - LOG_OVERHEAD) {
                    throw new RecordRewriteException("Corrupt batch at base offset " + baseOffset
                            + ": invalid length " + bodyLength, baseOffset, null);
                }
                int size = bodyLength + LOG_OVERHEAD;
                if (size > remaining) {
                    truncated(remaining, truncatedTail);
                    break;
                }
                byte magic = in.get(p + MAGIC_OFFSET);
                if (magic != MAGIC_V2) {
                    throw new RecordRewriteException("Batch at base offset " + baseOffset + " has magic " + magic
                            + "; only v2 record batches can be rewritten", baseOffset, null);
                }
                if (size < RECORD_BATCH_OVERHEAD) {
                    throw new RecordRewriteException("Corrupt batch at base offset " + baseOffset + ": size " + size
                            + " is smaller than the v2 batch header", baseOffset, null);
                }
                rewriteBatch(p, size, baseOffset);
                p += size;
            }
            if (!changed) {
                return null;
            }
            flushPending(limit);
            ByteBuffer written = out.buffer();
            int length = written.position();
            checkOutput(length);
            budget.chargeOutput(length);
            if (written == arenaRegion) {
                // Written where it stays until its response is sent: no copy, no allocation.
                return OutputArena.commit(arenaRegion, length);
            }
            return ByteBuffer.wrap(Arrays.copyOf(written.array(), length));
        }

        private static void truncated(int remaining, TruncatedTail policy) throws RecordRewriteException {
            if (policy == TruncatedTail.REJECT) {
                throw new RecordRewriteException("Truncated record batch: " + remaining
                        + " trailing bytes do not form a complete batch", null);
            }
            // Left in the pending run: copied untouched at the end.
        }

        private void rewriteBatch(int start, int size, long baseOffset) throws RecordRewriteException {
            short attributes = in.getShort(start + ATTRIBUTES_OFFSET);
            int count = in.getInt(start + RECORDS_COUNT_OFFSET);
            boolean control = (attributes & CONTROL_FLAG_MASK) != 0;
            if (control && truncatedTail == TruncatedTail.REJECT) {
                // Only the broker writes control batches (it refuses them from clients, but only after reading them).
                throw new RecordRewriteException("Produce carries a control batch at base offset " + baseOffset
                        + "; only brokers write control batches", baseOffset, null);
            }
            if (count == 0) {
                // The only legitimate empty batch is the bare header compaction keeps for producer state; record bytes
                // behind a count of 0 would pass unrewritten (plaintext to the broker, ciphertext to a consumer).
                if (size != RECORD_BATCH_OVERHEAD) {
                    throw new RecordRewriteException("Corrupt batch at base offset " + baseOffset + ": record count 0"
                            + " but " + (size - RECORD_BATCH_OVERHEAD) + " bytes of records", baseOffset, null);
                }
                return;
            }
            if (control) {
                return;
            }
            if (count < 0) {
                throw new RecordRewriteException("Corrupt batch at base offset " + baseOffset
                        + ": negative record count " + count, baseOffset, null);
            }
            long storedCrc = Integer.toUnsignedLong(in.getInt(start + CRC_OFFSET));
            long actualCrc = Crc32C.compute(in, start + ATTRIBUTES_OFFSET, size - ATTRIBUTES_OFFSET);
            if (storedCrc != actualCrc) {
                throw new RecordRewriteException("Corrupt batch at base offset " + baseOffset + ": CRC " + storedCrc
                        + " does not match computed " + actualCrc, baseOffset, null);
            }
            int codecId = attributes & COMPRESSION_CODEC_MASK;
            if (codecId >= CODECS.length) {
                throw new RecordRewriteException("Batch at base offset " + baseOffset
                        + " uses unknown compression codec id " + codecId, baseOffset, null);
            }
            Compression codec = CODECS[codecId];

            if (inspectOnly) {
                inspectBatch(codec, start, size, count, baseOffset);
                return;
            }
            flushPending(start);
            int outStart = out.position();
            boolean rewritten;
            try {
                copy(out, in, start, RECORD_BATCH_OVERHEAD);
                if (codec.type() == CompressionType.NONE) {
                    headerViewsOf(in);
                    rewritten = rewriteRecords(in, inValues, inKeys, start + RECORD_BATCH_OVERHEAD, start + size,
                            out, count, baseOffset);
                } else {
                    int length = decompress(codec, in.slice(start + RECORD_BATCH_OVERHEAD, size - RECORD_BATCH_OVERHEAD),
                            baseOffset);
                    ByteBuffer plain = ByteBuffer.wrap(decompressed, 0, length);
                    headerViewsOf(plain);
                    try (OutputStream sink = codec.wrapForOutput(out, MAGIC_V2)) {
                        rewritten = rewriteRecords(plain, plain.duplicate(),
                                keyRewriter == null ? null : plain.duplicate(), 0, length, sink, count, baseOffset);
                    }
                }
            } catch (IOException e) {
                throw new RecordRewriteException("Could not recompress batch at base offset " + baseOffset
                        + " with " + codec.type().name, baseOffset, e);
            }
            if (!rewritten) {
                // Only null values (and keys): the original bytes, original compression level included, are already correct.
                out.position(outStart);
                pendingFrom = start;
                return;
            }
            checkOutput(out.position());
            ByteBuffer buffer = out.buffer();
            int newSize = out.position() - outStart;
            buffer.putInt(outStart + LENGTH_OFFSET, newSize - LOG_OVERHEAD);
            long crc = Crc32C.compute(buffer.array(), buffer.arrayOffset() + outStart + ATTRIBUTES_OFFSET,
                    newSize - ATTRIBUTES_OFFSET);
            buffer.putInt(outStart + CRC_OFFSET, (int) crc);
            pendingFrom = start + size;
            changed = true;
        }

        /** Points the header views at {@code src} (one pair per call for the input, per batch for decompressed bytes). */
        private void headerViewsOf(ByteBuffer src) {
            if (headerRewriter == null) {
                return;
            }
            if (headerSource != src) {
                headerNames = src.duplicate();
                headerValues = src.duplicate();
                headerSource = src;
            }
        }

        /** Shows the batch's values to the inspector; nothing is written and nothing recompressed. */
        private void inspectBatch(Compression codec, int start, int size, int count, long baseOffset)
                throws RecordRewriteException {
            try {
                if (codec.type() == CompressionType.NONE) {
                    headerViewsOf(in);
                    rewriteRecords(in, inValues, inKeys, start + RECORD_BATCH_OVERHEAD, start + size,
                            OutputStream.nullOutputStream(), count, baseOffset);
                } else {
                    int length = decompress(codec, in.slice(start + RECORD_BATCH_OVERHEAD, size - RECORD_BATCH_OVERHEAD),
                            baseOffset);
                    ByteBuffer plain = ByteBuffer.wrap(decompressed, 0, length);
                    headerViewsOf(plain);
                    rewriteRecords(plain, plain.duplicate(), keyRewriter == null ? null : plain.duplicate(),
                            0, length, OutputStream.nullOutputStream(), count, baseOffset);
                }
            } catch (IOException e) {
                throw new IllegalStateException("the null output stream does not throw", e);
            }
        }

        /**
         * Decompresses a records section into {@link #decompressed}; returns the number of bytes. The buffer grows
         * geometrically but never past what is left of the frame's budget: once it is full at that bound, one more byte
         * from the stream fails the batch, so a small bomb costs at most the budget, never an OutOfMemoryError, and
         * the batches of one frame share it.
         */
        private int decompress(Compression codec, ByteBuffer compressed, long baseOffset) throws RecordRewriteException {
            int max = budget.remainingDecompressed();
            int frameMax = budget.maxDecompressedBytes();
            if (codec.type() == CompressionType.SNAPPY) {
                // The snappy stream sizes its own buffers from lengths in the data, before any byte reaches us.
                SnappyBounds.check(compressed, max, frameMax, baseOffset);
            } else if (codec.type() == CompressionType.ZSTD) {
                // zstd allocates its declared window natively before any byte reaches us.
                ZstdBounds.check(compressed, max, frameMax, baseOffset);
            }
            if (max == 0) {
                // Every compressed section decompresses to at least one byte (a batch of count > 0 has records).
                throw overBudget(baseOffset, 0, frameMax);
            }
            if (bufferSupplier == null) {
                // Per call, not per thread: a codec may cache blocks of up to 4 MiB in it (lz4's largest).
                bufferSupplier = BufferSupplier.create();
            }
            int initial = (int) Math.min(max, Math.max(4096L, 4L * compressed.remaining()));
            if (decompressed == null || decompressed.length < initial) {
                decompressed = new byte[initial];
            }
            int capacity = Math.min(decompressed.length, max);
            int length = 0;
            try (InputStream stream = codec.wrapForInput(compressed, MAGIC_V2, bufferSupplier)) {
                while (true) {
                    if (length == capacity) {
                        if (capacity == max) {
                            if (stream.read() < 0) {
                                budget.chargeDecompressed(length);
                                return length;
                            }
                            budget.chargeDecompressed(length);
                            throw overBudget(baseOffset, max, frameMax);
                        }
                        capacity = (int) Math.min(max, 2L * capacity);
                        if (capacity > decompressed.length) {
                            decompressed = Arrays.copyOf(decompressed, capacity);
                        }
                    }
                    int read = stream.read(decompressed, length, capacity - length);
                    if (read < 0) {
                        budget.chargeDecompressed(length);
                        return length;
                    }
                    length += read;
                }
            } catch (IOException | KafkaException e) {
                throw new RecordRewriteException("Could not decompress batch at base offset " + baseOffset
                        + " with " + codec.type().name, baseOffset, e);
            }
        }

        /**
         * Re-encodes {@code count} records from {@code src[from, to)} into {@code sink}, replacing non-null values and,
         * when {@code keys} is a view (a key rewriter is set), non-null keys. Returns whether any value or key was
         * handed to a rewriter.
         */
        private boolean rewriteRecords(ByteBuffer src, ByteBuffer values, ByteBuffer keys, int from, int to,
                                       OutputStream sink, int count, long baseOffset)
                throws RecordRewriteException, IOException {
            pos = from;
            boolean rewritten = false;
            if (recordAware != null) {
                awareKey = src.duplicate();
                awareHeaders = src.duplicate();
            }
            for (int i = 0; i < count; i++) {
                int recordStart = pos;
                long offset = -1L;
                int bodyStart;
                int bodyEnd;
                int keyLengthAt;
                int keyLength;
                int valueLengthAt;
                int valueLength;
                int headersStart;
                boolean chosenHeader = false;
                try {
                    int bodyLength = readVarint(src, to);
                    if (bodyLength < 0 || bodyLength > to - pos) {
                        throw new Malformed("record length " + bodyLength + " exceeds the batch");
                    }
                    bodyStart = pos;
                    bodyEnd = pos + bodyLength;
                    skip(1, bodyEnd); // attributes
                    readVarlong(src, bodyEnd); // timestamp delta
                    offset = baseOffset + readVarint(src, bodyEnd);
                    keyLengthAt = pos;
                    keyLength = readVarint(src, bodyEnd);
                    skip(keyLength, bodyEnd);
                    valueLengthAt = pos;
                    valueLength = readVarint(src, bodyEnd);
                    skip(valueLength, bodyEnd);
                    headersStart = pos;
                    int headerCount = readVarint(src, bodyEnd);
                    if (headerCount < 0) {
                        throw new Malformed("negative header count " + headerCount);
                    }
                    for (int h = 0; h < headerCount; h++) {
                        int headerKeyLength = readVarint(src, bodyEnd);
                        if (headerKeyLength < 0) {
                            throw new Malformed("negative header key length " + headerKeyLength);
                        }
                        int nameStart = pos;
                        skip(headerKeyLength, bodyEnd);
                        int headerValueLength = readVarint(src, bodyEnd);
                        skip(headerValueLength, bodyEnd);
                        if (headerRewriter != null && !chosenHeader && headerValueLength >= 0) {
                            chosenHeader = headerRewriter.rewrites(view(headerNames, nameStart, headerKeyLength));
                        }
                    }
                    if (pos != bodyEnd) {
                        throw new Malformed((bodyEnd - pos) + " unread bytes at the end of the record");
                    }
                } catch (Malformed e) {
                    throw malformed(baseOffset, i, offset, e.getMessage());
                }
                awareKeyStart = valueLengthAt - Math.max(keyLength, 0);
                awareKeyLength = keyLength;
                awareHeadersStart = headersStart;
                awareBodyEnd = bodyEnd;

                if (chosenHeader) {
                    rewriteRecordWithHeaders(src, values, keys, sink, offset, bodyStart, bodyEnd, keyLengthAt, keyLength,
                            valueLengthAt, valueLength, headersStart);
                    rewritten = true;
                    continue;
                }
                if (keys != null && keyLength >= 0) {
                    rewriteRecordWithKey(src, values, keys, sink, offset, bodyStart, bodyEnd, keyLengthAt, keyLength,
                            valueLengthAt, valueLength, headersStart);
                    rewritten = true;
                    continue;
                }
                if (valueLength < 0) {
                    copy(sink, src, recordStart, bodyEnd - recordStart);
                    continue;
                }
                values.clear();
                values.limit(headersStart).position(headersStart - valueLength);
                ByteBuffer value = rewriteValue(values, offset);
                int newValueLength = value == ValueRewriter.NULL_VALUE ? -1 : value.remaining();
                long newBodyLength = (long) (valueLengthAt - bodyStart) + ByteUtils.sizeOfVarint(newValueLength)
                        + Math.max(newValueLength, 0) + (bodyEnd - headersStart);
                if (newBodyLength > MAX_ARRAY_SIZE) {
                    throw new RecordRewriteException("Rewritten record at offset " + offset + " is too large",
                            offset, null);
                }
                writeVarint(sink, (int) newBodyLength);
                copy(sink, src, bodyStart, valueLengthAt - bodyStart);
                writeVarint(sink, newValueLength);
                if (newValueLength > 0) {
                    copy(sink, value, value.position(), newValueLength);
                }
                copy(sink, src, headersStart, bodyEnd - headersStart);
                rewritten = true;
            }
            if (pos != to) {
                throw malformed(baseOffset, count, -1L, (to - pos) + " bytes follow the last of " + count + " records");
            }
            return rewritten;
        }

        /**
         * Re-encodes one record whose key is non-null through the key rewriter, and its value, when non-null, through
         * the value rewriter; attributes, deltas and header bytes are copied verbatim.
         */
        private void rewriteRecordWithKey(ByteBuffer src, ByteBuffer values, ByteBuffer keys, OutputStream sink,
                                          long offset, int bodyStart, int bodyEnd, int keyLengthAt, int keyLength,
                                          int valueLengthAt, int valueLength, int headersStart)
                throws RecordRewriteException, IOException {
            int keyStart = valueLengthAt - keyLength;
            keys.clear();
            keys.limit(valueLengthAt).position(keyStart);
            ByteBuffer key = rewrite(keyRewriter, keys, offset, "key");
            int newKeyLength = key.remaining();
            ByteBuffer value = null;
            int newValueLength = -1;
            if (valueLength >= 0) {
                values.clear();
                values.limit(headersStart).position(headersStart - valueLength);
                value = rewriteValue(values, offset);
                newValueLength = value == ValueRewriter.NULL_VALUE ? -1 : value.remaining();
            }
            long newBodyLength = (long) (keyLengthAt - bodyStart)
                    + ByteUtils.sizeOfVarint(newKeyLength) + newKeyLength
                    + ByteUtils.sizeOfVarint(newValueLength) + Math.max(newValueLength, 0)
                    + (bodyEnd - headersStart);
            if (newBodyLength > MAX_ARRAY_SIZE) {
                throw new RecordRewriteException("Rewritten record at offset " + offset + " is too large", offset, null);
            }
            writeVarint(sink, (int) newBodyLength);
            copy(sink, src, bodyStart, keyLengthAt - bodyStart);
            writeVarint(sink, newKeyLength);
            copy(sink, key, key.position(), newKeyLength);
            writeVarint(sink, newValueLength);
            if (newValueLength > 0) {
                copy(sink, value, value.position(), newValueLength);
            }
            copy(sink, src, headersStart, bodyEnd - headersStart);
        }

        /**
         * Re-encodes one record with at least one header the header rewriter chose: those headers' values are rewritten,
         * every other header byte is copied; the key (through the key rewriter when there is one and it is non-null) and
         * the value (when non-null) as on the other paths.
         */
        private void rewriteRecordWithHeaders(ByteBuffer src, ByteBuffer values, ByteBuffer keys, OutputStream sink,
                                              long offset, int bodyStart, int bodyEnd, int keyLengthAt, int keyLength,
                                              int valueLengthAt, int valueLength, int headersStart)
                throws RecordRewriteException, IOException {
            ByteBuffer key = null;
            if (keys != null && keyLength >= 0) {
                key = rewrite(keyRewriter, view(keys, valueLengthAt - keyLength, keyLength), offset, "key");
            }
            ByteBuffer value = null;
            if (valueLength >= 0) {
                value = rewriteValue(view(values, headersStart - valueLength, valueLength), offset);
            }
            // After the value: a value that meets an unreachable KMS is reported as such (the fetch path watches values
            // for outages). The key's and value's results live in their rewriters' buffers, untouched by the headers.
            rewriteHeaders(src, offset, headersStart, bodyEnd);
            long keyBytes = key == null ? valueLengthAt - keyLengthAt
                    : ByteUtils.sizeOfVarint(key.remaining()) + (long) key.remaining();
            long valueBytes = value == null ? headersStart - valueLengthAt
                    : value == ValueRewriter.NULL_VALUE ? ByteUtils.sizeOfVarint(-1)
                    : ByteUtils.sizeOfVarint(value.remaining()) + (long) value.remaining();
            long newBodyLength = (long) (keyLengthAt - bodyStart) + keyBytes + valueBytes + headerScratchLength;
            if (newBodyLength > MAX_ARRAY_SIZE) {
                throw new RecordRewriteException("Rewritten record at offset " + offset + " is too large", offset, null);
            }
            writeVarint(sink, (int) newBodyLength);
            copy(sink, src, bodyStart, keyLengthAt - bodyStart);
            if (key == null) {
                copy(sink, src, keyLengthAt, valueLengthAt - keyLengthAt);
            } else {
                writeVarint(sink, key.remaining());
                copy(sink, key, key.position(), key.remaining());
            }
            if (value == null) {
                copy(sink, src, valueLengthAt, headersStart - valueLengthAt);
            } else if (value == ValueRewriter.NULL_VALUE) {
                writeVarint(sink, -1);
            } else {
                writeVarint(sink, value.remaining());
                copy(sink, value, value.position(), value.remaining());
            }
            reserve(headerScratchLength);
            sink.write(headerScratch, 0, headerScratchLength);
        }

        /**
         * Writes the headers section {@code src[from, bodyEnd)} (already validated by the parse) into
         * {@link #headerScratch}, the chosen headers' values rewritten. Leaves {@link #pos} at {@code bodyEnd}.
         */
        private void rewriteHeaders(ByteBuffer src, long offset, int from, int bodyEnd) throws RecordRewriteException {
            headerScratchLength = 0;
            pos = from;
            int count = readVarint(src, bodyEnd);
            scratchVarint(count);
            for (int h = 0; h < count; h++) {
                int nameLength = readVarint(src, bodyEnd);
                int nameStart = pos;
                pos += nameLength;
                int valueLength = readVarint(src, bodyEnd);
                int valueStart = pos;
                pos += Math.max(valueLength, 0);
                scratchVarint(nameLength);
                scratchBytes(src, nameStart, nameLength);
                ByteBuffer name = view(headerNames, nameStart, nameLength);
                if (valueLength < 0 || !headerRewriter.rewrites(name)) {
                    scratchVarint(valueLength);
                    scratchBytes(src, valueStart, Math.max(valueLength, 0));
                    continue;
                }
                ByteBuffer value;
                try {
                    value = headerRewriter.rewrite(name, view(headerValues, valueStart, valueLength));
                } catch (RecordRewriteException e) {
                    if (e.offset() >= 0) {
                        throw e;
                    }
                    throw e.at(offset, "Header " + (h + 1) + " of " + count + " of record at offset " + offset
                            + " could not be rewritten: " + e.getMessage());
                }
                if (value == null) {
                    throw new RecordRewriteException("Rewriter returned null for header " + (h + 1) + " of record at"
                            + " offset " + offset, offset, null);
                }
                scratchVarint(value.remaining());
                scratchBytes(value, value.position(), value.remaining());
            }
            pos = bodyEnd;
        }

        /** {@code view} set to {@code [start, start + length)}: positions are absolute within the records section. */
        private static ByteBuffer view(ByteBuffer view, int start, int length) {
            view.clear();
            view.limit(start + length).position(start);
            return view;
        }

        private void scratchVarint(int value) {
            int v = (value << 1) ^ (value >> 31);
            scratchRoom(5);
            while ((v & 0xffffff80) != 0) {
                headerScratch[headerScratchLength++] = (byte) ((v & 0x7f) | 0x80);
                v >>>= 7;
            }
            headerScratch[headerScratchLength++] = (byte) v;
        }

        private void scratchBytes(ByteBuffer from, int at, int length) {
            scratchRoom(length);
            from.get(at, headerScratch, headerScratchLength, length);
            headerScratchLength += length;
        }

        /**
         * Grows {@link #headerScratch} geometrically, never past what is left of the frame's output: the record it holds
         * must be written there, so a record whose headers would not fit fails before it costs more memory.
         */
        private void scratchRoom(int length) {
            long needed = (long) headerScratchLength + length;
            if (headerScratch != null && needed <= headerScratch.length) {
                return;
            }
            long allowed = Math.min(MAX_ARRAY_SIZE, budget.remainingOutput() - (out == null ? 0 : out.position()));
            if (needed > allowed) {
                throw new OverBudget(outputOverBudget((out == null ? 0 : out.position()) + needed));
            }
            long grown = Math.min(allowed, Math.max(needed, Math.max(256L, 2L * (headerScratch == null ? 0 : headerScratch.length))));
            headerScratch = Arrays.copyOf(headerScratch == null ? new byte[0] : headerScratch, (int) grown);
        }

        private ByteBuffer rewriteValue(ByteBuffer value, long offset) throws RecordRewriteException {
            if (recordAware != null) {
                recordAware.record(awareKeyLength < 0 ? null : view(awareKey, awareKeyStart, awareKeyLength),
                        view(awareHeaders, awareHeadersStart, awareBodyEnd - awareHeadersStart));
            }
            return rewrite(rewriter, value, offset, "value");
        }

        private static ByteBuffer rewrite(ValueRewriter with, ByteBuffer field, long offset, String what)
                throws RecordRewriteException {
            ByteBuffer result;
            try {
                result = with.rewrite(field);
            } catch (RecordRewriteException e) {
                if (e.offset() >= 0) {
                    throw e;
                }
                throw e.at(offset, Character.toUpperCase(what.charAt(0)) + what.substring(1)
                        + " of record at offset " + offset + " could not be rewritten: " + e.getMessage());
            }
            if (result == null) {
                throw new RecordRewriteException("Rewriter returned null for the " + what + " of record at offset "
                        + offset, offset, null);
            }
            return result;
        }

        private static RecordRewriteException malformed(long baseOffset, int index, long offset, String reason) {
            String where = offset >= 0 ? "record at offset " + offset : "record #" + index;
            return new RecordRewriteException("Malformed " + where + " in batch at base offset " + baseOffset + ": "
                    + reason, offset >= 0 ? offset : baseOffset, null);
        }

        /** Copies the unchanged input run up to {@code end} to the output, creating the output on first use. */
        private void flushPending(int end) {
            if (out == null) {
                // Encryption grows values by a few dozen bytes; leave room so typical batches never reallocate. Encrypted
                // headers grow each record by an envelope's overhead per header: more room.
                long capacity = Math.min(Math.min(MAX_ARRAY_SIZE,
                                (long) in.limit() + in.limit() / (headerRewriter == null ? 4 : 2) + 256),
                        Math.max(0L, budget.remainingOutput()));
                arenaRegion = OutputArena.lend((int) capacity);
                ByteBuffer kept = scratch.output;
                out = arenaRegion != null ? new ByteBufferOutputStream(arenaRegion)
                        : kept != null && kept.capacity() >= capacity ? new ByteBufferOutputStream(kept.clear())
                        : new ByteBufferOutputStream((int) capacity);
            }
            if (end > pendingFrom) {
                try {
                    copy(out, in, pendingFrom, end - pendingFrom);
                } catch (IOException e) {
                    throw new IllegalStateException("ByteBufferOutputStream does not throw", e);
                }
            }
            pendingFrom = end;
        }

        /**
         * Grows the output geometrically; ByteBufferOutputStream alone grows by 10% and would copy too often. Never past
         * what is left of the frame's output budget (but for the stream's own 10% step): a write that cannot fit fails.
         */
        private void reserve(int length) {
            if (out == null) {
                return; // inspect only: nothing is written
            }
            int position = out.position();
            long allowed = Math.min(MAX_ARRAY_SIZE, budget.remainingOutput());
            // Checked at every write, not only when the array grows: a reused array may be larger than what is left.
            if ((long) position + length > allowed) {
                throw new OverBudget(outputOverBudget(position + (long) length));
            }
            if (out.remaining() < length) {
                long wanted = Math.min(Math.max(length, Math.min(position, MAX_ARRAY_SIZE - position)), allowed - position);
                out.ensureRemaining((int) wanted);
            }
        }

        /** Bytes written so far must fit what is left; a codec writes its framing without asking reserve(). */
        private void checkOutput(long written) {
            if (written > budget.remainingOutput()) {
                throw new OverBudget(outputOverBudget(written));
            }
        }

        private FrameBudgetExceededException outputOverBudget(long bytes) {
            return new FrameBudgetExceededException("Rewritten records need " + bytes + " bytes, more than the "
                    + budget.remainingOutput() + " bytes left of this frame's output limit of "
                    + budget.maxOutputBytes(), -1L);
        }

        private void copy(OutputStream sink, ByteBuffer src, int offset, int length) throws IOException {
            if (length == 0) {
                return;
            }
            reserve(length);
            if (src.hasArray()) {
                sink.write(src.array(), src.arrayOffset() + offset, length);
            } else if (sink == out) {
                int position = out.position();
                out.buffer().put(position, src, offset, length);
                out.position(position + length);
            } else {
                if (chunk == null) {
                    chunk = new byte[COPY_CHUNK];
                }
                for (int done = 0; done < length; ) {
                    int n = Math.min(chunk.length, length - done);
                    src.get(offset + done, chunk, 0, n);
                    sink.write(chunk, 0, n);
                    done += n;
                }
            }
        }

        private void writeVarint(OutputStream sink, int value) throws IOException {
            int v = (value << 1) ^ (value >> 31);
            int n = 0;
            while ((v & 0xffffff80) != 0) {
                varint[n++] = (byte) ((v & 0x7f) | 0x80);
                v >>>= 7;
            }
            varint[n++] = (byte) v;
            reserve(n);
            sink.write(varint, 0, n);
        }

        private int readVarint(ByteBuffer src, int limit) {
            int value = 0;
            int shift = 0;
            while (true) {
                if (pos >= limit) {
                    throw new Malformed("varint runs past the end of the record");
                }
                byte b = src.get(pos++);
                if ((b & 0x80) == 0) {
                    value |= b << shift;
                    return (value >>> 1) ^ -(value & 1);
                }
                value |= (b & 0x7f) << shift;
                shift += 7;
                if (shift > 28) {
                    throw new Malformed("varint is longer than 5 bytes");
                }
            }
        }

        private long readVarlong(ByteBuffer src, int limit) {
            long value = 0L;
            int shift = 0;
            while (true) {
                if (pos >= limit) {
                    throw new Malformed("varlong runs past the end of the record");
                }
                byte b = src.get(pos++);
                if ((b & 0x80) == 0) {
                    value |= (long) b << shift;
                    return (value >>> 1) ^ -(value & 1);
                }
                value |= (long) (b & 0x7f) << shift;
                shift += 7;
                if (shift > 63) {
                    throw new Malformed("varlong is longer than 10 bytes");
                }
            }
        }

        /** Skips a length-prefixed field's bytes; a negative length means null and has no bytes. */
        private void skip(int length, int limit) {
            if (length > limit - pos) {
                throw new Malformed("field of " + length + " bytes runs past the end of the record");
            }
            if (length > 0) {
                pos += length;
            }
        }

        /** Gives the thread's scratch back: the output array (maybe grown) and the decompression array. */
        void close() {
            if (bufferSupplier != null) {
                bufferSupplier.close();
            }
            OutputArena.giveBack(arenaRegion);
            if (out != null && out.buffer() != arenaRegion) {
                scratch.output = out.buffer();
            }
            scratch.decompressed = decompressed;
            scratch.giveBack();
        }
    }

    /** Carries a budget overrun out of the stream callbacks that cannot throw it; unwrapped by the public entry points. */
    private static final class OverBudget extends RuntimeException {
        private static final long serialVersionUID = 1L;
        private final transient FrameBudgetExceededException exception;

        OverBudget(FrameBudgetExceededException exception) {
            super(null, null, false, false);
            this.exception = exception;
        }
    }

    /** Internal parse failure, converted to a {@link RecordRewriteException} naming the record; no stack trace. */
    private static final class Malformed extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Malformed(String message) {
            super(message, null, false, false);
        }
    }
}
