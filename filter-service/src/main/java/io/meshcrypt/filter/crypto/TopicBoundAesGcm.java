package io.meshcrypt.filter.crypto;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.NoSuchAlgorithmException;
import java.util.concurrent.ConcurrentHashMap;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.NoSuchPaddingException;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * AES-GCM seal and open with associated data {@code header || UTF-8("topic:" + topic)}: what both record-value
 * envelope versions do, on the JCE cipher with {@link ByteBuffer}s (the plaintext is read in place from the record
 * batch, the ciphertext written straight behind the header). Thread-safe.
 */
final class TopicBoundAesGcm {
    private static final String TRANSFORMATION = "AES/GCM/NoPadding";
    private static final int TAG_BITS = ValueEnvelope.TAG_LENGTH * 8;
    /** Topic AAD is cached per topic name; the bound keeps a client inventing topic names from growing it forever. */
    private static final int TOPIC_AAD_CACHE_LIMIT = 4096;
    private static final ThreadLocal<Cipher> CIPHER = ThreadLocal.withInitial(TopicBoundAesGcm::newCipher);

    private final ConcurrentHashMap<String, byte[]> topicAad = new ConcurrentHashMap<>();

    /**
     * Encrypts {@code plaintext} (position..limit, not moved) into {@code out} from {@code offset}: ciphertext, then tag.
     *
     * @param header the associated data before the topic: the envelope's header, already in {@code out}
     */
    void seal(SecretKeySpec key, byte[] nonce, byte[] header, String topic, ByteBuffer plaintext, byte[] out, int offset)
            throws GeneralSecurityException {
        int length = plaintext.remaining();
        Cipher cipher = CIPHER.get();
        cipher.init(Cipher.ENCRYPT_MODE, key, new GCMParameterSpec(TAG_BITS, nonce));
        cipher.updateAAD(header);
        cipher.updateAAD(topicAad(topic));
        int written = cipher.doFinal(plaintext.duplicate(), ByteBuffer.wrap(out, offset, length + ValueEnvelope.TAG_LENGTH));
        if (written != length + ValueEnvelope.TAG_LENGTH) {
            throw new GeneralSecurityException("AES-GCM wrote " + written + " bytes, expected " + (length + ValueEnvelope.TAG_LENGTH));
        }
    }

    /**
     * Decrypts {@code ciphertext} (position..limit: ciphertext, then tag; consumed).
     *
     * @param header the associated data before the topic (position..limit; consumed)
     * @return the plaintext, a heap buffer at position 0
     * @throws AEADBadTagException when authentication fails (tampered, truncated, or another topic)
     */
    ByteBuffer open(SecretKeySpec key, byte[] nonce, ByteBuffer header, String topic, ByteBuffer ciphertext)
            throws GeneralSecurityException {
        ByteBuffer plaintext = ByteBuffer.allocate(ciphertext.remaining() - ValueEnvelope.TAG_LENGTH);
        Cipher cipher = CIPHER.get();
        cipher.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(TAG_BITS, nonce));
        cipher.updateAAD(header);
        cipher.updateAAD(topicAad(topic));
        cipher.doFinal(ciphertext, plaintext);
        return plaintext.flip();
    }

    private byte[] topicAad(String topic) {
        byte[] aad = topicAad.get(topic);
        if (aad == null) {
            aad = ("topic:" + topic).getBytes(StandardCharsets.UTF_8);
            if (topicAad.size() >= TOPIC_AAD_CACHE_LIMIT) {
                topicAad.clear();
            }
            topicAad.put(topic, aad);
        }
        return aad;
    }

    private static Cipher newCipher() {
        try {
            return Cipher.getInstance(TRANSFORMATION);
        } catch (NoSuchAlgorithmException | NoSuchPaddingException e) {
            throw new IllegalStateException(TRANSFORMATION + " is not available in this JVM", e);
        }
    }
}
