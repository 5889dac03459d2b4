package io.meshcrypt.filter.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import com.fasterxml.jackson.core.JsonPointer;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.apache.kafka.common.utils.internals.ByteUtils;
import org.junit.jupiter.api.Test;

/** Where a record names its subject: a header found in place in the batch's bytes, or a JSON Pointer into the value. */
class SubjectIdsTest {

    /** A record's headers section as Kafka writes it: varint count, then varint name length, name, varint value length, value. */
    private static ByteBuffer headers(String... namesAndValues) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteBuffer varint = ByteBuffer.allocate(5);
        writeVarint(out, varint, namesAndValues.length / 2);
        for (int i = 0; i < namesAndValues.length; i += 2) {
            byte[] name = namesAndValues[i].getBytes(StandardCharsets.UTF_8);
            writeVarint(out, varint, name.length);
            out.writeBytes(name);
            String value = namesAndValues[i + 1];
            if (value == null) {
                writeVarint(out, varint, -1);
            } else {
                byte[] v = value.getBytes(StandardCharsets.UTF_8);
                writeVarint(out, varint, v.length);
                out.writeBytes(v);
            }
        }
        // at an offset, as a view of a batch is
        byte[] body = out.toByteArray();
        byte[] padded = new byte[body.length + 3];
        System.arraycopy(body, 0, padded, 3, body.length);
        return ByteBuffer.wrap(padded, 3, body.length);
    }

    private static void writeVarint(ByteArrayOutputStream out, ByteBuffer varint, int value) {
        varint.clear();
        ByteUtils.writeVarint(value, varint);
        out.write(varint.array(), 0, varint.position());
    }

    private static String text(ByteBuffer b) {
        return b == null ? null : StandardCharsets.UTF_8.decode(b.duplicate()).toString();
    }

    private static ByteBuffer name(String name) {
        return ByteBuffer.wrap(name.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void givenHeaders_whenTheSubjectHeaderIsLookedUp_thenTheFirstExactMatchAndNullForAbsentOrNullValues() {
        ByteBuffer headers = headers("user-idx", "no", "user-id", "alice", "user-id", "bob", "empty", null);

        assertEquals("alice", text(SubjectIds.header(headers, name("user-id"))));
        assertNull(SubjectIds.header(headers, name("user")), "a prefix is not the name");
        assertNull(SubjectIds.header(headers, name("empty")), "a null value names no subject");
        assertNull(SubjectIds.header(headers("a", "1"), name("user-id")));
        assertNull(SubjectIds.header(headers(), name("user-id")));
        assertEquals(3, headers.position(), "the view is not moved");
    }

    @Test
    void givenJsonValues_whenThePointerIsRead_thenStringsAndNumbersAreSubjectsAndNothingElseIs() {
        JsonPointer id = JsonPointer.compile("/customer/id");

        assertEquals("c-1", text(SubjectIds.jsonPointer(name("{\"customer\":{\"id\":\"c-1\"}}"), id)));
        assertEquals("42", text(SubjectIds.jsonPointer(name("{\"customer\":{\"id\":42}}"), id)));
        assertNull(SubjectIds.jsonPointer(name("{\"customer\":{\"id\":null}}"), id));
        assertNull(SubjectIds.jsonPointer(name("{\"customer\":{\"id\":{\"x\":1}}}"), id));
        assertNull(SubjectIds.jsonPointer(name("{\"customer\":{\"id\":true}}"), id));
        assertNull(SubjectIds.jsonPointer(name("{\"customer\":{}}"), id));
        assertNull(SubjectIds.jsonPointer(name("not json"), id));
        assertNull(SubjectIds.jsonPointer(name(""), id));
    }
}
