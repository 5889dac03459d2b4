package io.meshcrypt.filter.crypto;

import io.meshcrypt.filter.kms.Printable;
import java.nio.ByteBuffer;

/**
 * What every version of the record-value envelope shares (see docs/envelope-format.md): the {@code \0MCE} magic and
 * version byte, and the AES-GCM nonce and tag sizes. The layouts are {@link ValueEnvelopeV1} and {@link ValueEnvelopeV2}.
 */
public final class ValueEnvelope {

    /** Bytes 0-3 read as a big-endian int: "\0MCE". */
    public static final int MAGIC = 0x004D4345;
    /** Magic plus version. */
    public static final int HEADER_LENGTH = 5;
    public static final int NONCE_LENGTH = 12;
    public static final int TAG_LENGTH = 16;

    private ValueEnvelope() {
    }

    /**
     * @return whether {@code value} (position..limit) starts with the meshcrypt magic and a version byte; does not
     *     check the version or the rest of the layout, and does not move the buffer's position
     */
    public static boolean isEnvelope(ByteBuffer value) {
        int p = value.position();
        return value.remaining() >= HEADER_LENGTH
                && value.get(p) == 0x00
                && value.get(p + 1) == 0x4D
                && value.get(p + 2) == 0x43
                && value.get(p + 3) == 0x45;
    }

    /** Topic names of fetched records come from the broker: escaped and bounded (see {@link Printable}). */
    static String onTopic(String topic) {
        return topic == null ? "" : " on topic '" + Printable.of(topic, Printable.TOPIC_CHARS) + "'";
    }
}
