package io.meshcrypt.filter.kafka;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.audit.AccessAudit;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.protobuf.ByteString;
import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.crypto.DekManager;
import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.crypto.ValueCipherV2;
import io.meshcrypt.filter.framing.RewriteDeferred;
import io.meshcrypt.filter.kms.DekContext;
import io.meshcrypt.filter.kms.CountingKekProvider;
import io.meshcrypt.filter.kms.KekProvider;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.kms.LocalKekProvider;
import io.meshcrypt.filter.kms.WrappedDek;
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
import org.apache.kafka.common.message.RequestHeaderData;
import org.apache.kafka.common.message.ResponseHeaderData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.protocol.ObjectSerializationCache;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.Record;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Fetch responses carrying version-2 envelopes, through a proxy whose cipher writes v2 and still reads v1. */
class EnvelopeV2FetchTest {
    private static final short FETCH_V = 12;

    @TempDir
    Path dir;
    private Path keyset;
    private final List<DekManager> managers = new ArrayList<>();
    private ConnectionHandler connection;
    private int correlation;
    /** Rewrites deferred (a data key on its way) by {@link #fetch}, over the test. */
    private int deferrals;
    /** Run by {@link #fetch} at each deferral, before it waits. */
    private Runnable onDeferral = () -> {
    };

    @BeforeEach
    void setUp() throws Exception {
        keyset = dir.resolve("keyset.json");
        Keysets.create(keyset);
        ValueCipherV2 cipher = cipher(keyset, ValueCipherV1.fromKeysetFile(keyset));
        connection = new KafkaProxy(EncryptionPolicy.encryptAll(), cipher, null, new BrokerAddresses(Map.of()), TestLimits.kafka(1 << 20)).open();
    }

    @AfterEach
    void tearDown() {
        managers.forEach(DekManager::close);
    }

    private ValueCipherV2 cipher(Path kek, ValueCipherV1 v1) {
        DekManager m = new DekManager(new LocalKekProvider(kek), DekManager.Settings.defaults());
        managers.add(m);
        return new ValueCipherV2(m, v1);
    }

    @Test
    void givenV1AndV2ValuesInOnePartition_whenFetched_thenAllDecrypt() throws Exception {
        MemoryRecords records = records("orders",
                List.of(ValueCipherV1.fromKeysetFile(keyset), cipher(keyset, null), ValueCipherV1.fromKeysetFile(keyset)),
                "old", "new", "old again");

        FetchResponseData.PartitionData p = fetch("orders", records);

        assertEquals(Errors.NONE.code(), p.errorCode());
        List<String> values = new ArrayList<>();
        ((MemoryRecords) p.records()).records().forEach(r -> values.add(utf8(r)));
        assertEquals(List.of("old", "new", "old again"), values);
    }

    @Test
    void givenDekNotCachedYet_whenAFetchIsDeferredAndResumed_thenItsAccessIsReportedOnce() throws Exception {
        List<String> audited = new ArrayList<>();
        // The KMS answers only once the first attempt has been deferred: a fast local unwrap must not win the race.
        CountDownLatch deferred = new CountDownLatch(1);
        onDeferral = deferred::countDown;
        DekManager gated = new DekManager(new CountingKekProvider(new LocalKekProvider(keyset)) {
            @Override
            public byte[] unwrap(String kekId, byte[] wrapped, DekContext context) throws GeneralSecurityException {
                try {
                    deferred.await(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                return super.unwrap(kekId, wrapped, context);
            }
        }, DekManager.Settings.defaults());
        managers.add(gated);
        KafkaProxy proxy = new KafkaProxy(EncryptionPolicy.encryptAll(), new ValueCipherV2(gated, null), null,
                new BrokerAddresses(Map.of()), TestLimits.kafka(1 << 20));
        proxy.auditTo(identity -> new AccessAudit() {
            @Override
            public void access(String topic, Direction direction, Outcome outcome, int records, long bytes) {
                audited.add(direction + " " + topic + " " + outcome + " " + records);
            }

            @Override
            public void close() {
            }
        });
        connection = proxy.open();
        MemoryRecords records = records("orders", List.of(cipher(keyset, null)), "a", "b");

        FetchResponseData.PartitionData p = fetch("orders", records);

        assertEquals(Errors.NONE.code(), p.errorCode());
        assertTrue(deferrals > 0, "the first fetch waited for the data key to be unwrapped");
        assertEquals(List.of("FETCH orders ALLOWED 2"), audited);
    }

    @Test
    void givenV2ValueWhoseKekIsLost_whenFetched_thenThePartitionFailsWithCorruptMessage() throws Exception {
        Path lost = dir.resolve("lost.json");
        Keysets.create(lost);
        MemoryRecords records = records("orders", List.of(cipher(lost, null)), "unreadable");

        FetchResponseData.PartitionData p = fetch("orders", records);

        assertEquals(Errors.CORRUPT_MESSAGE.code(), p.errorCode());
        assertEquals(0, ((MemoryRecords) p.records()).sizeInBytes());
    }

    @Test
    void givenV2ValueOfAnotherTopic_whenFetched_thenThePartitionFailsWithCorruptMessage() throws Exception {
        MemoryRecords records = records("orders", List.of(cipher(keyset, null)), "moved");

        assertEquals(Errors.CORRUPT_MESSAGE.code(), fetch("copy", records).errorCode());
    }

    @ParameterizedTest(name = "Fetch v{0}")
    @ValueSource(shorts = {5, 12})
    void givenV2ValueWhoseDekIsNotCachedAndTheKmsIsDown_whenFetched_thenThePartitionGetsARetriableError(short version) throws Exception {
        MemoryRecords records = records("orders", List.of(cipher(keyset, null)), "later");
        LocalKekProvider local = new LocalKekProvider(keyset);
        KekProvider unreachable = new KekProvider() {
            @Override public String name() { return "unreachable"; }
            @Override public String currentKekId() throws GeneralSecurityException { return local.currentKekId(); }
            @Override public WrappedDek wrap(byte[] dek, DekContext context) throws GeneralSecurityException { return local.wrap(dek, context); }
            @Override public byte[] unwrap(String kekId, byte[] wrapped, DekContext context) throws GeneralSecurityException {
                throw new GeneralSecurityException("connect timed out");
            }
            @Override public String create() throws GeneralSecurityException { return local.create(); }
            @Override public String rotate() throws GeneralSecurityException { return local.rotate(); }
            @Override public List<KekInfo> list() throws GeneralSecurityException { return local.list(); }
        };
        DekManager fresh = new DekManager(unreachable, DekManager.Settings.defaults());
        managers.add(fresh);
        connection = new KafkaProxy(EncryptionPolicy.encryptAll(), new ValueCipherV2(fresh, null), null, new BrokerAddresses(Map.of()), TestLimits.kafka(1 << 20)).open();

        FetchResponseData.PartitionData p = fetch("orders", records, version);

        // clients up to Fetch v5 do not know KAFKA_STORAGE_ERROR; both make the consumer refresh metadata and retry
        assertEquals((version <= 5 ? Errors.NOT_LEADER_OR_FOLLOWER : Errors.KAFKA_STORAGE_ERROR).code(), p.errorCode());
        assertEquals(0, ((MemoryRecords) p.records()).sizeInBytes());
    }

    private FetchResponseData.PartitionData fetch(String topic, MemoryRecords records) throws Exception {
        return fetch(topic, records, FETCH_V);
    }

    private FetchResponseData.PartitionData fetch(String topic, MemoryRecords records, short version) throws Exception {
        int corr = ++correlation;
        connection.onRead(ByteString.copyFrom(frame(new RequestHeaderData().setRequestApiKey(ApiKeys.FETCH.id)
                .setRequestApiVersion(version).setCorrelationId(corr).setClientId("t"),
                ApiKeys.FETCH.requestHeaderVersion(version), new FetchRequestData(), version)), false);
        FetchResponseData response = new FetchResponseData().setResponses(new ArrayList<>(List.of(
                new FetchResponseData.FetchableTopicResponse().setTopic(topic).setPartitions(new ArrayList<>(List.of(
                        new FetchResponseData.PartitionData().setPartitionIndex(0).setHighWatermark(10).setRecords(records)))))));
        ByteString in = ByteString.copyFrom(frame(new ResponseHeaderData().setCorrelationId(corr),
                ApiKeys.FETCH.responseHeaderVersion(version), response, version));
        ByteString out = null;
        // What the transport does: park until the data key is ready, then resume the same chunk (maybe more than once).
        for (int attempt = 0; out == null; attempt++) {
            try {
                out = attempt == 0 ? connection.onWrite(in, false) : connection.resumeWrite();
            } catch (RewriteDeferred d) {
                deferrals++;
                onDeferral.run();
                if (attempt == 10) {
                    throw d;
                }
                d.ready().toCompletableFuture().handle((v, e) -> null).get(10, TimeUnit.SECONDS);
            }
        }
        ByteBuffer buf = out.asReadOnlyByteBuffer();
        buf.getInt();
        new ResponseHeaderData(new ByteBufferAccessor(buf), ApiKeys.FETCH.responseHeaderVersion(version));
        FetchResponseData seen = new FetchResponseData();
        seen.read(new ByteBufferAccessor(buf), version);
        return seen.responses().get(0).partitions().get(0);
    }

    /** Record i is encrypted by {@code ciphers[i % size]}. */
    private static MemoryRecords records(String topic, List<ValueCipher> ciphers, String... values) throws Exception {
        SimpleRecord[] records = new SimpleRecord[values.length];
        for (int i = 0; i < values.length; i++) {
            ValueCipher cipher = ciphers.get(i % ciphers.size());
            if (cipher instanceof ValueCipherV2 envelopes) {
                cipher = envelopes.blocking(Duration.ofSeconds(10));
            }
            ByteBuffer env = cipher.encrypt(topic, ByteBuffer.wrap(values[i].getBytes(StandardCharsets.UTF_8)));
            byte[] bytes = new byte[env.remaining()];
            env.get(bytes);
            records[i] = new SimpleRecord(null, bytes);
        }
        return MemoryRecords.withRecords(Compression.NONE, records);
    }

    private static byte[] frame(ApiMessage header, short headerVersion, ApiMessage body, short version) {
        ObjectSerializationCache cache = new ObjectSerializationCache();
        int size = header.size(cache, headerVersion) + body.size(cache, version);
        ByteBuffer buf = ByteBuffer.allocate(4 + size).putInt(size);
        ByteBufferAccessor out = new ByteBufferAccessor(buf);
        header.write(out, cache, headerVersion);
        body.write(out, cache, version);
        return buf.array();
    }

    private static String utf8(Record r) {
        byte[] b = new byte[r.valueSize()];
        r.value().duplicate().get(b);
        return new String(b, StandardCharsets.UTF_8);
    }
}
