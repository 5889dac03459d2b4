package io.meshcrypt.filter.config;

import java.time.Duration;
import java.util.Objects;

/**
 * Resource limits of the filter-service: what one peer (client or broker) can make the service hold, decode or ask of
 * the KMS before its connection is closed. The {@code limits:} section of the filter config; every field has a safe
 * default, documented with its reason in docs/configuration.md. Crossing a limit closes that connection, never the
 * process. This is the one owner of the limits' values and defaults: the data path (framing, kafka, records, transport)
 * is handed the ones it enforces by {@code DataPathLimits} and has no defaults of its own.
 *
 * @param maxFrameBytes largest Kafka frame held for rewriting, either direction (also the top-level {@code maxFrameBytes})
 * @param maxRequestFrameBytes largest request frame of any kind a client may announce, passed through or not
 * @param maxInFlightRequests requests one connection may have awaiting their response
 * @param maxDecompressedBytes most bytes all record batches of one frame (a Produce request, a Fetch or ShareFetch response) may decompress to, together
 * @param maxHeldBytesPerConnection most bytes the incomplete frames of one connection may announce, both directions
 * @param maxHeldBytesTotal most bytes all connections together may hold: bytes of incomplete frames really received, plus
 *     {@code REWRITE_CHARGE - 1} times the size of each frame being rewritten (its copies)
 * @param heldFrameTimeout how long a held frame may take to arrive completely, from its first byte
 * @param newDataKeysPerSecond sustained rate at which new data keys (KMS wraps) may be created, process-wide
 * @param newDataKeysBurst how many new data keys may be created at once above that rate
 * @param maxNewDataKeysPerRequest most topics without a ready data key one Produce request may name; past it the
 *     connection is closed (the first ones are still prepared, so a client that retries makes progress)
 * @param maxTopicIds most topic id to name mappings remembered
 * @param maxExtProcMessageBytes largest gRPC message (one socket read of Envoy) the ext_proc server accepts
 */
public record Limits(
        int maxFrameBytes,
        int maxRequestFrameBytes,
        int maxInFlightRequests,
        int maxDecompressedBytes,
        long maxHeldBytesPerConnection,
        long maxHeldBytesTotal,
        Duration heldFrameTimeout,
        int newDataKeysPerSecond,
        int newDataKeysBurst,
        int maxNewDataKeysPerRequest,
        int maxTopicIds,
        int maxExtProcMessageBytes) {

    /** 100 MiB: Kafka's default message.max.bytes is about 1 MiB; 100 MiB leaves room for raised broker limits. */
    public static final int DEFAULT_MAX_FRAME_BYTES = 104_857_600;
    public static final int DEFAULT_MAX_REQUEST_FRAME_BYTES = 104_857_600;
    public static final int DEFAULT_MAX_IN_FLIGHT_REQUESTS = 4096;
    /**
     * 64 MiB, for all compressed batches of one frame together. The broker's default max batch size ({@code
     * message.max.bytes}, 1 MiB + overhead) and the producer's {@code max.request.size} (1 MiB) are checked on
     * compressed sizes, and producers rarely reach more than a 10:1 ratio on real data, so a default request stays far
     * below it. A Fetch response ({@code fetch.max.bytes}, 50 MiB) of an encrypted topic decompresses ~1:1 (ciphertext
     * does not compress). Lower would refuse legitimate producers with raised limits; a batch of zeros, which
     * compresses ~1000:1, is stopped long before it threatens the heap.
     */
    public static final int DEFAULT_MAX_DECOMPRESSED_BYTES = 67_108_864;
    public static final Duration DEFAULT_HELD_FRAME_TIMEOUT = Duration.ofSeconds(30);
    public static final int DEFAULT_NEW_DATA_KEYS_PER_SECOND = 50;
    public static final int DEFAULT_NEW_DATA_KEYS_BURST = 200;
    /** 2 s of new keys at the default rate: well inside Envoy's 5 s message_timeout for the deferred request. */
    public static final int DEFAULT_MAX_NEW_DATA_KEYS_PER_REQUEST = 100;
    public static final int DEFAULT_MAX_TOPIC_IDS = 100_000;
    public static final int DEFAULT_MAX_EXT_PROC_MESSAGE_BYTES = 64 * 1024 * 1024;
    /**
     * A frame being rewritten is charged this many times its size to {@code maxHeldBytesTotal}: the frame held, the
     * private copy the rewriter reads, and the output it builds (about the frame's size). The total must fit one largest
     * frame this many times; the held-bytes budget of the data path is handed the same number.
     */
    public static final int REWRITE_CHARGE = 3;
    /** Bytes of the Kafka size field, held with every frame. */
    private static final int SIZE_FIELD_BYTES = 4;

    public Limits {
        positive(maxFrameBytes, "maxFrameBytes");
        positive(maxRequestFrameBytes, "maxRequestFrameBytes");
        positive(maxInFlightRequests, "maxInFlightRequests");
        positive(maxDecompressedBytes, "maxDecompressedBytes");
        positive(newDataKeysPerSecond, "newDataKeysPerSecond");
        positive(newDataKeysBurst, "newDataKeysBurst");
        positive(maxNewDataKeysPerRequest, "maxNewDataKeysPerRequest");
        positive(maxTopicIds, "maxTopicIds");
        positive(maxExtProcMessageBytes, "maxExtProcMessageBytes");
        Objects.requireNonNull(heldFrameTimeout, "heldFrameTimeout");
        if (heldFrameTimeout.isNegative() || heldFrameTimeout.isZero()) {
            throw new IllegalArgumentException("heldFrameTimeout must be positive: " + heldFrameTimeout);
        }
        long oneFrame = oneFrame(maxFrameBytes);
        if (maxHeldBytesPerConnection < oneFrame) {
            throw new IllegalArgumentException("maxHeldBytesPerConnection (" + maxHeldBytesPerConnection
                    + ") must be at least maxFrameBytes + 4 (" + oneFrame + ")");
        }
        if (maxHeldBytesTotal < minHeldBytesTotal(maxFrameBytes)) {
            throw new IllegalArgumentException("maxHeldBytesTotal (" + maxHeldBytesTotal + ") must be at least "
                    + REWRITE_CHARGE + " x (maxFrameBytes + 4) (" + minHeldBytesTotal(maxFrameBytes)
                    + "), what rewriting one frame of the largest size is charged");
        }
    }

    /** Every default, for this JVM's heap. */
    public static Limits defaults() {
        return defaults(DEFAULT_MAX_FRAME_BYTES);
    }

    /** Every default, with the held-bytes defaults derived from {@code maxFrameBytes} and this JVM's heap. */
    public static Limits defaults(int maxFrameBytes) {
        return new Limits(maxFrameBytes, DEFAULT_MAX_REQUEST_FRAME_BYTES, DEFAULT_MAX_IN_FLIGHT_REQUESTS,
                DEFAULT_MAX_DECOMPRESSED_BYTES, defaultHeldBytesPerConnection(maxFrameBytes),
                defaultHeldBytesTotal(maxFrameBytes, Runtime.getRuntime().maxMemory()), DEFAULT_HELD_FRAME_TIMEOUT,
                DEFAULT_NEW_DATA_KEYS_PER_SECOND, DEFAULT_NEW_DATA_KEYS_BURST, DEFAULT_MAX_NEW_DATA_KEYS_PER_REQUEST,
                DEFAULT_MAX_TOPIC_IDS,
                DEFAULT_MAX_EXT_PROC_MESSAGE_BYTES);
    }

    /** One frame of the largest size in each direction: a request and its response may be held at once. */
    public static long defaultHeldBytesPerConnection(int maxFrameBytes) {
        return 2 * oneFrame(maxFrameBytes);
    }

    /**
     * Half of the heap ({@code -Xmx}): the total counts the bytes really held plus the copies a rewrite makes (the frame's
     * private copy and its output), so what it leaves uncounted is the output's trip through gRPC and the rest of the
     * service. At least {@link #minHeldBytesTotal}: one frame of the largest size can always be rewritten.
     */
    public static long defaultHeldBytesTotal(int maxFrameBytes, long maxHeapBytes) {
        return Math.max(minHeldBytesTotal(maxFrameBytes), maxHeapBytes / 2);
    }

    /** What rewriting one frame of the largest size is charged: {@code REWRITE_CHARGE x (maxFrameBytes + 4)}. */
    public static long minHeldBytesTotal(int maxFrameBytes) {
        return REWRITE_CHARGE * oneFrame(maxFrameBytes);
    }

    private static long oneFrame(int maxFrameBytes) {
        return maxFrameBytes + (long) SIZE_FIELD_BYTES;
    }

    private static void positive(long value, String name) {
        if (value < 1) {
            throw new IllegalArgumentException(name + " must be positive: " + value);
        }
    }
}
