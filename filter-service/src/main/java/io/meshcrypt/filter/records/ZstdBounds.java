package io.meshcrypt.filter.records;

import java.nio.ByteBuffer;

/**
 * Reads the header of the first zstd frame of a records section (RFC 8878, 3.1.1.1) before zstd-jni sees it. The
 * decoder allocates (natively, outside any Java limit) a buffer of the declared window size, up to 128 MiB by
 * default, before producing a byte; a 20-byte section can ask for it. Two checks, both exact:
 * <ul>
 *   <li>a window larger than the frame's whole decompression limit (but at least {@link #MIN_WINDOW_LIMIT}) is
 *       refused: the decoder then never reserves more than the Java side may hold. The window is not compared with
 *       what is LEFT of the budget: Kafka's producer declares its level's window (2 MiB at level 3, 8 MiB up to level
 *       19) even for a batch of a few bytes, so a small remaining budget says nothing about whether the batch fits;
 *       for the same reason a small configured limit does not lower the bound below 8 MiB (the decoder touches its
 *       window's pages only as it writes, and what it writes is bounded by the budget);</li>
 *   <li>a declared Frame_Content_Size (present on single-segment frames, e.g. every batch a producer compresses in
 *       one call) larger than what is left of the budget is refused: the decoder insists on that exact size, so the
 *       frame either overflows the budget or is corrupt.</li>
 * </ul>
 * Later frames of a section of concatenated frames are not pre-checked (finding them means decompressing the first):
 * their windows stay under zstd's own default limit (2^27 bytes) and their output under the budget, which the
 * decompression loop enforces; the decoder writes into its window no faster than the loop reads.
 */
final class ZstdBounds {
    /** Frame magic 0xFD2FB528, little endian on the wire. */
    private static final int MAGIC = 0xFD2FB528;
    private static final int RESERVED_BIT = 0x08;
    private static final int SINGLE_SEGMENT_BIT = 0x20;
    /** The window of zstd levels up to 19 on input of unknown size (windowLog 23): never refused. */
    static final int MIN_WINDOW_LIMIT = 8 << 20;

    private ZstdBounds() {
    }

    /**
     * @param remaining what is left of the frame's decompression budget
     * @param maxWindow the frame's whole decompression limit
     */
    static void check(ByteBuffer section, int remaining, int maxWindow, long baseOffset) throws RecordRewriteException {
        int p = section.position();
        int end = section.limit();
        if (end - p < 6 || Integer.reverseBytes(section.getInt(p)) != MAGIC) {
            // Too short for a frame header, a skippable frame or no zstd at all: the decoder fails or skips it.
            return;
        }
        int descriptor = section.get(p + 4) & 0xff;
        if ((descriptor & RESERVED_BIT) != 0) {
            throw bad(baseOffset, "the frame header sets its reserved bit");
        }
        boolean singleSegment = (descriptor & SINGLE_SEGMENT_BIT) != 0;
        int q = p + 5;
        long window = -1;
        if (!singleSegment) {
            int wd = section.get(q++) & 0xff;
            int windowLog = 10 + (wd >>> 3);
            long base = 1L << windowLog;
            window = base + (base >>> 3) * (wd & 0x07);
        }
        int dictionaryFlag = descriptor & 0x03;
        q += dictionaryFlag == 3 ? 4 : dictionaryFlag;
        int contentSizeFlag = descriptor >>> 6;
        int contentSizeBytes = contentSizeFlag == 0 ? (singleSegment ? 1 : 0) : 1 << contentSizeFlag;
        if (contentSizeBytes > 0) {
            if (end - q < contentSizeBytes) {
                throw bad(baseOffset, "the frame header is truncated");
            }
            long contentSize = 0;
            for (int i = contentSizeBytes - 1; i >= 0; i--) {
                contentSize = (contentSize << 8) | (section.get(q + i) & 0xff);
            }
            if (contentSizeBytes == 2) {
                contentSize += 256;
            }
            // Unsigned: an 8-byte size with the top bit set is larger than any budget.
            if (Long.compareUnsigned(contentSize, remaining) > 0) {
                throw new FrameBudgetExceededException("Batch at base offset " + baseOffset + " declares a zstd"
                        + " frame of " + Long.toUnsignedString(contentSize) + " bytes, more than the " + remaining
                        + " bytes left of maxDecompressedBytes=" + maxWindow + " for this frame", baseOffset);
            }
            if (singleSegment) {
                window = contentSize;
            }
        }
        if (window > Math.max(maxWindow, MIN_WINDOW_LIMIT)) {
            throw new RecordRewriteException("Batch at base offset " + baseOffset + " declares a zstd window of "
                    + window + " bytes, more than maxDecompressedBytes=" + maxWindow, baseOffset, null);
        }
    }

    private static RecordRewriteException bad(long baseOffset, String why) {
        return new RecordRewriteException("Could not decompress batch at base offset " + baseOffset + " with zstd: "
                + why, baseOffset, null);
    }
}
