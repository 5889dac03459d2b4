package io.meshcrypt.e2e.support;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.Headers;

/** Small conversions that make record comparisons readable in assertion messages. */
public final class Records {

    private Records() {
    }

    public static byte[] utf8(String s) {
        return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
    }

    public static String text(byte[] b) {
        return b == null ? null : new String(b, StandardCharsets.UTF_8);
    }

    /** Headers as "key=hex(value)" in wire order, so lists compare by value and print legibly. */
    public static List<String> describe(Headers headers) {
        List<String> out = new ArrayList<>();
        for (Header h : headers) {
            out.add(h.key() + "=" + (h.value() == null ? "null" : HexFormat.of().formatHex(h.value())));
        }
        return out;
    }
}
