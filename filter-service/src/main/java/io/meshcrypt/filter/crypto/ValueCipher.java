package io.meshcrypt.filter.crypto;

import java.nio.ByteBuffer;
import java.security.GeneralSecurityException;

/** Encrypts and decrypts record values bound to their topic; what the proxy's value rewriters call per record. */
public interface ValueCipher {

    /** Reads {@code plaintext} (position..limit) without moving its position; returns a buffer at position 0. */
    ByteBuffer encrypt(String topic, ByteBuffer plaintext) throws GeneralSecurityException;

    /** Reads {@code envelope} (position..limit) without moving its position; returns a buffer at position 0. */
    ByteBuffer decrypt(String topic, ByteBuffer envelope) throws GeneralSecurityException;
}
