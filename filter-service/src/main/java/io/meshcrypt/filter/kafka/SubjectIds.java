package io.meshcrypt.filter.kafka;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonPointer;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * Finds a produced record's subject id where the policy's {@code subject:} says it is: a header (scanned in place in
 * the batch's headers section) or a JSON Pointer into the value (streamed with Jackson's parser, no tree: a cost per record
 * that only topics with {@code subject: {from: value}} pay).
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
    static ByteBuffer jsonPointer(ByteBuffer value, JsonPointer pointer) {
        try (JsonParser parser = value.hasArray()
                ? JSON.createParser(value.array(), value.arrayOffset() + value.position(), value.remaining())
                : JSON.createParser(StandardCharsets.UTF_8.decode(value.duplicate()).toString())) {
            if (parser.nextToken() == null) {
                return null;
            }
            String id = find(parser, pointer);
            return id == null ? null : ByteBuffer.wrap(id.getBytes(StandardCharsets.UTF_8));
        } catch (IOException e) {
            return null;
        }
    }

    /**
     * Streams one JSON value (the parser at its first token, left at its last) and returns what
     * {@code readTree(value).at(pointer)} would make a subject of, without building the tree: the ids feed the HMAC of
     * every stored subject ref, so they must stay exactly the tree's. Hence the whole value is read, not just up to the
     * first match: a later duplicate property replaces an earlier one in the tree (the last one wins), and a syntax
     * error anywhere makes the value "not JSON". Nesting is bounded by the parser's own limit (StreamReadConstraints).
     *
     * @return the text of the string or number at {@code pointer}, or null
     */
    private static String find(JsonParser parser, JsonPointer pointer) throws IOException {
        JsonToken token = parser.currentToken();
        if (pointer.matches()) {
            if (token == JsonToken.VALUE_STRING) {
                return parser.getText();
            }
            if (token.isNumeric()) {
                // The number's node as the tree would hold it (int, long, double...), printed as the tree prints it.
                return JSON.<JsonNode>readTree(parser).asText();
            }
            parser.skipChildren();
            return null;
        }
        String found = null;
        if (token == JsonToken.START_OBJECT) {
            while (parser.nextToken() == JsonToken.FIELD_NAME) {
                JsonPointer tail = pointer.matchProperty(parser.currentName());
                parser.nextToken();
                if (tail != null) {
                    found = find(parser, tail);
                } else {
                    parser.skipChildren();
                }
            }
        } else if (token == JsonToken.START_ARRAY) {
            int index = 0;
            while (parser.nextToken() != JsonToken.END_ARRAY) {
                JsonPointer tail = pointer.matchElement(index++);
                if (tail != null) {
                    found = find(parser, tail);
                } else {
                    parser.skipChildren();
                }
            }
        }
        return found;
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
