package io.meshcrypt.filter.framing;

/** A frame that cannot be handled safely; the connection must be closed. */
public class KafkaFrameException extends Exception {
    public KafkaFrameException(String message) {
        super(message);
    }

    public KafkaFrameException(String message, Throwable cause) {
        super(message, cause);
    }
}
