package io.meshcrypt.filter.framing;

import com.google.protobuf.ByteString;
import java.nio.ByteBuffer;

/** Receives the frames of one direction of a Kafka connection. Called on the connection's thread. */
public interface FrameHandler {

    /**
     * Called once per frame as soon as its size field and its first {@code headBytes} bytes are known
     * (all of the frame when it is shorter).
     *
     * @param size the frame's size field: the number of bytes after the 4-byte size
     * @param head read-only view of the first {@code min(size, headBytes)} bytes after the size field, from its
     *     position (which need not be 0: read relative to it)
     */
    FrameAction onFrameStart(int size, ByteBuffer head) throws KafkaFrameException;

    /**
     * Called with a complete frame that {@link #onFrameStart} marked {@link FrameAction#REWRITE}.
     *
     * @param frame the frame's bytes after the size field (position 0, remaining = size), array-backed and read where
     *     they arrived: no copy is made. Read it, never write it (it is the original's array); it stays valid after the
     *     call, since the bytes are immutable
     * @param original the frame as it arrived, size field included: returning it forwards the frame unchanged
     * @return the bytes to forward in its place, including a 4-byte size field
     * @throws RewriteDeferred when the rewrite must wait; it is called again with the same frame bytes after the
     *     deferral's future completes, so it must not have changed any state the retry depends on
     */
    ByteString rewrite(ByteBuffer frame, ByteString original) throws KafkaFrameException;
}
