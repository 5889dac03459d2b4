package io.meshcrypt.filter.kafka;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * Finds a produced record's subject id where the policy's {@code subject:} says it is: a header (scanned in place in
 * the batch's headers section) or a JSON Pointer into the value (parsed with Jackson: a cost per record that only
 * topics with {@code subject: {from: value}} pay).
 */
final class SubjectIds {
    private static final ObjectMapper JSON = new ObjectMapper();

    private SubjectIds() {
    }

    /**
     * @param headers a headers section as in a record (varint count, then per header: varint name length, name, varint
     *     value length, value), position..limit, not moved; already validated by the batch parser
     * @param name the header name's UTF-8 bytes
     * @return a view of the first such header's value, or null when there is none or its value is null
     */
    static ByteBuffer header(ByteBuffer headers, ByteBuffer name) {
        int[] pos = {headers.position()};
        int count = readVarint(headers, pos);
        for (int h = 0; h < count; h++) {
            int nameLength = readVarint(headers, pos);
            int nameStart = pos[0];
            pos[0] += nameLength;
            int valueLength = readVarint(headers, pos);
            int valueStart = pos[0];
            pos[0] += Math.max(valueLength, 0);
            if (nameLength == name.remaining() && headers.slice(nameStart, nameLength).equals(name)) {
                return valueLength < 0 ? null : headers.slice(valueStart, valueLength);
            }
        }
        return null;
    }

    /**
     * @param value a JSON value (position..limit, not moved)
     * @return the UTF-8 bytes of the string, or the text of the number, at {@code pointer}; null when the value is not
     *     JSON, or the pointer addresses nothing, null, an object, an array or a boolean
     */
    static ByteBuffer jsonPointer(ByteBuffer value, com.fasterxml.jackson.core.JsonPointer pointer) {
        JsonNode node;
        try {
            node = value.hasArray()
                    ? JSON.readTree(value.array(), value.arrayOffset() + value.position(), value.remaining())
                    : JSON.readTree(StandardCharsets.UTF_8.decode(value.duplicate()).toString());
        } catch (IOException e) {
            return null;
        }
        JsonNode at = node == null ? null : node.at(pointer);
        if (at == null || !(at.isTextual() || at.isNumber())) {
            return null;
        }
        return ByteBuffer.wrap(at.asText().getBytes(StandardCharsets.UTF_8));
    }

    /** A zigzag varint as in Kafka records. */
    private static int readVarint(ByteBuffer b, int[] pos) {
        int value = 0;
        int shift = 0;
        while (true) {
            byte x = b.get(pos[0]++);
            value |= (x & 0x7f) << shift;
            if ((x & 0x80) == 0) {
                return (value >>> 1) ^ -(value & 1);
            }
            shift += 7;
        }
    }
}
