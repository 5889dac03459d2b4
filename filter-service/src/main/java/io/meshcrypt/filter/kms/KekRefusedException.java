package io.meshcrypt.filter.kms;

import java.security.GeneralSecurityException;

/** The KEK is missing, disabled or rejects the wrapped DEK: a permanent failure for that key, not an outage. */
public final class KekRefusedException extends GeneralSecurityException {
    public KekRefusedException(String message) {
        super(message);
    }

    public KekRefusedException(String message, Throwable cause) {
        super(message, cause);
    }
}
