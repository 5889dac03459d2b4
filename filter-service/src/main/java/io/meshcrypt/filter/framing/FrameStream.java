package io.meshcrypt.filter.framing;

import com.google.protobuf.ByteString;

/**
 * Splits one direction of a Kafka connection into length-prefixed frames across arbitrary chunk
 * boundaries. PASS frames stream through as their bytes arrive (never held, never copied more than
 * ByteString slicing needs); REWRITE frames are held until complete and replaced by what the handler returns.
 */
public final class FrameStream {

    public FrameStream(int headBytes, int maxFrameBytes, FrameHandler handler) {
        throw new UnsupportedOperationException("being written");
    }

    /** Feeds one chunk; returns the bytes to forward now. */
    public ByteString accept(ByteString chunk) throws KafkaFrameException {
        throw new UnsupportedOperationException("being written");
    }

    /** True while bytes of an incomplete frame are held (a REWRITE frame, or a size field / head not yet complete). */
    public boolean holdsPartialFrame() {
        throw new UnsupportedOperationException("being written");
    }
}
