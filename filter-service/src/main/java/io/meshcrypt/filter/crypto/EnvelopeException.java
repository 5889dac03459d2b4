package io.meshcrypt.filter.crypto;

import java.security.GeneralSecurityException;

/**
 * A record value could not be decrypted: truncated, tampered with, or bound to another topic. Messages name the
 * topic and key id, never plaintext or key material. Subclasses mark the causes a caller may handle differently.
 */
public class EnvelopeException extends GeneralSecurityException {
    public EnvelopeException(String message) {
        super(message);
    }

    public EnvelopeException(String message, Throwable cause) {
        super(message, cause);
    }
}
