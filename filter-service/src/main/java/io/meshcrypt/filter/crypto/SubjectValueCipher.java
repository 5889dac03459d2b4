package io.meshcrypt.filter.crypto;

import io.meshcrypt.filter.subjects.SubjectKeyStore;
import java.nio.ByteBuffer;
import java.security.GeneralSecurityException;
import java.util.Objects;
import javax.crypto.AEADBadTagException;

/**
 * Record values under per-subject keys ({@link ValueEnvelopeV3}): encrypts with the key of the record's subject from
 * the {@link SubjectKeyStore}, decrypts with the key the envelope names, and tells a forgotten subject apart (the
 * reader then gets the policy's {@code forgotten:} replacement) from a failure. Never waits: a key not ready throws
 * {@link io.meshcrypt.filter.kms.KeyNotReadyException} as the DEK paths do. Thread-safe.
 *
 * <p>JSON fields under subject keys ({@link #encryptField}) are version-3 envelopes too, bound also to their scope:
 * associated data {@code header || "topic:" binding || 0x00 || scope}. A field written under one scope never
 * decrypts under a rule naming another (it fails, never reads as plaintext), and a whole-value envelope pasted into a
 * field does not decrypt either.
 */
public final class SubjectValueCipher {
    private final SubjectKeyStore store;
    private final TopicBoundAesGcm aesGcm = new TopicBoundAesGcm();

    public SubjectValueCipher(SubjectKeyStore store) {
        this.store = Objects.requireNonNull(store, "store");
        // A forgotten subject's key must not outlive its marker in a cipher's key schedule.
        store.onForget(KeyedCiphers::dropAll);
    }

    public SubjectKeyStore store() {
        return store;
    }

    /**
     * @param scope the policy entry's topic pattern
     * @param subjectId the subject id's bytes (position..limit, not moved)
     * @param plaintext not moved
     * @return the version-3 envelope, at position 0 (a view of {@code reuse}'s array when given)
     * @throws SubjectKeyStore.SubjectForgottenException when the subject was forgotten: the record is refused
     */
    public ByteBuffer encrypt(String topic, String scope, ByteBuffer subjectId, ByteBuffer plaintext,
                              ReusableBuffer reuse) throws GeneralSecurityException {
        return seal(topic, scope, null, subjectId, plaintext, reuse);
    }

    /**
     * A JSON field's value under its subject's key, bound to the binding (the topic, or the HTTP rule's binding) and
     * to the scope.
     *
     * @param subjectId the subject id's bytes (position..limit, not moved)
     * @param plaintext the field's JSON text (not moved)
     * @return a new version-3 envelope at position 0
     * @throws SubjectKeyStore.SubjectForgottenException when the subject was forgotten: the document is refused
     */
    public ByteBuffer encryptField(String binding, String scope, ByteBuffer subjectId, ByteBuffer plaintext)
            throws GeneralSecurityException {
        return seal(binding, scope, scopeName(scope), subjectId, plaintext, null);
    }

    /**
     * @param envelope a field's version-3 envelope (position..limit, not moved)
     * @param scope the scope the rule reading it names: another scope's envelope fails to authenticate
     * @return the field's JSON text at position 0, or null when the subject was forgotten
     * @throws EnvelopeException when it is truncated, tampered with, or was written for another binding or scope
     */
    public ByteBuffer decryptField(String binding, String scope, ByteBuffer envelope) throws GeneralSecurityException {
        return open(binding, scopeName(scope), envelope, null);
    }

    private static ByteBuffer scopeName(String scope) {
        return ByteBuffer.wrap(scope.getBytes(java.nio.charset.StandardCharsets.UTF_8));
    }

    private ByteBuffer seal(String topic, String scope, ByteBuffer scopeName, ByteBuffer subjectId,
                            ByteBuffer plaintext, ReusableBuffer reuse) throws GeneralSecurityException {
        SubjectKeyStore.SubjectKey key = store.forEncryption(scope, subjectId);
        int length = plaintext.remaining();
        if (length > Integer.MAX_VALUE - 8 - ValueEnvelopeV3.OVERHEAD) {
            throw new GeneralSecurityException("value" + ValueEnvelope.onTopic(topic) + " is too large to encrypt ("
                    + length + " bytes)");
        }
        int total = ValueEnvelopeV3.OVERHEAD + length;
        byte[] out = reuse == null ? new byte[total] : reuse.atLeast(total);
        ValueEnvelopeV3.writeHeader(out, key.ref(), key.keyId());
        Nonces.next(out, ValueEnvelopeV3.HEADER_LENGTH);
        aesGcm.seal(key.key(), out, ValueEnvelopeV3.HEADER_LENGTH, out, ValueEnvelopeV3.HEADER_LENGTH, topic, scopeName,
                plaintext, ValueEnvelopeV3.HEADER_LENGTH + ValueEnvelope.NONCE_LENGTH);
        return ByteBuffer.wrap(out, 0, total);
    }

    /**
     * @param envelope a version-3 envelope ({@link ValueEnvelopeV3#isVersion3}), position..limit, not moved
     * @return the plaintext at position 0, or null when the subject was forgotten
     * @throws EnvelopeException when it is truncated, tampered with, or was written for another topic
     */
    public ByteBuffer decrypt(String topic, ByteBuffer envelope, ReusableBuffer reuse) throws GeneralSecurityException {
        return open(topic, null, envelope, reuse);
    }

    private ByteBuffer open(String topic, ByteBuffer scopeName, ByteBuffer envelope, ReusableBuffer reuse)
            throws GeneralSecurityException {
        if (!ValueEnvelopeV3.isVersion3(envelope)) {
            throw new EnvelopeException("value" + ValueEnvelope.onTopic(topic) + " is not a version-3 meshcrypt envelope");
        }
        if (envelope.remaining() < ValueEnvelopeV3.OVERHEAD) {
            throw new EnvelopeException("value" + ValueEnvelope.onTopic(topic) + " is a truncated version-3 meshcrypt"
                    + " envelope (" + envelope.remaining() + " bytes)");
        }
        int start = envelope.position();
        javax.crypto.spec.SecretKeySpec key = store.forDecryption(envelope, start + ValueEnvelopeV3.REF_OFFSET,
                ValueEnvelopeV3.keyId(envelope));
        if (key == null) {
            return null;
        }
        ByteBuffer header = envelope.duplicate().limit(start + ValueEnvelopeV3.HEADER_LENGTH);
        ByteBuffer ciphertext = envelope.duplicate()
                .position(start + ValueEnvelopeV3.HEADER_LENGTH + ValueEnvelope.NONCE_LENGTH);
        try {
            return aesGcm.open(key, envelope, start + ValueEnvelopeV3.HEADER_LENGTH, header, topic, scopeName, ciphertext,
                    reuse);
        } catch (AEADBadTagException e) {
            throw new EnvelopeException("cannot decrypt value" + ValueEnvelope.onTopic(topic) + " with its subject key:"
                    + " authentication failed (value tampered with or truncated, or encrypted for another topic"
                    + (scopeName == null ? ")" : " or another subject scope, or a whole value moved into a field)"));
        }
    }
}
