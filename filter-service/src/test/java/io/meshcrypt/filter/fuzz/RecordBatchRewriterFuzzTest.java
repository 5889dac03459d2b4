package io.meshcrypt.filter.fuzz;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.fail;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.meshcrypt.filter.crypto.RecordKeyCipher;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.records.RecordBatchRewriter;
import io.meshcrypt.filter.records.RecordBatchRewriter.TruncatedTail;
import io.meshcrypt.filter.records.RecordBatchRewrites;
import io.meshcrypt.filter.records.RecordRewriteException;
import io.meshcrypt.filter.records.ValueRewriter;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.util.Arrays;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.record.internal.CompressionType;
import org.apache.kafka.common.record.internal.ControlRecordType;
import org.apache.kafka.common.record.internal.EndTransactionMarker;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.MemoryRecordsBuilder;
import org.apache.kafka.common.record.internal.RecordBatch;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.apache.kafka.common.utils.internals.ByteBufferOutputStream;
import org.apache.kafka.common.utils.internals.Crc32C;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * RecordBatchRewriter on mutated record batches (the Produce and Fetch payloads a hostile client or broker controls).
 *
 * <p>Input: byte 0 = mode (bit 0: truncated tail REJECT instead of PASS_THROUGH; bit 1: also rewrite keys; bit 2:
 * recompute every batch CRC first, as an attacker would, so that mutations get past the CRC check into the
 * decompression and record parsing), the rest = the records section. Invariants: only RecordRewriteException escapes; the rewriter can read what it wrote (an
 * identity rewrite of the output succeeds and changes nothing); and encrypting then decrypting gives exactly what an
 * identity rewrite gives, keys included.
 */
class RecordBatchRewriterFuzzTest {
    private static final String TOPIC = "orders";
    private static final ValueCipherV1 VALUES = FuzzSupport.recordCipher();
    private static final RecordKeyCipher KEYS = FuzzSupport.keyCipher();
    private static final ValueRewriter IDENTITY = value -> value;
    private static final ValueRewriter ENCRYPT = value -> crypt(() -> VALUES.encrypt(TOPIC, value));
    private static final ValueRewriter DECRYPT = value -> crypt(() -> VALUES.decrypt(TOPIC, value));
    private static final ValueRewriter ENCRYPT_KEY = key -> crypt(() -> KEYS.encrypt(TOPIC, key));
    private static final ValueRewriter DECRYPT_KEY = key -> crypt(() -> KEYS.decrypt(TOPIC, key));

    private interface Crypto {
        ByteBuffer apply() throws GeneralSecurityException;
    }

    private static ByteBuffer crypt(Crypto c) throws RecordRewriteException {
        try {
            return c.apply();
        } catch (GeneralSecurityException e) {
            throw new RecordRewriteException(e.getMessage(), e);
        }
    }

    @FuzzTest(maxDuration = "60s")
    void givenMutatedBatches_whenRewritten_thenOnlyRecordRewriteExceptionAndEncryptionRoundTrips(byte[] input) {
        if (input.length < 1) {
            return;
        }
        TruncatedTail tail = (input[0] & 1) != 0 ? TruncatedTail.REJECT : TruncatedTail.PASS_THROUGH;
        boolean keys = (input[0] & 2) != 0;
        byte[] section = Arrays.copyOfRange(input, 1, input.length);
        if ((input[0] & 4) != 0) {
            fixCrcs(section);
        }

        byte[] identity;
        try {
            identity = bytes(rewrite(section, IDENTITY, keys ? IDENTITY : null, tail));
        } catch (RecordRewriteException e) {
            return; // rejected: the connection would be closed (or the partition failed)
        }
        try {
            assertArrayEquals(identity, bytes(rewrite(identity, IDENTITY, keys ? IDENTITY : null, tail)),
                    "an identity rewrite of the rewriter's own output must change nothing");
        } catch (RecordRewriteException e) {
            fail("the rewriter cannot read its own output: " + e.getMessage(), e);
        }
        byte[] encrypted;
        try {
            encrypted = bytes(rewrite(section, ENCRYPT, keys ? ENCRYPT_KEY : null, tail));
        } catch (RecordRewriteException e) {
            fail("encrypting failed where an identity rewrite succeeded: " + e.getMessage(), e);
            return;
        }
        try {
            assertArrayEquals(identity, bytes(rewrite(encrypted, DECRYPT, keys ? DECRYPT_KEY : null, tail)),
                    "decrypting what was encrypted must give back the identity rewrite");
        } catch (RecordRewriteException e) {
            fail("what was encrypted does not decrypt: " + e.getMessage(), e);
        }
    }

    /** Recomputes the CRC-32C of every v2 batch whose length field fits, like a producer or broker forging batches. */
    static void fixCrcs(byte[] section) {
        ByteBuffer b = ByteBuffer.wrap(section);
        int p = 0;
        while (section.length - p >= 61) {
            int size = b.getInt(p + 8) + 12;
            if (size < 61 || size > section.length - p) {
                return;
            }
            b.putInt(p + 17, (int) Crc32C.compute(section, p + 21, size - 21));
            p += size;
        }
    }

    private static MemoryRecords rewrite(byte[] section, ValueRewriter values, ValueRewriter keys, TruncatedTail tail)
            throws RecordRewriteException {
        return RecordBatchRewrites.rewrite(MemoryRecords.readableRecords(ByteBuffer.wrap(section)), values, keys, tail);
    }

    private static byte[] bytes(MemoryRecords records) {
        ByteBuffer b = records.buffer().duplicate();
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }

    @Test
    void writeSeeds(@TempDir Path scratch) throws Exception {
        Path root = FuzzSupport.seedRoot(scratch);
        String method = "givenMutatedBatches_whenRewritten_thenOnlyRecordRewriteExceptionAndEncryptionRoundTrips";
        Header[] headers = {new RecordHeader("h", "v".getBytes(StandardCharsets.UTF_8)), new RecordHeader("n", null)};
        SimpleRecord[] records = {
                new SimpleRecord(1_700_000_000_000L, "k1".getBytes(StandardCharsets.UTF_8), "value one".getBytes(StandardCharsets.UTF_8), headers),
                new SimpleRecord(1_700_000_000_001L, null, "v2".getBytes(StandardCharsets.UTF_8)),
                new SimpleRecord(1_700_000_000_002L, "k3".getBytes(StandardCharsets.UTF_8), null),
        };
        for (CompressionType codec : CompressionType.values()) {
            byte[] batch = bytes(MemoryRecords.withRecords(Compression.of(codec).build(), records));
            FuzzSupport.seed(root, getClass(), method, codec.name + "-values", FuzzSupport.concat(new byte[] {0}, batch));
            FuzzSupport.seed(root, getClass(), method, codec.name + "-keys-reject", FuzzSupport.concat(new byte[] {3}, batch));
            if (codec == CompressionType.GZIP || codec == CompressionType.ZSTD) { // the others compress zeros only ~20-250x
                // 4 MiB of zeros in one value: a small compressed batch that expands a thousandfold (bomb-shaped,
                // still harmless), with the fix-CRC bit so that mutations of its size fields stay checksummed.
                byte[] zeros = bytes(MemoryRecords.withRecords(Compression.of(codec).build(),
                        new SimpleRecord(1_700_000_000_000L, null, new byte[4 << 20])));
                FuzzSupport.seed(root, getClass(), method, codec.name + "-4mib-of-zeros", FuzzSupport.concat(new byte[] {4}, zeros));
            }
        }
        byte[] idempotent = bytes(MemoryRecords.withIdempotentRecords(Compression.NONE, 42L, (short) 1, 7, records));
        byte[] control = bytes(MemoryRecords.withEndTransactionMarker(100L, 0L, 5, 42L, (short) 1,
                new EndTransactionMarker(ControlRecordType.COMMIT, 3)));
        byte[] logAppend = logAppendTimeBatch(records);
        FuzzSupport.seed(root, getClass(), method, "idempotent-control-logappend-truncated",
                FuzzSupport.concat(new byte[] {2}, idempotent, control, logAppend, Arrays.copyOf(idempotent, 40)));
        FuzzSupport.requireSeeds(root, getClass());
    }

    private static byte[] logAppendTimeBatch(SimpleRecord[] records) {
        MemoryRecordsBuilder builder = new MemoryRecordsBuilder(new ByteBufferOutputStream(256), RecordBatch.MAGIC_VALUE_V2,
                Compression.NONE, TimestampType.LOG_APPEND_TIME, 500L, 1_700_000_001_000L, RecordBatch.NO_PRODUCER_ID,
                RecordBatch.NO_PRODUCER_EPOCH, RecordBatch.NO_SEQUENCE, false, false, 3, Integer.MAX_VALUE,
                RecordBatch.NO_TIMESTAMP);
        long offset = 500L;
        for (SimpleRecord r : records) {
            builder.appendWithOffset(offset, r);
            offset += 2; // a compacted batch: gaps in the offsets
        }
        return bytes(builder.build());
    }
}
