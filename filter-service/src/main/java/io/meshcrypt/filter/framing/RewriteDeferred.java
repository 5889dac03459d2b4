package io.meshcrypt.filter.framing;

import java.util.Objects;
import java.util.concurrent.CompletionStage;

/**
 * A frame's rewrite cannot finish without waiting (for a data key the KMS is still producing), and a connection
 * thread never waits: nothing of the frame was forwarded, and the stream that threw is suspended until its owner
 * calls {@code resume()} once {@link #ready()} has completed (normally or not: the retry then sees the real error).
 * It is a {@link KafkaFrameException} so that code unaware of deferral fails closed: the connection is reset.
 */
public final class RewriteDeferred extends KafkaFrameException {
    private static final long serialVersionUID = 1L;

    private final transient CompletionStage<?> ready;

    public RewriteDeferred(String reason, CompletionStage<?> ready) {
        super(reason);
        this.ready = Objects.requireNonNull(ready, "ready");
    }

    /** Completes when a retry may succeed. */
    public CompletionStage<?> ready() {
        return ready;
    }
}
