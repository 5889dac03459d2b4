package io.meshcrypt.filter.crypto;

import com.google.crypto.tink.InsecureSecretKeyAccess;
import com.google.crypto.tink.Key;
import com.google.crypto.tink.KeyStatus;
import com.google.crypto.tink.KeysetHandle;
import com.google.crypto.tink.aead.AesGcmKey;
import com.google.crypto.tink.aead.AesGcmParameters;
import io.meshcrypt.filter.kms.Keysets;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import javax.crypto.AEADBadTagException;
import javax.crypto.spec.SecretKeySpec;

/**
 * Record values in envelope format version 1 ({@link ValueEnvelopeV1}): AES-256-GCM directly under the keys of a Tink
 * keyset, bound to their topic. Written when no {@code keys:} section is configured; read for older data. Thread-safe.
 *
 * <p>Keys come from a Tink keyset and the bytes after the envelope header are exactly Tink's AES-GCM ciphertext
 * (TINK output prefix), so Tink's own {@code Aead} decrypts them. The AES-GCM operation itself runs on the JCE
 * cipher with {@link ByteBuffer}s ({@link TopicBoundAesGcm}), which Tink's {@code byte[]} API cannot do. Key material
 * is resolved once, at construction; per record there is one table lookup and one allocation (the result).
 *
 * <p>Every encryption is counted against the primary key's {@link NonceBudget} (random nonces allow 2^32 per key): the
 * count of a keyset file is kept next to it and survives restarts; past the limit encrypting fails closed.
 */
public final class ValueCipherV1 implements ValueCipher {

    private static final int AES_256_KEY_BYTES = 32;
    private static final byte[] HEADER_V1 = {0x00, 0x4D, 0x43, 0x45, ValueEnvelopeV1.VERSION_1};

    private final int primaryKeyId;
    private final SecretKeySpec primaryKey;
    private final int[] keyIds;
    private final SecretKeySpec[] keys;
    private final TopicBoundAesGcm aesGcm = new TopicBoundAesGcm();
    private final NonceBudget budget;

    private ValueCipherV1(int primaryKeyId, int[] keyIds, SecretKeySpec[] keys, NonceBudget budget) {
        this.primaryKeyId = primaryKeyId;
        this.keyIds = keyIds;
        this.keys = keys;
        this.primaryKey = keys[indexOf(keyIds, primaryKeyId)];
        this.budget = budget;
    }

    /**
     * Loads a cleartext Tink JSON keyset (the local development key provider, see {@link Keysets}). Its primary key
     * may encrypt 2^32 records, counted in {@link NonceBudget#countFile} of it (created on the first encryption).
     */
    public static ValueCipherV1 fromKeysetFile(Path keysetFile) throws IOException, GeneralSecurityException {
        return fromKeysetFile(keysetFile, NonceBudget.Settings.defaults());
    }

    /** {@link #fromKeysetFile(Path)} with other limits for the primary key's count (tests). */
    public static ValueCipherV1 fromKeysetFile(Path keysetFile, NonceBudget.Settings limits)
            throws IOException, GeneralSecurityException {
        KeysetHandle keyset = Keysets.read(keysetFile);
        return of(keyset, NonceBudget.persisted(keysetFile, keyset.getPrimary().getId(), limits));
    }

    /**
     * A keyset without a file: its primary key's encryptions are counted in memory only, from zero.
     *
     * @param keyset every enabled key must be AES-256-GCM with the TINK output prefix (what envelope version 1
     *     specifies); disabled and destroyed keys are ignored and cannot decrypt
     */
    public static ValueCipherV1 fromKeysetHandle(KeysetHandle keyset) throws GeneralSecurityException {
        return of(keyset, NonceBudget.inMemory(keyset.getPrimary().getId(), NonceBudget.Settings.defaults()));
    }

    private static ValueCipherV1 of(KeysetHandle keyset, NonceBudget budget) throws GeneralSecurityException {
        List<Integer> ids = new ArrayList<>();
        List<SecretKeySpec> specs = new ArrayList<>();
        for (int i = 0; i < keyset.size(); i++) {
            KeysetHandle.Entry entry = keyset.getAt(i);
            if (!entry.getStatus().equals(KeyStatus.ENABLED)) {
                continue;
            }
            ids.add(entry.getId());
            specs.add(new SecretKeySpec(aes256GcmKeyBytes(entry.getId(), entry.getKey()), "AES"));
        }
        KeysetHandle.Entry primary = keyset.getPrimary();
        int[] keyIds = ids.stream().mapToInt(Integer::intValue).toArray();
        if (indexOf(keyIds, primary.getId()) < 0) {
            throw new GeneralSecurityException("keyset primary key " + Integer.toUnsignedString(primary.getId())
                    + " is not enabled");
        }
        return new ValueCipherV1(primary.getId(), keyIds, specs.toArray(SecretKeySpec[]::new), budget);
    }

    /** @return the id of the key new envelopes are encrypted with */
    public int primaryKeyId() {
        return primaryKeyId;
    }

    /** @return the ids of the keys that can decrypt, in keyset order */
    public int[] keyIds() {
        return keyIds.clone();
    }

    /**
     * Reads {@code plaintext} (position..limit) without moving its position.
     *
     * @return the envelope for {@code plaintext}, bound to {@code topic}: a heap buffer at position 0 of length
     *     {@code plaintext.remaining() + }{@link Envelope#OVERHEAD}
     * @throws NonceLimitException when the primary key may not encrypt another record
     */
    @Override
    public ByteBuffer encrypt(String topic, ByteBuffer plaintext) throws GeneralSecurityException {
        Objects.requireNonNull(topic, "topic");
        int length = plaintext.remaining();
        if (length > Integer.MAX_VALUE - 8 - ValueEnvelopeV1.OVERHEAD) {
            throw new GeneralSecurityException("value" + ValueEnvelope.onTopic(topic) + " is too large to encrypt (" + length + " bytes)");
        }
        budget.take();
        byte[] out = new byte[ValueEnvelopeV1.OVERHEAD + length];
        System.arraycopy(HEADER_V1, 0, out, 0, ValueEnvelope.HEADER_LENGTH);
        out[ValueEnvelopeV1.TINK_PREFIX_OFFSET] = ValueEnvelopeV1.TINK_PREFIX_MARKER;
        out[ValueEnvelopeV1.KEY_ID_OFFSET] = (byte) (primaryKeyId >>> 24);
        out[ValueEnvelopeV1.KEY_ID_OFFSET + 1] = (byte) (primaryKeyId >>> 16);
        out[ValueEnvelopeV1.KEY_ID_OFFSET + 2] = (byte) (primaryKeyId >>> 8);
        out[ValueEnvelopeV1.KEY_ID_OFFSET + 3] = (byte) primaryKeyId;
        Nonces.next(out, ValueEnvelopeV1.NONCE_OFFSET);
        aesGcm.seal(primaryKey, out, ValueEnvelopeV1.NONCE_OFFSET, HEADER_V1, topic, plaintext, ValueEnvelopeV1.CIPHERTEXT_OFFSET);
        return ByteBuffer.wrap(out);
    }

    /**
     * Reads {@code envelope} (position..limit) without moving its position.
     *
     * @return the plaintext, a heap buffer at position 0
     * @throws NotAnEnvelopeException when the value lacks the envelope magic
     * @throws UnsupportedEnvelopeVersionException when the format version is not 1
     * @throws UnknownKeyException when the key id is not an enabled key of this keyset
     * @throws EnvelopeException when the value is truncated, was tampered with, or belongs to another topic
     */
    @Override
    public ByteBuffer decrypt(String topic, ByteBuffer envelope) throws GeneralSecurityException {
        Objects.requireNonNull(topic, "topic");
        ValueEnvelopeV1.Info info = ValueEnvelopeV1.parse(envelope, topic);
        int index = indexOf(keyIds, info.keyId());
        if (index < 0) {
            throw new UnknownKeyException("value" + ValueEnvelope.onTopic(topic) + " was encrypted with key "
                    + info.keyIdText() + ", which is not an enabled key of the loaded keyset", info.keyId());
        }
        int start = envelope.position();
        ByteBuffer ciphertext = envelope.duplicate().position(start + ValueEnvelopeV1.CIPHERTEXT_OFFSET);
        try {
            return aesGcm.open(keys[index], envelope, start + ValueEnvelopeV1.NONCE_OFFSET, ByteBuffer.wrap(HEADER_V1),
                    topic, ciphertext, null);
        } catch (AEADBadTagException e) {
            throw new EnvelopeException("cannot decrypt value" + ValueEnvelope.onTopic(topic) + " with key " + info.keyIdText()
                    + ": authentication failed (value tampered with or truncated, or encrypted for another topic)");
        } catch (GeneralSecurityException e) {
            throw new EnvelopeException("cannot decrypt value" + ValueEnvelope.onTopic(topic) + " with key " + info.keyIdText()
                    + ": " + e.getClass().getSimpleName(), e);
        }
    }


    private static byte[] aes256GcmKeyBytes(int id, Key key) throws GeneralSecurityException {
        String idText = Integer.toUnsignedString(id);
        if (!(key instanceof AesGcmKey aesGcm)) {
            throw new GeneralSecurityException("keyset key " + idText + " is " + key.getParameters()
                    + "; meshcrypt envelope version 1 needs AES-256-GCM keys with the TINK output prefix");
        }
        AesGcmParameters p = aesGcm.getParameters();
        if (p.getKeySizeBytes() != AES_256_KEY_BYTES
                || p.getIvSizeBytes() != ValueEnvelope.NONCE_LENGTH
                || p.getTagSizeBytes() != ValueEnvelope.TAG_LENGTH
                || !p.getVariant().equals(AesGcmParameters.Variant.TINK)) {
            throw new GeneralSecurityException("keyset key " + idText + " is " + p
                    + "; meshcrypt envelope version 1 needs AES-256-GCM, 12-byte IV, 16-byte tag, TINK output prefix");
        }
        return aesGcm.getKeyBytes().toByteArray(InsecureSecretKeyAccess.get());
    }

    private static int indexOf(int[] ids, int id) {
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] == id) {
                return i;
            }
        }
        return -1;
    }

}
