package io.meshcrypt.filter.crypto;

import io.meshcrypt.filter.kms.KeyNotReadyException;
import java.nio.ByteBuffer;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import javax.crypto.AEADBadTagException;
import javax.crypto.spec.SecretKeySpec;

/**
 * Record values in envelope format version 2 ({@link ValueEnvelopeV2}): written with per-topic DEKs from a
 * {@link DekManager}; reads version 2 and, through a {@link ValueCipherV1} over the old keyset, version 1. Thread-safe.
 */
public final class ValueCipherV2 implements ValueCipher {

    private final DekManager deks;
    private final ValueCipherV1 v1;
    private final TopicBoundAesGcm aesGcm = new TopicBoundAesGcm();

    /** @param v1 decrypts version-1 envelopes; null when the deployment never wrote any (they then fail to decrypt) */
    public ValueCipherV2(DekManager deks, ValueCipherV1 v1) {
        this.deks = Objects.requireNonNull(deks, "deks");
        this.v1 = v1;
    }

    public DekManager deks() {
        return deks;
    }

    /**
     * A view of this cipher that waits for keys instead of throwing {@link KeyNotReadyException}: each call waits at
     * most {@code timeout} in total. For callers that may block (the CLI, tests, startup); never for a connection
     * worker, which must park the frame and retry when {@link KeyNotReadyException#ready()} completes.
     */
    public ValueCipher blocking(Duration timeout) {
        Objects.requireNonNull(timeout, "timeout");
        ValueCipherV2 self = this;
        return new ValueCipher() {
            @Override
            public ByteBuffer encrypt(String topic, ByteBuffer plaintext) throws GeneralSecurityException {
                return KeyNotReadyException.awaitBlocking(() -> self.encrypt(topic, plaintext), timeout);
            }

            @Override
            public ByteBuffer decrypt(String topic, ByteBuffer envelope) throws GeneralSecurityException {
                return KeyNotReadyException.awaitBlocking(() -> self.decrypt(topic, envelope), timeout);
            }

            @Override
            public boolean encryptsHeaders() {
                return true;
            }

            @Override
            public ByteBuffer encryptHeader(String topic, ByteBuffer name, ByteBuffer plaintext, ReusableBuffer reuse)
                    throws GeneralSecurityException {
                return KeyNotReadyException.awaitBlocking(() -> self.encryptHeader(topic, name, plaintext, reuse), timeout);
            }

            @Override
            public ByteBuffer decryptHeader(String topic, ByteBuffer name, ByteBuffer envelope, ReusableBuffer reuse)
                    throws GeneralSecurityException {
                return KeyNotReadyException.awaitBlocking(() -> self.decryptHeader(topic, name, envelope, reuse), timeout);
            }
        };
    }

    /**
     * Never waits for the KMS.
     *
     * @throws KeyNotReadyException when the topic's DEK is being generated: retry once its future completes
     * @throws io.meshcrypt.filter.kms.TransientKmsException when the KMS cannot provide a DEK
     */
    @Override
    public CompletableFuture<Void> prepareForEncryption(String topic) {
        return deks.prepareForEncryption(topic);
    }

    @Override
    public ByteBuffer encrypt(String topic, ByteBuffer plaintext) throws GeneralSecurityException {
        return encrypt(topic, plaintext, null);
    }

    @Override
    public ByteBuffer encrypt(String topic, ByteBuffer plaintext, ReusableBuffer reuse) throws GeneralSecurityException {
        Objects.requireNonNull(topic, "topic");
        Dek dek = deks.forEncryption(topic);
        int length = plaintext.remaining();
        byte[] header = dek.header;
        int overhead = header.length + ValueEnvelope.NONCE_LENGTH + ValueEnvelope.TAG_LENGTH;
        if (length > Integer.MAX_VALUE - 8 - overhead) {
            throw new GeneralSecurityException("value" + ValueEnvelope.onTopic(topic) + " is too large to encrypt (" + length + " bytes)");
        }
        int total = overhead + length;
        byte[] out = reuse == null ? new byte[total] : reuse.atLeast(total);
        System.arraycopy(header, 0, out, 0, header.length);
        Nonces.next(out, header.length);
        aesGcm.seal(dek.key, out, header.length, header, topic, plaintext, header.length + ValueEnvelope.NONCE_LENGTH);
        return reuse == null ? ByteBuffer.wrap(out, 0, total) : reuse.view(total);
    }

    @Override
    public boolean encryptsHeaders() {
        return true;
    }

    /** The topic's current DEK, as for values (each header counts as one use of it); the name is bound as well. */
    @Override
    public ByteBuffer encryptHeader(String topic, ByteBuffer name, ByteBuffer plaintext, ReusableBuffer reuse)
            throws GeneralSecurityException {
        Objects.requireNonNull(topic, "topic");
        Objects.requireNonNull(name, "name");
        Dek dek = deks.forEncryption(topic);
        int length = plaintext.remaining();
        int headerLength = dek.header.length;
        int overhead = headerLength + ValueEnvelope.NONCE_LENGTH + ValueEnvelope.TAG_LENGTH;
        if (length > Integer.MAX_VALUE - 8 - overhead) {
            throw new GeneralSecurityException("header value" + ValueEnvelope.onTopic(topic) + " is too large to encrypt ("
                    + length + " bytes)");
        }
        int total = overhead + length;
        byte[] out = reuse == null ? new byte[total] : reuse.atLeast(total);
        System.arraycopy(dek.header, 0, out, 0, headerLength);
        HeaderEnvelope.writePrefix(out);
        Nonces.next(out, headerLength);
        aesGcm.seal(dek.key, out, headerLength, out, headerLength, topic, name, plaintext,
                headerLength + ValueEnvelope.NONCE_LENGTH);
        return reuse == null ? ByteBuffer.wrap(out, 0, total) : reuse.view(total);
    }

    @Override
    public ByteBuffer decryptHeader(String topic, ByteBuffer name, ByteBuffer envelope, ReusableBuffer reuse)
            throws GeneralSecurityException {
        Objects.requireNonNull(topic, "topic");
        Objects.requireNonNull(name, "name");
        if (!HeaderEnvelope.isHeaderEnvelope(envelope)) {
            throw new NotAnEnvelopeException("header value" + ValueEnvelope.onTopic(topic) + " is not a meshcrypt header"
                    + " envelope (" + envelope.remaining() + " bytes without the \\0MCH magic)");
        }
        int version = Byte.toUnsignedInt(envelope.get(envelope.position() + 4));
        if (version != HeaderEnvelope.VERSION_1) {
            throw new UnsupportedEnvelopeVersionException("header value" + ValueEnvelope.onTopic(topic)
                    + " uses meshcrypt header envelope version " + version + "; this reader supports version 1", version);
        }
        // The layout from byte 5 is version 2's: the same DEK cache serves values and headers.
        return open(topic, name, envelope, reuse);
    }

    /**
     * @throws NotAnEnvelopeException when the value lacks the envelope magic
     * @throws UnsupportedEnvelopeVersionException for versions other than 1 and 2 (and 1 without a v1 keyset)
     * @throws EnvelopeException when the value is truncated, tampered with, or belongs to another topic
     * @throws io.meshcrypt.filter.crypto.UnknownKekException (an EnvelopeException) when it names a KEK the
     *     configuration does not know; no KMS call is made
     * @throws io.meshcrypt.filter.kms.KekRefusedException when its KEK is missing or disabled
     * @throws KeyNotReadyException when its DEK is not cached and is being unwrapped: retry once its future completes
     * @throws io.meshcrypt.filter.kms.TransientKmsException when its DEK is not cached and the KMS is down
     */
    @Override
    public ByteBuffer decrypt(String topic, ByteBuffer envelope) throws GeneralSecurityException {
        return decrypt(topic, envelope, null);
    }

    /** As {@link #decrypt(String, ByteBuffer)}; version-2 plaintexts are written into {@code reuse} when given. */
    @Override
    public ByteBuffer decrypt(String topic, ByteBuffer envelope, ReusableBuffer reuse) throws GeneralSecurityException {
        Objects.requireNonNull(topic, "topic");
        if (!ValueEnvelope.isEnvelope(envelope)) {
            throw new NotAnEnvelopeException("value" + ValueEnvelope.onTopic(topic) + " is not a meshcrypt envelope ("
                    + envelope.remaining() + " bytes without the \\0MCE magic)");
        }
        int version = Byte.toUnsignedInt(envelope.get(envelope.position() + 4));
        if (version == ValueEnvelopeV1.VERSION_1 && v1 != null) {
            return v1.decrypt(topic, envelope);
        }
        if (version != ValueEnvelopeV2.VERSION_2) {
            throw new UnsupportedEnvelopeVersionException("value" + ValueEnvelope.onTopic(topic) + " uses meshcrypt envelope version "
                    + version + "; this reader supports version 2" + (v1 == null ? " (no version-1 keyset configured)" : " and 1"), version);
        }
        return open(topic, null, envelope, reuse);
    }

    /**
     * Decrypts a version-2 value envelope, or with a {@code headerName} a header envelope (version 2's layout from byte
     * 5), whose magic and version were checked. A run of records under one DEK compares the key section with the last
     * one and parses nothing.
     */
    private ByteBuffer open(String topic, ByteBuffer headerName, ByteBuffer envelope, ReusableBuffer reuse)
            throws GeneralSecurityException {
        int keySection = ValueEnvelopeV2.keySectionLength(envelope);
        SecretKeySpec key = keySection < 0 ? null : deks.cachedForDecryption(topic, envelope, keySection);
        int headerLength;
        if (key != null) {
            headerLength = ValueEnvelopeV2.KEK_ID_LENGTH_OFFSET + keySection;
        } else {
            ValueEnvelopeV2.Info info = parse(envelope, topic, headerName);
            key = deks.forDecryption(topic, envelope, info);
            headerLength = info.headerLength();
        }
        int start = envelope.position();
        int bodyStart = start + headerLength + ValueEnvelope.NONCE_LENGTH;
        ByteBuffer ciphertext = reuse == null ? envelope.duplicate().position(bodyStart)
                : reuse.bodyView(envelope, bodyStart, envelope.limit());
        ByteBuffer header = reuse == null ? envelope.duplicate().limit(start + headerLength)
                : reuse.headerView(envelope, start, start + headerLength);
        try {
            return aesGcm.open(key, envelope, start + headerLength, header, topic, headerName, ciphertext, reuse);
        } catch (AEADBadTagException e) {
            ValueEnvelopeV2.Info info = parse(envelope, topic, headerName);
            throw new EnvelopeException("cannot decrypt " + (headerName == null ? "value" : "header value")
                    + ValueEnvelope.onTopic(topic) + " with DEK " + info.dekIdText() + " (KEK " + info.kekIdText()
                    + "): authentication failed (" + (headerName == null
                    ? "value tampered with or truncated, or encrypted for another topic)"
                    : "tampered with or truncated, or encrypted for another header name or topic)"));
        } catch (GeneralSecurityException e) {
            ValueEnvelopeV2.Info info = parse(envelope, topic, headerName);
            throw new EnvelopeException("cannot decrypt " + (headerName == null ? "value" : "header value")
                    + ValueEnvelope.onTopic(topic) + " with DEK " + info.dekIdText() + " (KEK " + info.kekIdText() + "): "
                    + e.getClass().getSimpleName(), e);
        }
    }

    private static ValueEnvelopeV2.Info parse(ByteBuffer envelope, String topic, ByteBuffer headerName)
            throws EnvelopeException {
        return headerName == null ? ValueEnvelopeV2.parse(envelope, topic)
                : ValueEnvelopeV2.parseHeaderEnvelope(envelope, topic);
    }
}
