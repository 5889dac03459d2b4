package io.meshcrypt.filter.subjects;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The records of the subject-key topic (a compacted Kafka topic; see docs/envelope-format.md "Subject-key topic"). Every
 * field is parsed defensively: anyone who can write to the topic can put anything in it, and such a record is skipped,
 * never trusted.
 *
 * <pre>
 * record key:   kind(1) || S(2, BE) || scope (UTF-8, S bytes: the policy entry's topic pattern) || id
 *   kind 0x01 scope secret     id = secret id (8)
 *   kind 0x02 subject key      id = subject ref (16) || key id (8)
 *   kind 0x03 subject marker   id = subject ref (16)
 * record value:
 *   scope secret    0x01 || K(1) || KEK id (UTF-8, K bytes) || W(2, BE) || KEK-wrapped 32-byte secret (W bytes)
 *   subject key     0x01 || nonce(12) || AES-256-GCM(wrapping key, 32-byte subject key) || tag(16)   (61 bytes)
 *                   0x02: forgotten (replaces the wrapped key under compaction)
 *   subject marker  0x02: forgotten (never removed: a key record for the subject appended later loses to it)
 * </pre>
 * A null value (tombstone) is never written; one found is skipped.
 */
public final class SubjectKeyRecords {
    public static final byte SCOPE_SECRET = 0x01;
    public static final byte SUBJECT_KEY = 0x02;
    public static final byte SUBJECT_MARKER = 0x03;
    public static final byte VALUE_KEY = 0x01;
    public static final byte VALUE_FORGOTTEN = 0x02;
    public static final int SECRET_ID_LENGTH = 8;
    public static final int REF_LENGTH = 16;
    public static final int KEY_ID_LENGTH = 8;
    public static final int NONCE_LENGTH = 12;
    public static final int WRAPPED_KEY_LENGTH = NONCE_LENGTH + 32 + 16;
    public static final int MAX_SCOPE_BYTES = 1024;

    /** A parsed record key. {@code id} is the kind's id bytes. */
    public record Key(byte kind, String scope, byte[] id) {
        public byte[] ref() {
            return Arrays.copyOfRange(id, 0, REF_LENGTH);
        }

        public byte[] keyId() {
            return Arrays.copyOfRange(id, REF_LENGTH, REF_LENGTH + KEY_ID_LENGTH);
        }
    }

    /** A parsed scope-secret value; {@code secretId} comes from its record key. */
    public record WrappedSecret(String kekId, byte[] wrapped, long secretId) {
        public WrappedSecret withId(long id) {
            return new WrappedSecret(kekId, wrapped, id);
        }
    }

    private SubjectKeyRecords() {
    }

    public static byte[] key(byte kind, String scope, byte[]... id) {
        byte[] s = scope.getBytes(StandardCharsets.UTF_8);
        if (s.length == 0 || s.length > MAX_SCOPE_BYTES) {
            throw new IllegalArgumentException("scope must be 1-" + MAX_SCOPE_BYTES + " UTF-8 bytes");
        }
        int length = 0;
        for (byte[] part : id) {
            length += part.length;
        }
        ByteBuffer b = ByteBuffer.allocate(3 + s.length + length).put(kind).putShort((short) s.length).put(s);
        for (byte[] part : id) {
            b.put(part);
        }
        return b.array();
    }

    /** @return the parsed key, or null when it is not a well-formed subject-key-topic record key */
    public static Key parseKey(byte[] key) {
        if (key == null || key.length < 4) {
            return null;
        }
        byte kind = key[0];
        int s = ((key[1] & 0xFF) << 8) | (key[2] & 0xFF);
        int idLength = switch (kind) {
            case SCOPE_SECRET -> SECRET_ID_LENGTH;
            case SUBJECT_KEY -> REF_LENGTH + KEY_ID_LENGTH;
            case SUBJECT_MARKER -> REF_LENGTH;
            default -> -1;
        };
        if (idLength < 0 || s == 0 || s > MAX_SCOPE_BYTES || key.length != 3 + s + idLength) {
            return null;
        }
        String scope = utf8(key, 3, s);
        return scope == null ? null : new Key(kind, scope, Arrays.copyOfRange(key, 3 + s, key.length));
    }

    public static byte[] secretValue(String kekId, byte[] wrapped) {
        byte[] k = kekId.getBytes(StandardCharsets.UTF_8);
        if (k.length == 0 || k.length > 255 || wrapped.length == 0 || wrapped.length > 0xFFFF) {
            throw new IllegalArgumentException("KEK id must be 1-255 bytes and the wrapped secret 1-65535");
        }
        return ByteBuffer.allocate(4 + k.length + wrapped.length).put(VALUE_KEY).put((byte) k.length).put(k)
                .putShort((short) wrapped.length).put(wrapped).array();
    }

    /** @return the parsed scope-secret value, or null when malformed */
    public static WrappedSecret parseSecretValue(byte[] value) {
        if (value == null || value.length < 5 || value[0] != VALUE_KEY) {
            return null;
        }
        int k = value[1] & 0xFF;
        if (k == 0 || value.length < 4 + k + 1) {
            return null;
        }
        int w = ((value[2 + k] & 0xFF) << 8) | (value[3 + k] & 0xFF);
        String kekId = utf8(value, 2, k);
        if (w == 0 || value.length != 4 + k + w || kekId == null) {
            return null;
        }
        return new WrappedSecret(kekId, Arrays.copyOfRange(value, 4 + k, value.length), 0);
    }

    /** @param wrapped nonce || ciphertext || tag, {@link #WRAPPED_KEY_LENGTH} bytes */
    public static byte[] subjectKeyValue(byte[] wrapped) {
        if (wrapped.length != WRAPPED_KEY_LENGTH) {
            throw new IllegalArgumentException("a wrapped subject key is " + WRAPPED_KEY_LENGTH + " bytes");
        }
        byte[] out = new byte[1 + WRAPPED_KEY_LENGTH];
        out[0] = VALUE_KEY;
        System.arraycopy(wrapped, 0, out, 1, wrapped.length);
        return out;
    }

    public static byte[] forgottenValue() {
        return new byte[] {VALUE_FORGOTTEN};
    }

    public static boolean isForgotten(byte[] value) {
        return value != null && value.length == 1 && value[0] == VALUE_FORGOTTEN;
    }

    /** @return the wrapped subject key in a subject-key value, or null when the value is not one */
    public static byte[] wrappedSubjectKey(byte[] value) {
        if (value == null || value.length != 1 + WRAPPED_KEY_LENGTH || value[0] != VALUE_KEY) {
            return null;
        }
        return Arrays.copyOfRange(value, 1, value.length);
    }

    private static String utf8(byte[] bytes, int offset, int length) {
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes, offset, length))
                    .toString();
        } catch (CharacterCodingException e) {
            return null;
        }
    }
}
