package io.meshcrypt.filter.crypto;

import java.security.GeneralSecurityException;

/**
 * A version-1 key may not encrypt another record: it reached the number of encryptions its random nonces allow, or its
 * count cannot be kept ({@link NonceBudget}). Not transient: nothing is encrypted until the keyset is rotated or version 2
 * is configured, so the data path answers it as any other key failure (a Produce closes its connection).
 */
public final class NonceLimitException extends GeneralSecurityException {
    public NonceLimitException(String message) {
        super(message);
    }
}
