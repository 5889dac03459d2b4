package io.meshcrypt.filter.kms;

import java.security.GeneralSecurityException;

/** The KEK is missing, disabled or rejects the wrapped DEK: a permanent failure for that key, not an outage. */
public final class KekUnavailableException extends GeneralSecurityException {
    public KekUnavailableException(String message) {
        super(message);
    }

    public KekUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
