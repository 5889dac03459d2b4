package io.meshcrypt.filter.kms;

import java.security.GeneralSecurityException;

/**
 * The KMS answered and refused: the KEK is missing, disabled or rejects the wrapped DEK. Permanent for that key (Fetch
 * does not answer it as retriable); unlike {@link TransientKmsException}, where the KMS did not answer.
 */
public final class KekRefusedException extends GeneralSecurityException {
    public KekRefusedException(String message) {
        super(message);
    }

    public KekRefusedException(String message, Throwable cause) {
        super(message, cause);
    }
}
