package io.meshcrypt.filter.crypto;

/** The envelope names a key id that is not an enabled key of the loaded keyset (another keyset, or a removed key). */
public final class UnknownKeyException extends EnvelopeException {
    private final int keyId;

    public UnknownKeyException(String message, int keyId) {
        super(message);
        this.keyId = keyId;
    }

    /** @return the Tink key id named by the envelope */
    public int keyId() {
        return keyId;
    }
}
