package io.meshcrypt.filter.crypto;

import java.nio.ByteBuffer;
import java.security.GeneralSecurityException;

/** Encrypts and decrypts record values into the meshcrypt envelope, bound to their topic. Thread-safe. */
public final class RecordCipher {

    /** @return the envelope for {@code plaintext} (position..limit), bound to {@code topic} */
    public ByteBuffer encrypt(String topic, ByteBuffer plaintext) throws GeneralSecurityException {
        throw new UnsupportedOperationException("being written");
    }

    /** @return the plaintext of an envelope; fails when the key is unknown, the value was tampered with or belongs to another topic */
    public ByteBuffer decrypt(String topic, ByteBuffer envelope) throws GeneralSecurityException {
        throw new UnsupportedOperationException("being written");
    }
}
