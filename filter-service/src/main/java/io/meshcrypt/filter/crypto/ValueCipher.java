package io.meshcrypt.filter.crypto;

import java.nio.ByteBuffer;
import java.security.GeneralSecurityException;
import java.util.concurrent.CompletableFuture;

/** Encrypts and decrypts record values bound to their topic; what the proxy's value rewriters call per record. */
public interface ValueCipher {

    /** Reads {@code plaintext} (position..limit) without moving its position; returns a buffer at position 0. */
    ByteBuffer encrypt(String topic, ByteBuffer plaintext) throws GeneralSecurityException;

    /** Reads {@code envelope} (position..limit) without moving its position; returns a buffer at position 0. */
    ByteBuffer decrypt(String topic, ByteBuffer envelope) throws GeneralSecurityException;

    /**
     * As {@link #encrypt(String, ByteBuffer)}, written into {@code reuse} where the cipher can: the result is then a
     * view of its array, valid until {@code reuse} is written again.
     */
    default ByteBuffer encrypt(String topic, ByteBuffer plaintext, ReusableBuffer reuse) throws GeneralSecurityException {
        return encrypt(topic, plaintext);
    }

    /** As {@link #decrypt(String, ByteBuffer)}, written into {@code reuse} where the cipher can (see {@link #encrypt(String, ByteBuffer, ReusableBuffer)}). */
    default ByteBuffer decrypt(String topic, ByteBuffer envelope, ReusableBuffer reuse) throws GeneralSecurityException {
        return decrypt(topic, envelope);
    }

    /**
     * Makes sure {@link #encrypt} for {@code topic} will not have to wait for a key, without waiting itself.
     *
     * @return null when a key is ready now, else a future that completes when encrypting may be retried
     */
    default CompletableFuture<Void> prepareForEncryption(String topic) {
        return null;
    }
}
