package io.meshcrypt.filter.crypto;

/** The value does not start with the meshcrypt magic: it was never encrypted by meshcrypt (or lost its header). */
public final class NotAnEnvelopeException extends EnvelopeException {
    public NotAnEnvelopeException(String message) {
        super(message);
    }
}
