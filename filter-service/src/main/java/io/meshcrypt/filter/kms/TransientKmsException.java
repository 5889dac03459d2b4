package io.meshcrypt.filter.kms;

import java.security.GeneralSecurityException;

/**
 * The KMS did not answer: a call failed, timed out, or was not attempted because the KMS is backing off after
 * failures. Transient, a later retry may succeed (Fetch answers a retriable error); unlike {@link KekRefusedException}. {@link KeyNotReadyException} is the subclass for "not yet": the call is still running or rate-limited.
 */
public class TransientKmsException extends GeneralSecurityException {
    public TransientKmsException(String message, Throwable cause) {
        super(message, cause);
    }
}
