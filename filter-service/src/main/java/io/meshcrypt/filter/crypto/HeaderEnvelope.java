package io.meshcrypt.filter.crypto;

import java.nio.ByteBuffer;

/**
 * The record-header envelope (docs/envelope-format.md, "Record-header envelope"): the value of a header a policy entry
 * lists under {@code headers}, encrypted with the topic's current DEK.
 *
 * <pre>
 * offset      length  field
 * 0           4       magic 0x00 0x4D 0x43 0x48 ("\0MCH")
 * 4           1       header envelope version 0x01
 * 5 ..                as value envelope version 2 from offset 5: K, KEK id, DEK id, W, wrapped DEK, nonce,
 *                     ciphertext, tag
 * </pre>
 *
 * Associated data: {@code bytes[0, 16+K+W) || UTF-8("topic:" + topic) || 0x00 || header name bytes}, so an envelope
 * moved to another header name, another topic or into a record value fails to decrypt. Its own magic keeps it apart
 * from value envelopes: each reader checks for the one it expects.
 */
public final class HeaderEnvelope {

    /** Bytes 0-3 read as a big-endian int: "\0MCH". */
    public static final int MAGIC = 0x004D4348;
    public static final int VERSION_1 = 0x01;
    /** Separates the topic from the header name in the associated data (Kafka topic names never hold 0x00). */
    static final byte NAME_SEPARATOR = 0x00;

    private HeaderEnvelope() {
    }

    /**
     * @return whether {@code value} (position..limit) starts with the header-envelope magic and a version byte; does
     *     not check the version or the rest, and does not move the buffer's position
     */
    public static boolean isHeaderEnvelope(ByteBuffer value) {
        int p = value.position();
        return value.remaining() >= ValueEnvelope.HEADER_LENGTH && value.getInt(p) == MAGIC;
    }

    /** Turns a version-2 value header (what a {@link Dek} carries) into the header-envelope header, in place. */
    static void writePrefix(byte[] out) {
        out[0] = 0x00;
        out[1] = 0x4D;
        out[2] = 0x43;
        out[3] = 0x48;
        out[4] = VERSION_1;
    }
}
