package io.meshcrypt.filter.kms;

import java.security.GeneralSecurityException;

/** A KMS call failed or was not attempted because the KMS is backing off after failures. */
public final class KmsUnavailableException extends GeneralSecurityException {
    public KmsUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
