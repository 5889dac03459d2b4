package io.meshcrypt.filter.crypto;

import com.google.crypto.tink.Configuration;
import com.google.crypto.tink.DeterministicAead;
import com.google.crypto.tink.KeyStatus;
import com.google.crypto.tink.KeysetHandle;
import com.google.crypto.tink.daead.AesSivKey;
import com.google.crypto.tink.daead.AesSivParameters;
import com.google.crypto.tink.daead.DeterministicAeadConfig2026;
import com.google.crypto.tink.daead.PredefinedDeterministicAeadParameters;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.kms.Printable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.util.Arrays;
import java.util.Objects;

/**
 * Deterministic encryption of record keys (AES-256-SIV through Tink's {@link DeterministicAead}), for topics whose
 * policy asks for it. Equal plaintext keys on one topic give equal ciphertext keys, which keeps log compaction and
 * per-key ordering working; the price is that key equality and frequency are visible (see docs/security.md).
 *
 * <pre>
 * offset  length  field
 * 0       4       magic 0x00 0x4D 0x43 0x4B ("\0MCK")
 * 4       1       format version (0x01)
 * 5       1       Tink output prefix marker 0x01 (TINK variant)
 * 6       4       Tink key id, big-endian
 * 10      16      SIV (synthetic IV, also the authentication tag)
 * 26      n       ciphertext (same length as the plaintext)
 * </pre>
 *
 * Bytes 5.. are exactly Tink's {@code encryptDeterministically} output, with associated data
 * {@code header(5 bytes) || UTF-8("topic:" + topic)}, so the same key on another topic encrypts differently and a
 * key copied to another topic fails to decrypt. Thread-safe.
 */
public final class RecordKeyCipher {

    /** Bytes 0-3 read as a big-endian int: "\0MCK". */
    public static final int MAGIC = 0x004D434B;
    public static final int VERSION_1 = 0x01;
    public static final int HEADER_LENGTH = 5;
    public static final int KEY_ID_OFFSET = HEADER_LENGTH + 1;
    private static final int SIV_LENGTH = 16;
    /** Bytes a key envelope adds to its plaintext: 5 header + 5 Tink prefix + 16 SIV. */
    public static final int OVERHEAD = KEY_ID_OFFSET + 4 + SIV_LENGTH;
    private static final byte[] HEADER = {0x00, 0x4D, 0x43, 0x4B, VERSION_1};
    private static final byte[] TOPIC_PREFIX = "topic:".getBytes(StandardCharsets.UTF_8);

    private final DeterministicAead daead;
    private final int[] keyIds;

    private RecordKeyCipher(DeterministicAead daead, int[] keyIds) {
        this.daead = daead;
        this.keyIds = keyIds;
    }

    /**
     * @param keyset every enabled key must be AES-SIV with the TINK output prefix, so that each ciphertext names its key
     */
    public static RecordKeyCipher fromKeysetHandle(KeysetHandle keyset) throws GeneralSecurityException {
        int[] ids = new int[keyset.size()];
        int n = 0;
        for (int i = 0; i < keyset.size(); i++) {
            KeysetHandle.Entry entry = keyset.getAt(i);
            if (!entry.getStatus().equals(KeyStatus.ENABLED)) {
                continue;
            }
            if (!(entry.getKey() instanceof AesSivKey siv)
                    || siv.getParameters().getVariant() != AesSivParameters.Variant.TINK) {
                throw new GeneralSecurityException("key " + Integer.toUnsignedString(entry.getId())
                        + " of the record-key keyset is not AES-SIV with the TINK output prefix");
            }
            ids[n++] = entry.getId();
        }
        int[] keyIds = Arrays.copyOf(ids, n);
        Arrays.sort(keyIds);
        return new RecordKeyCipher(keyset.getPrimitive(config(), DeterministicAead.class), keyIds);
    }

    /** Reads a cleartext Tink JSON AES-SIV keyset. */
    public static RecordKeyCipher fromKeysetFile(Path file) throws IOException, GeneralSecurityException {
        return fromKeysetHandle(Keysets.parse(file, config(), "record-key keyset file"));
    }

    /**
     * Opens the keyset in {@code file}, first writing a new single-key AES-256-SIV keyset (mode 0600) when there is
     * none. An existing file is never overwritten; when another process creates it at the same moment, its keyset wins.
     */
    public static RecordKeyCipher openOrCreate(Path file) throws IOException, GeneralSecurityException {
        if (!Files.exists(file)) {
            try {
                createKeyset(file);
            } catch (FileAlreadyExistsException raced) {
                // Created concurrently: read the winner's keyset below.
            }
        }
        return fromKeysetFile(file);
    }

    /**
     * Writes a new AES-256-SIV keyset to {@code file}, readable by its owner only. Replicas must share one: each would
     * otherwise encrypt equal keys differently and fail to decrypt the others'.
     *
     * @throws FileAlreadyExistsException when {@code file} exists
     */
    public static void createKeyset(Path file) throws IOException, GeneralSecurityException {
        KeysetHandle handle = KeysetHandle.generateNew(PredefinedDeterministicAeadParameters.AES256_SIV, config());
        Keysets.create(file, handle, config());
    }

    /** @return whether {@code value} (position..limit) starts with the key envelope magic; does not move its position */
    public static boolean isKeyEnvelope(ByteBuffer value) {
        int p = value.position();
        return value.remaining() >= HEADER_LENGTH
                && value.get(p) == 0x00 && value.get(p + 1) == 0x4D && value.get(p + 2) == 0x43 && value.get(p + 3) == 0x4B;
    }

    /** Reads {@code key} (position..limit) without moving its position; returns a buffer at position 0. */
    public ByteBuffer encrypt(String topic, ByteBuffer key) throws GeneralSecurityException {
        byte[] ciphertext = daead.encryptDeterministically(bytes(key, key.position()), aad(topic));
        ByteBuffer out = ByteBuffer.allocate(HEADER_LENGTH + ciphertext.length);
        out.put(HEADER).put(ciphertext).flip();
        return out;
    }

    /**
     * Reads {@code envelope} (position..limit) without moving its position; returns a buffer at position 0.
     *
     * @throws NotAnEnvelopeException without the magic
     * @throws UnsupportedEnvelopeVersionException for a version other than 1
     * @throws UnknownKeyException when the key id is not an enabled key of the keyset
     * @throws EnvelopeException when the envelope is truncated, tampered with, or bound to another topic
     */
    public ByteBuffer decrypt(String topic, ByteBuffer envelope) throws GeneralSecurityException {
        Objects.requireNonNull(topic, "topic");
        int p = envelope.position();
        if (!isKeyEnvelope(envelope)) {
            throw new NotAnEnvelopeException("key on topic " + Printable.of(topic, Printable.TOPIC_CHARS) + " is not a meshcrypt key envelope ("
                    + envelope.remaining() + " bytes without the \\0MCK magic)");
        }
        int version = Byte.toUnsignedInt(envelope.get(p + 4));
        if (version != VERSION_1) {
            throw new UnsupportedEnvelopeVersionException("key on topic " + Printable.of(topic, Printable.TOPIC_CHARS) + " has key envelope version "
                    + version + "; this filter-service reads version 1", version);
        }
        if (envelope.remaining() < OVERHEAD || envelope.get(p + HEADER_LENGTH) != 0x01) {
            throw new EnvelopeException("key envelope on topic " + Printable.of(topic, Printable.TOPIC_CHARS) + " is truncated or lacks the Tink prefix ("
                    + envelope.remaining() + " bytes)");
        }
        int keyId = envelope.getInt(p + KEY_ID_OFFSET);
        if (Arrays.binarySearch(keyIds, keyId) < 0) {
            throw new UnknownKeyException("key on topic " + Printable.of(topic, Printable.TOPIC_CHARS) + " was encrypted with record-key keyset key "
                    + Integer.toUnsignedString(keyId) + ", which is not an enabled key of the loaded keyset", keyId);
        }
        byte[] plaintext;
        try {
            plaintext = daead.decryptDeterministically(bytes(envelope, p + HEADER_LENGTH), aad(topic));
        } catch (GeneralSecurityException e) {
            throw new EnvelopeException("key on topic " + Printable.of(topic, Printable.TOPIC_CHARS) + " does not decrypt with key "
                    + Integer.toUnsignedString(keyId) + " (tampered, or written for another topic)", e);
        }
        return ByteBuffer.wrap(plaintext);
    }

    private static byte[] bytes(ByteBuffer buffer, int from) {
        byte[] b = new byte[buffer.limit() - from];
        buffer.get(from, b);
        return b;
    }

    private static byte[] aad(String topic) {
        byte[] name = topic.getBytes(StandardCharsets.UTF_8);
        byte[] aad = new byte[HEADER_LENGTH + TOPIC_PREFIX.length + name.length];
        System.arraycopy(HEADER, 0, aad, 0, HEADER_LENGTH);
        System.arraycopy(TOPIC_PREFIX, 0, aad, HEADER_LENGTH, TOPIC_PREFIX.length);
        System.arraycopy(name, 0, aad, HEADER_LENGTH + TOPIC_PREFIX.length, name.length);
        return aad;
    }

    /** Tink's fixed deterministic-AEAD configuration, independent of what else registered itself in the JVM. */
    private static Configuration config() {
        return DeterministicAeadConfig2026.get();
    }

}
