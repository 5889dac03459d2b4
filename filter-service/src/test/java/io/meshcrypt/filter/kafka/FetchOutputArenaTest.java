package io.meshcrypt.filter.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.protobuf.ByteString;
import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.crypto.DekManager;
import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.crypto.ValueCipherV2;
import io.meshcrypt.filter.framing.RewriteDeferred;
import io.meshcrypt.filter.kms.CountingKekProvider;
import io.meshcrypt.filter.kms.DekContext;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.kms.LocalKekProvider;
import io.meshcrypt.filter.records.OutputArena;
import io.meshcrypt.filter.transport.ConnectionHandler;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.message.FetchRequestData;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.Record;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Fetch responses decrypted into the thread's {@link OutputArena}, driven as the transport drives a connection (each
 * call in a scope, each answer sent before the scope ends): a chunk whose second frame waits for a data key keeps its
 * first, already decrypted frame while another connection on the thread decrypts and sends into the arena, and the
 * resumed chunk carries both frames byte-exact; multi-partition frames decrypt each partition intact.
 */
class FetchOutputArenaTest {
    private static final short FETCH_V = 12;
    private static final int VALUE_BYTES = 1000;

    @TempDir
    Path dir;
    private Path keyset;
    private final List<DekManager> managers = new ArrayList<>();
    /** The KMS of {@link #gated} answers once this opens (replaced per phase). */
    private volatile CountDownLatch kms = new CountDownLatch(0);
    private ConnectionHandler gated;
    private ConnectionHandler other;
    private int correlation;

    @BeforeEach
    void setUp() throws Exception {
        keyset = dir.resolve("keyset.json");
        Keysets.create(keyset);
        DekManager slow = new DekManager(new CountingKekProvider(new LocalKekProvider(keyset)) {
            @Override
            public byte[] unwrap(String kekId, byte[] wrapped, DekContext context) throws GeneralSecurityException {
                try {
                    kms.await(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                return super.unwrap(kekId, wrapped, context);
            }
        }, DekManager.Settings.defaults());
        managers.add(slow);
        gated = new KafkaProxy(EncryptionPolicy.encryptAll(), new ValueCipherV2(slow, null), null,
                new BrokerAddresses(Map.of()), TestLimits.kafka(1 << 20)).open();
        other = new KafkaProxy(EncryptionPolicy.encryptAll(), encryptor(), null, new BrokerAddresses(Map.of()),
                TestLimits.kafka(1 << 20)).open();
    }

    @AfterEach
    void tearDown() {
        managers.forEach(DekManager::close);
    }

    /** A cipher with a data key of its own. */
    private ValueCipherV2 encryptor() {
        DekManager m = new DekManager(new LocalKekProvider(keyset), DekManager.Settings.defaults());
        managers.add(m);
        return new ValueCipherV2(m, null);
    }

    @Test
    void givenAChunkWhoseSecondFrameWaitsForAKey_whenAnotherConnectionDecryptsAndSendsMeanwhile_thenTheResumedChunkIsByteExact()
            throws Exception {
        ValueCipher cachedKey = encryptor();
        ValueCipher newKey = encryptor();
        // The first data key is unwrapped already; the second is not, and its KMS answer waits for the test.
        List<String> warm = values("warm", 2);
        assertEquals(warm, values(sendInScope(gated, fetchResponse(gated, List.of(records(cachedKey, warm))))));
        List<String> first = values("first", 20);
        List<String> second = values("second", 20);
        ByteString chunk = fetchResponse(gated, List.of(records(cachedKey, first)))
                .concat(fetchResponse(gated, List.of(records(newKey, second))));
        kms = new CountDownLatch(1);

        // Given the chunk: its first frame is decrypted into the arena, its second waits for the key
        OutputArena.enter();
        RewriteDeferred deferred;
        try {
            deferred = assertThrows(RewriteDeferred.class, () -> gated.onWrite(chunk, false));
        } finally {
            OutputArena.exit();
        }

        // When another connection on this thread decrypts and sends responses meanwhile
        for (int i = 0; i < 3; i++) {
            List<String> values = values("other-" + i, 20);
            assertEquals(values, values(sendInScope(other, fetchResponse(other, List.of(records(cachedKey, values))))));
        }

        // Then the resumed chunk carries both frames as decrypted
        kms.countDown();
        deferred.ready().toCompletableFuture().handle((v, e) -> null).get(10, TimeUnit.SECONDS);
        ByteString[] frames = split(resumeInScope(gated));
        assertEquals(first, values(frames[0]));
        assertEquals(second, values(frames[1]));
    }

    @Test
    void givenAFrameOfThreePartitions_whenDecryptedIntoTheArena_thenEachPartitionIsIntact() throws Exception {
        ValueCipher cipher = encryptor();
        List<List<String>> partitions = List.of(values("p0", 10), values("p1", 30), values("p2", 5));
        List<MemoryRecords> records = new ArrayList<>();
        for (List<String> values : partitions) {
            records.add(records(cipher, values));
        }

        FetchResponseData seen = decode(sendInScope(other, fetchResponse(other, records)));

        for (int i = 0; i < partitions.size(); i++) {
            assertEquals(partitions.get(i), values((MemoryRecords) seen.responses().get(0).partitions().get(i).records()));
        }
    }

    /**
     * As the transport answers one chunk: in a scope, retried while deferred, the answer copied out (what gRPC does in
     * {@code onNext}) and then sent.
     */
    private static ByteString sendInScope(ConnectionHandler connection, ByteString chunk) throws Exception {
        ByteString out = null;
        for (int attempt = 0; out == null; attempt++) {
            OutputArena.enter();
            try {
                out = attempt == 0 ? connection.onWrite(chunk, false) : connection.resumeWrite();
                out = ByteString.copyFrom(out.toByteArray());
                OutputArena.sent();
            } catch (RewriteDeferred d) {
                d.ready().toCompletableFuture().handle((v, e) -> null).get(10, TimeUnit.SECONDS);
            } finally {
                OutputArena.exit();
            }
        }
        return out;
    }

    private static ByteString resumeInScope(ConnectionHandler connection) throws Exception {
        OutputArena.enter();
        try {
            ByteString out = ByteString.copyFrom(connection.resumeWrite().toByteArray());
            OutputArena.sent();
            return out;
        } finally {
            OutputArena.exit();
        }
    }

    /** Sends {@code connection} a Fetch request and returns the broker's response to it, one partition per records. */
    private ByteString fetchResponse(ConnectionHandler connection, List<MemoryRecords> partitions) throws Exception {
        int corr = ++correlation;
        connection.onRead(ByteString.copyFrom(KafkaFrames.requestFrame(corr, ApiKeys.FETCH, FETCH_V,
                new FetchRequestData())), false);
        List<FetchResponseData.PartitionData> data = new ArrayList<>();
        for (int i = 0; i < partitions.size(); i++) {
            data.add(new FetchResponseData.PartitionData().setPartitionIndex(i).setHighWatermark(100)
                    .setRecords(partitions.get(i)));
        }
        FetchResponseData response = new FetchResponseData().setResponses(new ArrayList<>(List.of(
                new FetchResponseData.FetchableTopicResponse().setTopic("orders").setPartitions(data))));
        return ByteString.copyFrom(KafkaFrames.responseFrame(corr, ApiKeys.FETCH, FETCH_V, response));
    }

    private static ByteString[] split(ByteString frames) {
        int first = 4 + frames.asReadOnlyByteBuffer().getInt();
        return new ByteString[]{frames.substring(0, first), frames.substring(first)};
    }

    private static FetchResponseData decode(ByteString frame) {
        return (FetchResponseData) KafkaFrames.decodeResponse(frame, ApiKeys.FETCH, FETCH_V);
    }

    /** The values of the only partition of a fetch response frame. */
    private static List<String> values(ByteString frame) {
        return values((MemoryRecords) decode(frame).responses().get(0).partitions().get(0).records());
    }

    private static List<String> values(MemoryRecords records) {
        List<String> values = new ArrayList<>();
        for (Record r : records.records()) {
            values.add(KafkaFrames.utf8(r.value()));
        }
        return values;
    }

    /** {@code count} values of {@link #VALUE_BYTES} (large enough to be spliced, not copied, into the frame). */
    private static List<String> values(String prefix, int count) {
        List<String> values = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            StringBuilder value = new StringBuilder(prefix).append('-').append(i).append('-');
            while (value.length() < VALUE_BYTES) {
                value.append((char) ('a' + (value.length() + i) % 26));
            }
            values.add(value.toString());
        }
        return values;
    }

    private static MemoryRecords records(ValueCipher cipher, List<String> values) throws Exception {
        ValueCipher blocking = cipher instanceof ValueCipherV2 envelopes ? envelopes.blocking(Duration.ofSeconds(10)) : cipher;
        SimpleRecord[] records = new SimpleRecord[values.size()];
        for (int i = 0; i < values.size(); i++) {
            ByteBuffer env = blocking.encrypt("orders", ByteBuffer.wrap(values.get(i).getBytes(StandardCharsets.UTF_8)));
            byte[] bytes = new byte[env.remaining()];
            env.get(bytes);
            records[i] = new SimpleRecord(null, bytes);
        }
        return MemoryRecords.withRecords(Compression.NONE, records);
    }
}
