package io.meshcrypt.filter.kms;

import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.Map;

/**
 * What a wrapped DEK is bound to: its topic and DEK id. Providers pass it to the KMS as associated data (or AWS
 * encryption context), so a wrapped DEK moved to another topic or DEK id does not unwrap, and KMS audit logs name
 * the topic.
 */
public record DekContext(String topic, long dekId) {

    /** Associated data for providers that take bytes: {@code "meshcrypt-dek-v2" 0x00 topic 0x00 dekId(8, BE)}. */
    public byte[] associatedData() {
        byte[] t = topic.getBytes(StandardCharsets.UTF_8);
        byte[] label = "meshcrypt-dek-v2".getBytes(StandardCharsets.US_ASCII);
        byte[] out = new byte[label.length + 1 + t.length + 1 + 8];
        System.arraycopy(label, 0, out, 0, label.length);
        System.arraycopy(t, 0, out, label.length + 1, t.length);
        int p = out.length - 8;
        for (int i = 0; i < 8; i++) {
            out[p + i] = (byte) (dekId >>> (56 - 8 * i));
        }
        return out;
    }

    /** The same binding as a string map (AWS KMS encryption context). */
    public Map<String, String> encryptionContext() {
        return Map.of("meshcrypt:purpose", "dek-v2", "meshcrypt:topic", topic, "meshcrypt:dek", dekIdText());
    }

    public String dekIdText() {
        return HexFormat.of().toHexDigits(dekId);
    }

    /** The topic for a message: escaped and bounded, as the topic of a fetched record comes from the broker. */
    public String topicText() {
        return io.meshcrypt.filter.kms.Printable.of(topic, io.meshcrypt.filter.kms.Printable.TOPIC_CHARS);
    }
}
