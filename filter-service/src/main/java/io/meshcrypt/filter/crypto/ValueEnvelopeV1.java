package io.meshcrypt.filter.crypto;

import java.nio.ByteBuffer;

/**
 * Record-value envelope format version 1: a value encrypted directly with a key of a Tink keyset, which the key id
 * names (see docs/envelope-format.md). Read for data written before KEK providers; written only without {@code keys:}.
 *
 * <pre>
 * offset  length  field
 * 0       4       magic 0x00 0x4D 0x43 0x45 ("\0MCE")
 * 4       1       format version (0x01)
 * 5       1       Tink output prefix marker 0x01 (TINK variant)
 * 6       4       Tink key id, big-endian
 * 10      12      AES-GCM nonce
 * 22      n       ciphertext (same length as the plaintext)
 * 22+n    16      GCM tag
 * </pre>
 *
 * Bytes 5.. are exactly Tink's AES-GCM ciphertext, so any Tink implementation holding the keyset can decrypt them.
 * The associated data is {@code header(5 bytes) || UTF-8("topic:" + topic)}.
 */
public final class ValueEnvelopeV1 {

    public static final int VERSION_1 = 0x01;
    /** Tink's output prefix marker for keys with the TINK variant. */
    public static final int TINK_PREFIX_MARKER = 0x01;
    public static final int TINK_PREFIX_OFFSET = ValueEnvelope.HEADER_LENGTH;
    public static final int KEY_ID_OFFSET = TINK_PREFIX_OFFSET + 1;
    public static final int NONCE_OFFSET = KEY_ID_OFFSET + 4;
    public static final int CIPHERTEXT_OFFSET = NONCE_OFFSET + ValueEnvelope.NONCE_LENGTH;
    /** Bytes a version-1 envelope adds to its plaintext: 5 header + 5 Tink prefix + 12 nonce + 16 tag. */
    public static final int OVERHEAD = CIPHERTEXT_OFFSET + ValueEnvelope.TAG_LENGTH;

    /** What a version-1 envelope says about itself, read without decrypting. */
    public record Info(int version, int keyId) {
        /** @return the key id as Tink prints it in keyset files (unsigned 32-bit) */
        public String keyIdText() {
            return Integer.toUnsignedString(keyId);
        }
    }

    private ValueEnvelopeV1() {
    }

    /**
     * Reads version and key id without decrypting; the buffer's position does not move.
     *
     * @throws NotAnEnvelopeException when the magic is missing
     * @throws UnsupportedEnvelopeVersionException when the version is not 1
     * @throws EnvelopeException when a version-1 envelope is too short or lacks the Tink prefix marker
     */
    public static Info inspect(ByteBuffer value) throws EnvelopeException {
        return parse(value, null);
    }

    /** As {@link #inspect}, with {@code topic} (nullable) named in error messages. */
    static Info parse(ByteBuffer value, String topic) throws EnvelopeException {
        if (!ValueEnvelope.isEnvelope(value)) {
            throw new NotAnEnvelopeException("value" + ValueEnvelope.onTopic(topic) + " is not a meshcrypt envelope ("
                    + value.remaining() + " bytes without the \\0MCE magic)");
        }
        int p = value.position();
        int version = Byte.toUnsignedInt(value.get(p + 4));
        if (version != VERSION_1) {
            throw new UnsupportedEnvelopeVersionException("value" + ValueEnvelope.onTopic(topic) + " uses meshcrypt envelope version "
                    + version + "; this reader supports only version " + VERSION_1, version);
        }
        if (value.remaining() < OVERHEAD) {
            throw new EnvelopeException("value" + ValueEnvelope.onTopic(topic) + " is a truncated meshcrypt envelope ("
                    + value.remaining() + " bytes, at least " + OVERHEAD + " expected)");
        }
        if (value.get(p + TINK_PREFIX_OFFSET) != TINK_PREFIX_MARKER) {
            throw new EnvelopeException("value" + ValueEnvelope.onTopic(topic) + " is a malformed meshcrypt envelope (Tink prefix marker 0x"
                    + Integer.toHexString(Byte.toUnsignedInt(value.get(p + TINK_PREFIX_OFFSET))) + ", expected 0x01)");
        }
        // Absolute reads byte by byte: the caller's buffer may be little-endian ordered.
        int keyId = (Byte.toUnsignedInt(value.get(p + KEY_ID_OFFSET)) << 24)
                | (Byte.toUnsignedInt(value.get(p + KEY_ID_OFFSET + 1)) << 16)
                | (Byte.toUnsignedInt(value.get(p + KEY_ID_OFFSET + 2)) << 8)
                | Byte.toUnsignedInt(value.get(p + KEY_ID_OFFSET + 3));
        return new Info(version, keyId);
    }

}
