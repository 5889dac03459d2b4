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
 * envelope versions do, on the JCE cipher (the plaintext is read in place from the record batch, the ciphertext written
 * straight behind the header, the nonce read where it lies). Per thread, one cipher per recently used key
 * ({@link KeyedCiphers}: per-subject keys change key almost every record). Thread-safe.
 */
final class TopicBoundAesGcm {
    private static final String TRANSFORMATION = "AES/GCM/NoPadding";
    private static final int TAG_BITS = ValueEnvelope.TAG_LENGTH * 8;
    /** Topic AAD is cached per topic name; the bound keeps a client inventing topic names from growing it forever. */
    private static final int TOPIC_AAD_CACHE_LIMIT = 4096;
    private static final ThreadLocal<PerThread> PER_THREAD = ThreadLocal.withInitial(PerThread::new);
    /** Room for the associated data of a typical envelope; it grows for longer KEK ids, wrapped DEKs or names. */
    private static final int AAD_CAPACITY = 512;
    /** Above this an array grown for unusually long associated data is dropped at the next ordinary record. */
    private static final int MAX_RETAINED_AAD = 16 * 1024;

    private final ConcurrentHashMap<String, byte[]> topicAad = new ConcurrentHashMap<>();

    /**
     * Encrypts {@code plaintext} (position..limit, not moved) into {@code out} from {@code offset}: ciphertext, then tag.
     * Array-backed buffers take the cipher's array path (a read-only or direct view would be copied first).
     *
     * @param nonceOffset where the 12-byte nonce already is in {@code out}
     * @param header the associated data before the topic: the envelope's header, already in {@code out}
     */
    void seal(SecretKeySpec key, byte[] out, int nonceOffset, byte[] header, String topic, ByteBuffer plaintext,
              int offset) throws GeneralSecurityException {
        seal(key, out, nonceOffset, header, header.length, topic, null, plaintext, offset);
    }

    /**
     * As {@link #seal(SecretKeySpec, byte[], int, byte[], String, ByteBuffer, int)}, with the associated data
     * {@code header[0, headerLength) || "topic:" + topic}, followed, when {@code headerName} is not null, by
     * {@code 0x00 || headerName} (position..limit, not moved): a record-header envelope ({@link HeaderEnvelope}).
     */
    void seal(SecretKeySpec key, byte[] out, int nonceOffset, byte[] header, int headerLength, String topic,
              ByteBuffer headerName, ByteBuffer plaintext, int offset) throws GeneralSecurityException {
        int length = plaintext.remaining();
        PerThread state = PER_THREAD.get();
        Cipher cipher = state.ciphers.forKey(key);
        cipher.init(Cipher.ENCRYPT_MODE, key, new GCMParameterSpec(TAG_BITS, out, nonceOffset, ValueEnvelope.NONCE_LENGTH));
        state.aad(header, 0, headerLength, topicAad(topic), headerName);
        cipher.updateAAD(state.aad, 0, state.aadLength);
        int written = plaintext.hasArray()
                ? cipher.doFinal(plaintext.array(), plaintext.arrayOffset() + plaintext.position(), length, out, offset)
                : cipher.doFinal(plaintext.duplicate(), ByteBuffer.wrap(out, offset, length + ValueEnvelope.TAG_LENGTH));
        if (written != length + ValueEnvelope.TAG_LENGTH) {
            throw new GeneralSecurityException("AES-GCM wrote " + written + " bytes, expected " + (length + ValueEnvelope.TAG_LENGTH));
        }
    }

    /**
     * Decrypts {@code ciphertext} (position..limit: ciphertext, then tag; not moved).
     *
     * @param nonce the 12-byte nonce at {@code nonceAt} of this buffer (its position is ignored)
     * @param header the associated data before the topic (position..limit; not moved)
     * @param reuse where the plaintext is written, or null for a new array
     * @return the plaintext, a heap buffer at position 0 (a view of {@code reuse}'s array when given)
     * @throws AEADBadTagException when authentication fails (tampered, truncated, or another topic)
     */
    ByteBuffer open(SecretKeySpec key, ByteBuffer nonce, int nonceAt, ByteBuffer header, String topic,
                    ByteBuffer ciphertext, ReusableBuffer reuse) throws GeneralSecurityException {
        return open(key, nonce, nonceAt, header, topic, null, ciphertext, reuse);
    }

    /**
     * As {@link #open(SecretKeySpec, ByteBuffer, int, ByteBuffer, String, ByteBuffer, ReusableBuffer)}; when
     * {@code headerName} is not null the associated data ends in {@code 0x00 || headerName} (see {@link #seal}).
     */
    ByteBuffer open(SecretKeySpec key, ByteBuffer nonce, int nonceAt, ByteBuffer header, String topic,
                    ByteBuffer headerName, ByteBuffer ciphertext, ReusableBuffer reuse) throws GeneralSecurityException {
        int length = ciphertext.remaining() - ValueEnvelope.TAG_LENGTH;
        if (length < 0) {
            throw new AEADBadTagException("ciphertext shorter than the tag");
        }
        byte[] out = reuse == null ? new byte[length] : reuse.atLeast(length);
        PerThread state = PER_THREAD.get();
        Cipher cipher = state.ciphers.forKey(key);
        GCMParameterSpec iv;
        if (nonce.hasArray()) {
            iv = new GCMParameterSpec(TAG_BITS, nonce.array(), nonce.arrayOffset() + nonceAt, ValueEnvelope.NONCE_LENGTH);
        } else {
            byte[] copy = new byte[ValueEnvelope.NONCE_LENGTH];
            nonce.get(nonceAt, copy);
            iv = new GCMParameterSpec(TAG_BITS, copy);
        }
        cipher.init(Cipher.DECRYPT_MODE, key, iv);
        state.aad(header, topicAad(topic), headerName);
        cipher.updateAAD(state.aad, 0, state.aadLength);
        int written = ciphertext.hasArray()
                ? cipher.doFinal(ciphertext.array(), ciphertext.arrayOffset() + ciphertext.position(), ciphertext.remaining(), out, 0)
                : cipher.doFinal(ciphertext.duplicate(), ByteBuffer.wrap(out, 0, length));
        if (written != length) {
            throw new GeneralSecurityException("AES-GCM wrote " + written + " bytes, expected " + length);
        }
        return reuse == null ? ByteBuffer.wrap(out, 0, length) : reuse.view(length);
    }

    /**
     * A thread's cipher, and the associated data of its current operation gathered into one array: the JCE buffers
     * associated data in an array sized by the first {@code updateAAD} call and copies it into a larger one at each
     * further call, so one call per record allocates least.
     */
    private static final class PerThread {
        final KeyedCiphers ciphers = new KeyedCiphers(TopicBoundAesGcm::newCipher);
        byte[] aad = new byte[AAD_CAPACITY];
        int aadLength;

        /** {@code header[from, from + length) || topicAad}, then {@code 0x00 || name} when a name is given. */
        void aad(byte[] header, int from, int length, byte[] topicAad, ByteBuffer name) {
            int total = length + topicAad.length + (name == null ? 0 : 1 + name.remaining());
            if (aad.length < total) {
                aad = new byte[Math.max(total, 2 * aad.length)];
            } else if (aad.length > MAX_RETAINED_AAD && total <= AAD_CAPACITY && header != aad) {
                // A client's one long header name must not pin a large array on this thread for good.
                aad = new byte[AAD_CAPACITY];
            }
            System.arraycopy(header, from, aad, 0, length);
            System.arraycopy(topicAad, 0, aad, length, topicAad.length);
            aadLength = length + topicAad.length;
            if (name != null) {
                aad[aadLength++] = HeaderEnvelope.NAME_SEPARATOR;
                name.get(name.position(), aad, aadLength, name.remaining());
                aadLength += name.remaining();
            }
        }

        /** As {@link #aad(byte[], int, int, byte[], ByteBuffer)}, the header being position..limit of a buffer. */
        void aad(ByteBuffer header, byte[] topicAad, ByteBuffer name) {
            int length = header.remaining();
            if (header.hasArray()) {
                aad(header.array(), header.arrayOffset() + header.position(), length, topicAad, name);
                return;
            }
            if (aad.length < length) {
                aad = new byte[Math.max(length, 2 * aad.length)];
            }
            header.get(header.position(), aad, 0, length);
            aad(aad, 0, length, topicAad, name);
        }
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
