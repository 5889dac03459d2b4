package io.meshcrypt.filter.http;

import java.util.concurrent.CompletableFuture;

/**
 * A body's rewrite needs a data key the KMS is still producing. Unchecked so that it passes the JSON engine's
 * handling of crypto errors untouched; the exchange is left as it was before the message, and the stream answers the
 * same message again once {@link #ready()} completes, without its worker ever waiting.
 */
final class KeyWait extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final transient CompletableFuture<Void> ready;

    KeyWait(CompletableFuture<Void> ready) {
        super("data key not ready", null, false, false);
        this.ready = ready;
    }

    CompletableFuture<Void> ready() {
        return ready;
    }
}
