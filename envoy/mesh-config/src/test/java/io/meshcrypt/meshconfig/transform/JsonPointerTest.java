package io.meshcrypt.meshconfig.transform;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.TextNode;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class JsonPointerTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** The examples of RFC 6901 section 5. */
    private static final String RFC_DOC = """
            {"foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3, "g|h": 4, "i\\\\j": 5, "k\\"l": 6, " ": 7, "m~n": 8}""";

    @ParameterizedTest
    @CsvSource(delimiterString = "=>", value = {
            "/foo/0 => \"bar\"",
            "/      => 0",
            "/a~1b  => 1",
            "/c%d   => 2",
            "/e^f   => 3",
            "/g|h   => 4",
            "/i\\j  => 5",
            "/k\"l  => 6",
            "/m~0n  => 8"})
    void givenRfcExamples_whenFound_thenTheRfcValue(String pointer, String expected) throws Exception {
        JsonNode doc = JSON.readTree(RFC_DOC);

        assertEquals(JSON.readTree(expected), JsonPointer.parse(pointer.strip()).find(doc));
    }

    @Test
    void givenSpaceKeyAndRoot_whenFound_thenAddressed() throws Exception {
        JsonNode doc = JSON.readTree(RFC_DOC);

        assertEquals(7, JsonPointer.parse("/ ").find(doc).asInt());
        assertSame(doc, JsonPointer.parse("").find(doc));
        assertTrue(JsonPointer.parse("").isRoot());
        assertEquals(List.of("a/b", "m~n"), JsonPointer.parse("/a~1b/m~0n").tokens());
    }

    @ParameterizedTest
    @ValueSource(strings = {"foo", "/a~", "/a~2", "~1"})
    void givenMalformedPointer_whenParsed_thenRejected(String text) {
        assertThrows(IllegalArgumentException.class, () -> JsonPointer.parse(text));
    }

    @ParameterizedTest
    @ValueSource(strings = {"/foo/01", "/foo/2", "/foo/-", "/foo/-1", "/foo/x", "/missing/x", "/foo/0/deeper", "/foo/99999999999"})
    void givenPointerToNothing_whenFound_thenNull(String text) throws Exception {
        assertNull(JsonPointer.parse(text).find(JSON.readTree(RFC_DOC)));
    }

    @Test
    void givenArrayAndObject_whenSet_thenMemberCreatedAndElementAppended() throws Exception {
        JsonNode doc = JSON.readTree("{\"a\":{},\"list\":[1]}");

        JsonPointer.parse("/a/new").set(doc, TextNode.valueOf("x"));
        JsonPointer.parse("/list/-").set(doc, TextNode.valueOf("y"));
        JsonPointer.parse("/list/2").set(doc, TextNode.valueOf("z"));
        JsonPointer.parse("/list/0").set(doc, TextNode.valueOf("w"));

        assertEquals(JSON.readTree("{\"a\":{\"new\":\"x\"},\"list\":[\"w\",\"y\",\"z\"]}"), doc);
    }

    @Test
    void givenMissingParentOrScalarParent_whenSet_thenPointerException() throws Exception {
        JsonNode doc = JSON.readTree("{\"n\":1,\"list\":[]}");

        assertThrows(PointerException.class, () -> JsonPointer.parse("/absent/x").set(doc, TextNode.valueOf("v")));
        assertThrows(PointerException.class, () -> JsonPointer.parse("/n/x").set(doc, TextNode.valueOf("v")));
        assertThrows(PointerException.class, () -> JsonPointer.parse("/list/1").set(doc, TextNode.valueOf("v")));
    }

    @Test
    void givenRootPointer_whenReplacedOrSet_thenNewRootReturned() throws Exception {
        JsonNode doc = JSON.readTree("{\"a\":1}");

        assertEquals(TextNode.valueOf("r"), JsonPointer.parse("").replace(doc, TextNode.valueOf("r")));
        assertEquals(TextNode.valueOf("s"), JsonPointer.parse("").set(doc, TextNode.valueOf("s")));
    }
}
