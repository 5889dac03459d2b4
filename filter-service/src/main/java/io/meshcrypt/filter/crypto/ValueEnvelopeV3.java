package io.meshcrypt.filter.crypto;

import java.nio.ByteBuffer;

/**
 * Envelope format version 3: a value encrypted with the key of its subject (per-subject keys, {@code subject:} in the
 * policy; see docs/envelope-format.md). The subject key itself is in the subject-key log, wrapped under its scope's
 * secret; the envelope names it by subject ref and key id, so forgetting the subject (destroying that key) leaves the
 * envelope undecryptable.
 *
 * <pre>
 * offset  length  field
 * 0       4       magic 0x00 0x4D 0x43 0x45
 * 4       1       format version 0x03
 * 5       16      subject ref: HMAC-SHA256(scope's ref key, subject id), first 16 bytes
 * 21      8       key id, big-endian (which of the subject's keys; almost always its only one)
 * 29      12      AES-GCM nonce, random per record
 * 41      n       ciphertext
 * 41+n    16      GCM tag
 * </pre>
 *
 * Associated data: {@code bytes[0, 29) || UTF-8("topic:" + topic)}: version, subject ref, key id and topic are bound.
 */
public final class ValueEnvelopeV3 {
    public static final int VERSION_3 = 0x03;
    public static final int REF_OFFSET = ValueEnvelope.HEADER_LENGTH;
    public static final int REF_LENGTH = 16;
    public static final int KEY_ID_OFFSET = REF_OFFSET + REF_LENGTH;
    /** The authenticated header: magic, version, subject ref, key id. */
    public static final int HEADER_LENGTH = KEY_ID_OFFSET + 8;
    public static final int OVERHEAD = HEADER_LENGTH + ValueEnvelope.NONCE_LENGTH + ValueEnvelope.TAG_LENGTH;

    private ValueEnvelopeV3() {
    }

    /** @return whether {@code value} (position..limit, not moved) has the magic and version 3 */
    public static boolean isVersion3(ByteBuffer value) {
        return ValueEnvelope.isEnvelope(value) && Byte.toUnsignedInt(value.get(value.position() + 4)) == VERSION_3;
    }

    /** Writes the header into {@code out[0, HEADER_LENGTH)}. */
    static void writeHeader(byte[] out, byte[] ref, long keyId) {
        ByteBuffer.wrap(out, 0, HEADER_LENGTH).putInt(ValueEnvelope.MAGIC).put((byte) VERSION_3).put(ref, 0, REF_LENGTH)
                .putLong(keyId);
    }

    /** @return the key id of a version-3 envelope long enough for its header (position..limit, not moved) */
    static long keyId(ByteBuffer envelope) {
        return envelope.getLong(envelope.position() + KEY_ID_OFFSET);
    }
}
