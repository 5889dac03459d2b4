package io.meshcrypt.filter.framing;

/** A frame larger than the connection may hold for rewriting; the connection must be closed (counted apart). */
public final class FrameTooLargeException extends KafkaFrameException {
    public FrameTooLargeException(String message) {
        super(message);
    }
}
