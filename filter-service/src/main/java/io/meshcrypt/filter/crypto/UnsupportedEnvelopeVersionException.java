package io.meshcrypt.filter.crypto;

/** The value carries the meshcrypt magic but a format version this reader does not know; it is never guessed at. */
public final class UnsupportedEnvelopeVersionException extends EnvelopeException {
    private final int version;

    public UnsupportedEnvelopeVersionException(String message, int version) {
        super(message);
        this.version = version;
    }

    /** @return the unknown format version byte (0-255) */
    public int version() {
        return version;
    }
}
