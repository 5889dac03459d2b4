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

    @Test
    void givenDuplicatePropertiesArraysAndTrailingBytes_whenThePointerIsRead_thenTheAnswerIsTheParsedTreesOne() {
        JsonPointer id = JsonPointer.compile("/customer/id");

        assertEquals("b", text(SubjectIds.jsonPointer(name("{\"customer\":{\"id\":\"a\",\"id\":\"b\"}}"), id)),
                "the last duplicate wins, as in the tree");
        assertNull(SubjectIds.jsonPointer(name("{\"customer\":{\"id\":\"a\"},\"customer\":{}}"), id),
                "a later duplicate object replaces the one that held the id");
        assertNull(SubjectIds.jsonPointer(name("{\"customer\":{\"id\":\"a\"},\"x\":"), id),
                "a syntax error after the id still makes the value not JSON");
        assertEquals("x", text(SubjectIds.jsonPointer(name("[1,[\"y\",\"x\"]]"), JsonPointer.compile("/1/1"))));
        assertEquals("1.5", text(SubjectIds.jsonPointer(name("{\"n\":1.50}"), JsonPointer.compile("/n"))),
                "numbers print as the tree prints them");
        assertEquals("c", text(SubjectIds.jsonPointer(name("\"c\" trailing"), JsonPointer.compile(""))));
    }

    /** The ids feed the HMAC of every stored subject ref: the streamed lookup must answer exactly what the tree did. */
    @Test
    void givenRandomJsonAndCorruptions_whenThePointerIsStreamed_thenItMatchesTheTreeLookupEverywhere() throws Exception {
        java.util.Random random = new java.util.Random(20261201L);
        com.fasterxml.jackson.databind.ObjectMapper mapper = new com.fasterxml.jackson.databind.ObjectMapper();
        String[] pointers = {"", "/a", "/b", "/a/b", "/a/0", "/0", "/1/a", "/a/b/c", "/0/0", "/a~1b", "/"};
        int found = 0;
        for (int i = 0; i < 20_000; i++) {
            String generated = randomValue(random, 0);
            if (random.nextInt(5) == 0 && generated.length() > 1) {
                int cut = random.nextInt(generated.length());
                generated = random.nextBoolean() ? generated.substring(0, cut)
                        : generated.substring(0, cut) + "}" + generated.substring(cut);
            }
            String json = generated;
            JsonPointer pointer = JsonPointer.compile(pointers[random.nextInt(pointers.length)]);
            String expected = treeLookup(mapper, json, pointer);
            String actual = text(SubjectIds.jsonPointer(name(json), pointer));
            assertEquals(expected, actual, () -> "pointer " + pointer + " into " + json);
            if (expected != null) {
                found++;
            }
        }
        org.junit.jupiter.api.Assertions.assertTrue(found > 500, "the generator (fixed seed: 685 hits) must reach ids often enough: " + found);
    }

    /** The lookup as it was before it streamed: the whole tree, then the pointer. */
    private static String treeLookup(com.fasterxml.jackson.databind.ObjectMapper mapper, String json, JsonPointer pointer) {
        com.fasterxml.jackson.databind.JsonNode node;
        try {
            node = mapper.readTree(json.getBytes(StandardCharsets.UTF_8));
        } catch (java.io.IOException e) {
            return null;
        }
        com.fasterxml.jackson.databind.JsonNode at = node == null ? null : node.at(pointer);
        return at == null || !(at.isTextual() || at.isNumber()) ? null : at.asText();
    }

    private static String randomValue(java.util.Random random, int depth) {
        int kind = random.nextInt(depth > 3 ? 4 : 6);
        return switch (kind) {
            case 0 -> "\"" + "xyz\u00e9".charAt(random.nextInt(4)) + random.nextInt(3) + "\"";
            case 1 -> switch (random.nextInt(4)) {
                case 0 -> Integer.toString(random.nextInt(2000) - 1000);
                case 1 -> Long.toString(random.nextLong());
                case 2 -> (random.nextInt(100) - 50) + "." + random.nextInt(100) + (random.nextBoolean() ? "0" : "");
                default -> "1e" + random.nextInt(5);
            };
            case 2 -> new String[] {"true", "false", "null"}[random.nextInt(3)];
            case 3 -> "{}";
            case 4 -> {
                StringBuilder object = new StringBuilder("{");
                int n = random.nextInt(4);
                for (int k = 0; k < n; k++) {
                    object.append(k == 0 ? "" : ",").append('"').append(new String[] {"a", "b", "0", "a/b"}[random.nextInt(4)])
                            .append("\":").append(randomValue(random, depth + 1));
                }
                yield object.append('}').toString();
            }
            default -> {
                StringBuilder array = new StringBuilder("[");
                int n = random.nextInt(4);
                for (int k = 0; k < n; k++) {
                    array.append(k == 0 ? "" : ",").append(randomValue(random, depth + 1));
                }
                yield array.append(']').toString();
            }
        };
    }
}
