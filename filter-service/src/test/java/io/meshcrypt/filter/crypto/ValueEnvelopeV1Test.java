package io.meshcrypt.filter.crypto;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

class ValueEnvelopeV1Test {

    private static ByteBuffer v1(int keyId, int bodyLength) {
        ByteBuffer b = ByteBuffer.allocate(ValueEnvelopeV1.OVERHEAD + bodyLength);
        b.put(new byte[] {0x00, 0x4D, 0x43, 0x45, 0x01, 0x01}).putInt(keyId);
        return b.clear();
    }

    @Test
    void givenVersion1Envelope_whenInspected_thenVersionAndUnsignedKeyIdWithoutMovingPosition() throws Exception {
        ByteBuffer value = v1(0xF0000001, 3);

        ValueEnvelopeV1.Info info = ValueEnvelopeV1.inspect(value);

        assertEquals(1, info.version());
        assertEquals(0xF0000001, info.keyId());
        assertEquals("4026531841", info.keyIdText());
        assertEquals(0, value.position());
    }

    @Test
    void givenMagicAtNonZeroPosition_whenChecked_thenRecognised() {
        ByteBuffer value = ByteBuffer.allocate(50).position(7);
        value.put(new byte[] {0x00, 0x4D, 0x43, 0x45, 0x01}).position(7);

        assertTrue(ValueEnvelope.isEnvelope(value));
        assertFalse(ValueEnvelope.isEnvelope(value.duplicate().position(8)));
    }

    @Test
    void givenPlainOrShortValues_whenChecked_thenNotEnvelopes() {
        assertFalse(ValueEnvelope.isEnvelope(ByteBuffer.allocate(0)));
        assertFalse(ValueEnvelope.isEnvelope(ByteBuffer.wrap(new byte[] {0x00, 0x4D, 0x43, 0x45})));
        assertFalse(ValueEnvelope.isEnvelope(ByteBuffer.wrap("hello world".getBytes())));
        assertThrows(NotAnEnvelopeException.class, () -> ValueEnvelopeV1.inspect(ByteBuffer.wrap("hello".getBytes())));
    }

    @Test
    void givenUnknownVersion_whenInspected_thenRejectedWithVersion() {
        ByteBuffer value = v1(1, 0).put(4, (byte) 0x02);

        UnsupportedEnvelopeVersionException e =
                assertThrows(UnsupportedEnvelopeVersionException.class, () -> ValueEnvelopeV1.inspect(value));

        assertEquals(2, e.version());
        assertTrue(ValueEnvelope.isEnvelope(value));
    }

    @Test
    void givenTruncatedVersion1Envelope_whenInspected_thenMalformed() {
        ByteBuffer value = v1(1, 0).limit(ValueEnvelopeV1.OVERHEAD - 1);

        EnvelopeException e = assertThrows(EnvelopeException.class, () -> ValueEnvelopeV1.inspect(value));

        assertEquals(EnvelopeException.class, e.getClass());
        assertTrue(e.getMessage().contains("truncated"), e.getMessage());
    }

    @Test
    void givenWrongTinkPrefixMarker_whenInspected_thenMalformed() {
        ByteBuffer value = v1(1, 0).put(5, (byte) 0x00);

        assertEquals(EnvelopeException.class,
                assertThrows(EnvelopeException.class, () -> ValueEnvelopeV1.inspect(value)).getClass());
    }
}
