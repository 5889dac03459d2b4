package io.meshcrypt.filter.kms;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import org.junit.jupiter.api.Test;

class PrintableTest {
    @Test
    void givenPlainText_whenShown_thenTheSameStringWithoutCopy() {
        String topic = "orders.eu-1_x";

        assertSame(topic, Printable.of(topic, Printable.TOPIC_CHARS));
    }

    @Test
    void givenControlBackslashAndNonAscii_whenShown_thenEachUtf8ByteEscaped() {
        assertEquals("a\\x0ab\\x5cc\\xc3\\xa9\\x7f", Printable.of("a\nb\\cé\u007f", 64));
    }

    @Test
    void givenTextLongerThanTheBound_whenShown_thenCutWithItsLength() {
        assertEquals("abc...(5 bytes)", Printable.of("abcde", 3));
        assertEquals("null", Printable.of(null, 3));
    }
}
