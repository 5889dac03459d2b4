package io.meshcrypt.filter.subjects;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.HexFormat;
import org.junit.jupiter.api.Test;

/** The subject-key topic's record layout, byte for byte. */
class SubjectKeyRecordsTest {
    private static final HexFormat HEX = HexFormat.of();

    @Test
    void givenEachKind_whenWritten_thenTheBytesAreTheDocumentedLayoutAndParseBack() {
        byte[] ref = HEX.parseHex("00112233445566778899aabbccddeeff");
        byte[] keyId = HEX.parseHex("0102030405060708");

        byte[] subjectKey = SubjectKeyRecords.key(SubjectKeyRecords.SUBJECT_KEY, "u*", ref, keyId);
        byte[] marker = SubjectKeyRecords.key(SubjectKeyRecords.SUBJECT_MARKER, "u*", ref);
        byte[] secret = SubjectKeyRecords.key(SubjectKeyRecords.SCOPE_SECRET, "u*", keyId);

        assertEquals("02" + "0002" + "752a" + "00112233445566778899aabbccddeeff" + "0102030405060708", HEX.formatHex(subjectKey));
        assertEquals("03" + "0002" + "752a" + "00112233445566778899aabbccddeeff", HEX.formatHex(marker));
        assertEquals("01" + "0002" + "752a" + "0102030405060708", HEX.formatHex(secret));
        SubjectKeyRecords.Key parsed = SubjectKeyRecords.parseKey(subjectKey);
        assertEquals("u*", parsed.scope());
        assertArrayEquals(ref, parsed.ref());
        assertArrayEquals(keyId, parsed.keyId());
        assertEquals(SubjectKeyRecords.SUBJECT_MARKER, SubjectKeyRecords.parseKey(marker).kind());
    }

    @Test
    void givenValues_whenWritten_thenTheBytesAreTheDocumentedLayoutAndParseBack() {
        assertEquals("02", HEX.formatHex(SubjectKeyRecords.forgottenValue()));
        byte[] wrapped = new byte[SubjectKeyRecords.WRAPPED_KEY_LENGTH];
        wrapped[0] = 5;
        byte[] value = SubjectKeyRecords.subjectKeyValue(wrapped);
        assertEquals(61, value.length);
        assertEquals("0105", HEX.formatHex(value, 0, 2));
        assertArrayEquals(wrapped, SubjectKeyRecords.wrappedSubjectKey(value));
        assertNull(SubjectKeyRecords.wrappedSubjectKey(SubjectKeyRecords.forgottenValue()));

        byte[] secret = SubjectKeyRecords.secretValue("k1", new byte[] {9, 8, 7});
        assertEquals("01" + "02" + "6b31" + "0003" + "090807", HEX.formatHex(secret));
        SubjectKeyRecords.WrappedSecret parsed = SubjectKeyRecords.parseSecretValue(secret);
        assertEquals("k1", parsed.kekId());
        assertArrayEquals(new byte[] {9, 8, 7}, parsed.wrapped());
    }

    @Test
    void givenMalformedRecords_whenParsed_thenNull() {
        assertNull(SubjectKeyRecords.parseKey(null));
        assertNull(SubjectKeyRecords.parseKey(HEX.parseHex("0200")));
        assertNull(SubjectKeyRecords.parseKey(HEX.parseHex("09" + "0001" + "61" + "0102030405060708")), "unknown kind");
        assertNull(SubjectKeyRecords.parseKey(HEX.parseHex("01" + "0001" + "61" + "01020304050607")), "short id");
        assertNull(SubjectKeyRecords.parseKey(HEX.parseHex("01" + "0001" + "ff" + "0102030405060708")), "not UTF-8");
        assertNull(SubjectKeyRecords.parseKey(HEX.parseHex("01" + "0000" + "0102030405060708")), "empty scope");
        assertNull(SubjectKeyRecords.parseSecretValue(HEX.parseHex("01026b310004090807")), "W past the end");
        assertNull(SubjectKeyRecords.parseSecretValue(HEX.parseHex("0100")));
        assertThrows(IllegalArgumentException.class, () -> SubjectKeyRecords.subjectKeyValue(new byte[3]));
    }
}
