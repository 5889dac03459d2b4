package io.meshcrypt.filter.framing;

import com.google.protobuf.ByteString;
import java.nio.ByteBuffer;

/** A test {@link FrameHandler} that marks every frame REWRITE and answers it with {@link #rewrite}. */
@FunctionalInterface
public interface RewriteEveryFrame extends FrameHandler {
    @Override
    default FrameAction onFrameStart(int size, ByteBuffer head) {
        return FrameAction.REWRITE;
    }

    @Override
    ByteString rewrite(ByteBuffer frame, ByteString original) throws KafkaFrameException;
}
