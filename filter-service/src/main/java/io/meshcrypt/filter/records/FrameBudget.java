package io.meshcrypt.filter.records;

/**
 * What the record batches of ONE Kafka frame (a Produce request, a Fetch or ShareFetch response) may cost together
 * while {@link RecordBatchRewriter} rewrites them: bytes decompressed, and bytes of rewritten output kept. A per-batch
 * limit alone lets one small frame of many partitions, each carrying one compression bomb just under the limit,
 * multiply it; one budget shared by every partition's call caps the frame as a whole.
 *
 * <p>Create one per frame and pass it to every rewrite of that frame. Not thread-safe: a frame is rewritten by one
 * thread. Decompressed bytes are charged as they are produced (a transient scratch buffer; its growth is bounded by
 * what is left); output bytes are charged as the bytes of each rewritten records section, which is kept until the
 * frame is encoded (its buffer grows geometrically up to what is left, so it holds at most ~10% more).
 */
public final class FrameBudget {
    private final int maxDecompressedBytes;
    private final long maxOutputBytes;
    private long decompressed;
    private long output;

    /**
     * @param maxDecompressedBytes the most all compressed batches of the frame may decompress to, together
     * @param maxOutputBytes the most bytes all rewritten records sections of the frame may occupy, together
     * @throws IllegalArgumentException when either is not positive
     */
    public FrameBudget(int maxDecompressedBytes, long maxOutputBytes) {
        if (maxDecompressedBytes <= 0 || maxOutputBytes <= 0) {
            throw new IllegalArgumentException("maxDecompressedBytes and maxOutputBytes must be positive, got "
                    + maxDecompressedBytes + " and " + maxOutputBytes);
        }
        this.maxDecompressedBytes = maxDecompressedBytes;
        this.maxOutputBytes = maxOutputBytes;
    }

    /** The budget of the overloads without one: decompression bounded per call, output unbounded (as before budgets). */
    static FrameBudget forOneCall(int maxDecompressedBytes) {
        return new FrameBudget(maxDecompressedBytes, Long.MAX_VALUE);
    }

    public int maxDecompressedBytes() {
        return maxDecompressedBytes;
    }

    public long maxOutputBytes() {
        return maxOutputBytes;
    }

    /** Bytes decompressed so far by the frame's rewrites. */
    public long decompressedBytes() {
        return decompressed;
    }

    /** Bytes of rewritten output kept so far by the frame's rewrites. */
    public long outputBytes() {
        return output;
    }

    /** Whether anything has been charged yet: a frame whose first batch overflows a fresh budget can never fit. */
    public boolean used() {
        return decompressed > 0 || output > 0;
    }

    int remainingDecompressed() {
        return (int) (maxDecompressedBytes - decompressed);
    }

    long remainingOutput() {
        return maxOutputBytes - output;
    }

    void chargeDecompressed(int bytes) {
        decompressed += bytes;
    }

    void chargeOutput(long bytes) {
        output += bytes;
    }
}
