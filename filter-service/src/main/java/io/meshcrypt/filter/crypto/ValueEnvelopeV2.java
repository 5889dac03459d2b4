package io.meshcrypt.filter.crypto;

import io.meshcrypt.filter.kms.Printable;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;

/**
 * Envelope format version 2: a value encrypted with a per-topic DEK that travels wrapped in every record, so any
 * replica holding access to the KEK decrypts it without a side store (see docs/envelope-format.md).
 *
 * <pre>
 * offset      length  field
 * 0           4       magic 0x00 0x4D 0x43 0x45
 * 4           1       format version 0x02
 * 5           1       K: length of the KEK id (1-255)
 * 6           K       KEK id, UTF-8
 * 6+K         8       DEK id, big-endian
 * 14+K        2       W: length of the wrapped DEK (1-65535), big-endian
 * 16+K        W       wrapped DEK (provider-specific ciphertext of the 32-byte AES-256-GCM DEK)
 * 16+K+W      12      AES-GCM nonce, random per record
 * 28+K+W      n       ciphertext
 * 28+K+W+n    16      GCM tag
 * </pre>
 *
 * Associated data: {@code bytes[0, 16+K+W) || UTF-8("topic:" + topic)}: the whole header (version, KEK id, DEK
 * id, wrapped DEK) and the topic are authenticated.
 */
public final class ValueEnvelopeV2 {

    public static final int VERSION_2 = 0x02;
    static final int KEK_ID_LENGTH_OFFSET = ValueEnvelope.HEADER_LENGTH;
    /** Header bytes besides the KEK id and wrapped DEK: magic, version, K, DEK id, W. */
    static final int FIXED_HEADER = ValueEnvelope.HEADER_LENGTH + 1 + 8 + 2;
    /** Bytes added to a plaintext besides the KEK id and the wrapped DEK. */
    public static final int FIXED_OVERHEAD = FIXED_HEADER + ValueEnvelope.NONCE_LENGTH + ValueEnvelope.TAG_LENGTH;

    /**
     * What a version-2 envelope says about itself, read without decrypting or calling a KMS.
     *
     * @param headerLength bytes of the authenticated header (magic through wrapped DEK)
     * @param keyOffset offset of the key section (K through the wrapped DEK): the DEK cache key
     */
    public record Info(String kekId, long dekId, int wrappedDekLength, int headerLength, int keyOffset) {
        public int version() {
            return VERSION_2;
        }

        public String dekIdText() {
            return HexFormat.of().toHexDigits(dekId);
        }

        /**
         * The KEK id fit for a log line or message: escaped (see {@link Printable}). Use it only once the id is known to
         * the configuration; before that, {@link Printable#UNKNOWN_KEK_ID_CHARS} bounds it.
         */
        public String kekIdText() {
            return Printable.of(kekId, Printable.KEK_ID_CHARS);
        }
    }

    private ValueEnvelopeV2() {
    }

    /** @return the authenticated header every record encrypted with this DEK starts with */
    public static byte[] header(String kekId, long dekId, byte[] wrappedDek) {
        byte[] kek = kekId.getBytes(StandardCharsets.UTF_8);
        if (kek.length == 0 || kek.length > 255) {
            throw new IllegalArgumentException("KEK id must be 1-255 UTF-8 bytes (got " + kek.length + ")");
        }
        if (wrappedDek.length == 0 || wrappedDek.length > 0xFFFF) {
            throw new IllegalArgumentException("wrapped DEK must be 1-65535 bytes (got " + wrappedDek.length + ")");
        }
        ByteBuffer b = ByteBuffer.allocate(FIXED_HEADER + kek.length + wrappedDek.length);
        b.putInt(ValueEnvelope.MAGIC).put((byte) VERSION_2).put((byte) kek.length).put(kek)
                .putLong(dekId).putShort((short) wrappedDek.length).put(wrappedDek);
        return b.array();
    }

    /**
     * Parses the header of a version-2 envelope; the buffer's position does not move.
     *
     * @throws EnvelopeException when the value is not a version-2 envelope or is truncated or malformed
     */
    public static Info parse(ByteBuffer value, String topic) throws EnvelopeException {
        int p = value.position();
        if (!ValueEnvelope.isEnvelope(value) || Byte.toUnsignedInt(value.get(p + 4)) != VERSION_2) {
            throw new EnvelopeException("value" + ValueEnvelope.onTopic(topic) + " is not a version-2 meshcrypt envelope");
        }
        return parseKeySection(value, topic, "value", "version-2 meshcrypt envelope");
    }

    /**
     * Parses the header of a record-header envelope ({@link HeaderEnvelope}, version 1), whose bytes from offset 5 are
     * laid out as version 2's; the buffer's position does not move.
     *
     * @throws EnvelopeException when the header value is not such an envelope or is truncated or malformed
     */
    public static Info parseHeaderEnvelope(ByteBuffer value, String topic) throws EnvelopeException {
        int p = value.position();
        if (!HeaderEnvelope.isHeaderEnvelope(value) || Byte.toUnsignedInt(value.get(p + 4)) != HeaderEnvelope.VERSION_1) {
            throw new EnvelopeException("header value" + ValueEnvelope.onTopic(topic) + " is not a version-1 meshcrypt header envelope");
        }
        return parseKeySection(value, topic, "header value", "version-1 meshcrypt header envelope");
    }

    /** Bytes 5 to the end of the wrapped DEK, after the caller checked magic and version. */
    private static Info parseKeySection(ByteBuffer value, String topic, String what, String kind) throws EnvelopeException {
        int p = value.position();
        int remaining = value.remaining();
        if (remaining < FIXED_OVERHEAD + 2) {
            throw truncated(what, kind, topic, remaining);
        }
        int k = Byte.toUnsignedInt(value.get(p + KEK_ID_LENGTH_OFFSET));
        if (k == 0) {
            throw new EnvelopeException(what + ValueEnvelope.onTopic(topic) + " is a malformed meshcrypt envelope (empty KEK id)");
        }
        if (remaining < FIXED_OVERHEAD + k + 1) {
            throw truncated(what, kind, topic, remaining);
        }
        String kekId;
        try {
            kekId = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(value.slice(p + KEK_ID_LENGTH_OFFSET + 1, k)).toString();
        } catch (CharacterCodingException e) {
            throw new EnvelopeException(what + ValueEnvelope.onTopic(topic) + " is a malformed meshcrypt envelope (KEK id is not UTF-8)");
        }
        int d = p + KEK_ID_LENGTH_OFFSET + 1 + k;
        long dekId = 0;
        for (int i = 0; i < 8; i++) {
            dekId = (dekId << 8) | Byte.toUnsignedInt(value.get(d + i));
        }
        int w = (Byte.toUnsignedInt(value.get(d + 8)) << 8) | Byte.toUnsignedInt(value.get(d + 9));
        if (w == 0) {
            throw new EnvelopeException(what + ValueEnvelope.onTopic(topic) + " is a malformed meshcrypt envelope (empty wrapped DEK)");
        }
        if (remaining < FIXED_OVERHEAD + k + w) {
            throw truncated(what, kind, topic, remaining);
        }
        return new Info(kekId, dekId, w, FIXED_HEADER + k + w, KEK_ID_LENGTH_OFFSET);
    }

    /**
     * The length of the key section (K through the end of the wrapped DEK: the DEK cache key) of a value whose magic and
     * version were checked, without decoding anything: for the cached-key fast path.
     *
     * @return the length, or -1 when the value is malformed or too short for its own length fields ({@link #parse}
     *     then names the problem)
     */
    static int keySectionLength(ByteBuffer value) {
        int p = value.position();
        int remaining = value.remaining();
        if (remaining < FIXED_OVERHEAD + 2) {
            return -1;
        }
        int k = Byte.toUnsignedInt(value.get(p + KEK_ID_LENGTH_OFFSET));
        if (k == 0 || remaining < FIXED_OVERHEAD + k + 1) {
            return -1;
        }
        int d = p + KEK_ID_LENGTH_OFFSET + 1 + k;
        int w = (Byte.toUnsignedInt(value.get(d + 8)) << 8) | Byte.toUnsignedInt(value.get(d + 9));
        if (w == 0 || remaining < FIXED_OVERHEAD + k + w) {
            return -1;
        }
        return 1 + k + 8 + 2 + w;
    }

    private static EnvelopeException truncated(String what, String kind, String topic, int remaining) {
        return new EnvelopeException(what + ValueEnvelope.onTopic(topic) + " is a truncated " + kind + " ("
                + remaining + " bytes)");
    }
}
