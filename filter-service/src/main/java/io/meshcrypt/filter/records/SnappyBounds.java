package io.meshcrypt.filter.records;

import java.nio.ByteBuffer;

/**
 * Checks the lengths a snappy records section declares before snappy-java reads it. Its stream allocates a buffer of
 * each chunk's declared compressed size (up to 512 MiB) and of each block's declared uncompressed size before a single
 * byte is decompressed, so a bound applied to the decompressed output alone would come too late: a 30-byte section can
 * make it allocate gigabytes. Every declared size must fit the bytes present and the decompression limit.
 */
final class SnappyBounds {
    /** snappy-java's stream header: magic (8 bytes), version and compatible version (4 bytes each). */
    private static final byte[] MAGIC = {(byte) 0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
    private static final int HEADER_SIZE = MAGIC.length + 8;
    /** The magic's first four bytes read as a chunk length: snappy-java's mark of a concatenated stream. */
    private static final int MAGIC_HEAD = ByteBuffer.wrap(MAGIC).getInt();

    private SnappyBounds() {
    }

    /**
     * @param maxDecompressedBytes what is left of the frame's decompression budget
     * @param frameMax the frame's whole decompression limit (named in the error)
     */
    static void check(ByteBuffer section, int maxDecompressedBytes, int frameMax, long baseOffset)
            throws RecordRewriteException {
        int p = section.position();
        int end = section.limit();
        if (!framed(section, p, end)) {
            // No stream header: snappy-java decompresses the whole section as one raw block.
            checkBlock(section, p, end, maxDecompressedBytes, frameMax, baseOffset);
            return;
        }
        long total = 0;
        p += HEADER_SIZE;
        while (p < end) {
            if (end - p < 4) {
                throw bad(baseOffset, "a chunk header is truncated");
            }
            int chunk = section.getInt(p);
            p += 4;
            if (chunk == MAGIC_HEAD && end - p >= HEADER_SIZE - 4) {
                // Concatenated streams: snappy-java skips the next stream's header and reads on.
                p += HEADER_SIZE - 4;
                continue;
            }
            if (chunk < 0 || chunk > end - p) {
                throw bad(baseOffset, "a chunk declares " + chunk + " bytes but " + (end - p) + " follow");
            }
            total += checkBlock(section, p, p + chunk, maxDecompressedBytes, frameMax, baseOffset);
            if (total > maxDecompressedBytes) {
                throw RecordBatchRewriter.overBudget(baseOffset, maxDecompressedBytes, frameMax);
            }
            p += chunk;
        }
    }

    private static boolean framed(ByteBuffer b, int p, int end) {
        if (end - p < HEADER_SIZE) {
            return false;
        }
        for (int i = 0; i < MAGIC.length; i++) {
            if (b.get(p + i) != MAGIC[i]) {
                return false;
            }
        }
        return true;
    }

    /** @return the uncompressed size a raw snappy block declares in its varint preamble */
    private static long checkBlock(ByteBuffer b, int from, int to, int max, int frameMax, long baseOffset)
            throws RecordRewriteException {
        long length = 0;
        int shift = 0;
        for (int p = from; ; p++) {
            if (p >= to || shift > 28) {
                throw bad(baseOffset, "a block's length preamble is malformed");
            }
            int x = b.get(p);
            length |= (long) (x & 0x7f) << shift;
            if ((x & 0x80) == 0) {
                break;
            }
            shift += 7;
        }
        if (length > max) {
            throw RecordBatchRewriter.overBudget(baseOffset, max, frameMax);
        }
        return length;
    }

    private static RecordRewriteException bad(long baseOffset, String why) {
        return new RecordRewriteException("Could not decompress batch at base offset " + baseOffset + " with snappy: "
                + why, baseOffset, null);
    }
}
