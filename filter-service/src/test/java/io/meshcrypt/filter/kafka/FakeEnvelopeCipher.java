package io.meshcrypt.filter.kafka;

import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.kms.TransientKmsException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;

/**
 * A value cipher whose "envelope" is the 5-byte meshcrypt v2 header followed by the plaintext, with a switchable KMS
 * outage and a count of every decrypt call, so tests see exactly when the filter would have asked the KMS.
 */
final class FakeEnvelopeCipher implements ValueCipher {
    static final byte[] HEADER = {0x00, 0x4D, 0x43, 0x45, 0x02};

    final AtomicBoolean kmsDown = new AtomicBoolean();
    final AtomicInteger decrypts = new AtomicInteger();

    @Override
    public ByteBuffer encrypt(String topic, ByteBuffer plaintext) {
        return ByteBuffer.wrap(envelope(bytes(plaintext)));
    }

    @Override
    public ByteBuffer decrypt(String topic, ByteBuffer envelope) throws GeneralSecurityException {
        decrypts.incrementAndGet();
        if (kmsDown.get()) {
            throw new TransientKmsException("KMS call to fake failed: connect timed out", null);
        }
        byte[] all = bytes(envelope);
        if (all.length < HEADER.length) {
            throw new GeneralSecurityException("truncated envelope");
        }
        return ByteBuffer.wrap(all, HEADER.length, all.length - HEADER.length).slice();
    }

    static byte[] envelope(byte[] plaintext) {
        byte[] out = new byte[HEADER.length + plaintext.length];
        System.arraycopy(HEADER, 0, out, 0, HEADER.length);
        System.arraycopy(plaintext, 0, out, HEADER.length, plaintext.length);
        return out;
    }

    static byte[] envelope(String plaintext) {
        return envelope(plaintext.getBytes(StandardCharsets.UTF_8));
    }

    static MemoryRecords records(Compression compression, byte[]... values) {
        SimpleRecord[] records = new SimpleRecord[values.length];
        for (int i = 0; i < values.length; i++) {
            records[i] = new SimpleRecord(1_700_000_000_000L, null, values[i]);
        }
        return MemoryRecords.withRecords(compression, records);
    }

    static byte[] bytes(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.duplicate().get(out);
        return out;
    }
}
