package io.meshcrypt.filter.kms;

import java.security.GeneralSecurityException;

/**
 * A KMS call failed or was not attempted because the KMS is backing off after failures: transient, a later retry
 * may succeed. {@link KeyNotReadyException} is the subclass for "not yet": the call is still running or rate-limited.
 */
public class TransientKmsException extends GeneralSecurityException {
    public TransientKmsException(String message, Throwable cause) {
        super(message, cause);
    }
}
