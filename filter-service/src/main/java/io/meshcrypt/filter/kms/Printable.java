package io.meshcrypt.filter.kms;

import java.nio.charset.StandardCharsets;

/**
 * Peer-chosen text (KEK ids from envelope headers, topic names from broker responses) made fit for a log line or an
 * exception message: its UTF-8 bytes, printable ASCII as is and everything else (control characters, newlines,
 * backslash, non-ASCII) as {@code \xNN}, cut after a bound. So a record cannot forge log lines or flood them.
 */
public final class Printable {
    /** What a KEK id nobody configured is cut to: it is only ever shown, never used. */
    public static final int UNKNOWN_KEK_ID_CHARS = 64;
    /** KEK ids are at most 255 UTF-8 bytes (envelope format): a known one is shown whole. */
    public static final int KEK_ID_CHARS = 255;
    /** Kafka topic names are at most 249 characters: a legal name is never cut. */
    public static final int TOPIC_CHARS = 249;

    private static final char[] HEX = "0123456789abcdef".toCharArray();

    private Printable() {
    }

    /**
     * @param maxBytes how many UTF-8 bytes of {@code text} are shown at most; when it has more, the result ends with
     *     {@code ...(N bytes)}
     * @return the escaped text; "null" for null
     */
    public static String of(String text, int maxBytes) {
        if (text == null) {
            return "null";
        }
        if (text.length() <= maxBytes && isPlain(text)) {
            return text; // the common case: nothing to escape, nothing allocated
        }
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        int shown = Math.min(bytes.length, maxBytes);
        StringBuilder b = new StringBuilder(shown + 24);
        for (int i = 0; i < shown; i++) {
            int c = bytes[i] & 0xFF;
            if (c >= 0x20 && c < 0x7f && c != '\\') {
                b.append((char) c);
            } else {
                b.append("\\x").append(HEX[c >> 4]).append(HEX[c & 0xF]);
            }
        }
        if (shown < bytes.length) {
            b.append("...(").append(bytes.length).append(" bytes)");
        }
        return b.toString();
    }

    private static boolean isPlain(String text) {
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c < 0x20 || c >= 0x7f || c == '\\') {
                return false;
            }
        }
        return true;
    }
}
