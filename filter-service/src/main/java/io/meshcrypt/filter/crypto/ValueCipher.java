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

    /** @return whether {@link #encryptHeader} and {@link #decryptHeader} work (envelope version 2) */
    default boolean encryptsHeaders() {
        return false;
    }

    /**
     * Encrypts the value of record header {@code name} (its key bytes as in the record, position..limit; neither buffer
     * moved) into a {@link HeaderEnvelope} bound to the topic and that name, written into {@code reuse} where the
     * cipher can (see {@link #encrypt(String, ByteBuffer, ReusableBuffer)}).
     *
     * @throws GeneralSecurityException also when this cipher writes no header envelopes (version 1 only)
     */
    default ByteBuffer encryptHeader(String topic, ByteBuffer name, ByteBuffer plaintext, ReusableBuffer reuse)
            throws GeneralSecurityException {
        throw new GeneralSecurityException("record headers are encrypted with envelope version 2 only: configure keys:");
    }

    /**
     * Decrypts a {@link HeaderEnvelope} found in record header {@code name} (see {@link #encryptHeader}).
     *
     * @throws NotAnEnvelopeException when the value lacks the header-envelope magic
     * @throws EnvelopeException when it is truncated, tampered with, or was written for another topic or header name
     */
    default ByteBuffer decryptHeader(String topic, ByteBuffer name, ByteBuffer envelope, ReusableBuffer reuse)
            throws GeneralSecurityException {
        throw new GeneralSecurityException("record headers are encrypted with envelope version 2 only: configure keys:");
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
