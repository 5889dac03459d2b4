package io.meshcrypt.filter.kafka;

import static io.meshcrypt.filter.kafka.KafkaFrames.decodeRequest;
import static io.meshcrypt.filter.kafka.KafkaFrames.records;
import static io.meshcrypt.filter.kafka.KafkaFrames.requestFrame;
import static io.meshcrypt.filter.kafka.KafkaFrames.responseFrame;
import static io.meshcrypt.filter.kafka.KafkaFrames.utf8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.crypto.ValueEnvelope;
import io.meshcrypt.filter.framing.RewriteDeferred;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.transport.ConnectionHandler;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.TopicRule;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.message.ProduceResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.Record;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A Produce whose topics have no data key yet is deferred (the connection thread never waits for the KMS), then
 * encrypted from its original bytes once the keys are ready; no plaintext is forwarded meanwhile.
 */
class ProduceDeferralTest {
    private static final short PRODUCE_V = 12;

    @TempDir
    Path dir;
    private ValueCipherV1 records;
    /** Topics whose key is "not ready" until {@link #keysReady} completes. */
    private final List<String> prepared = new CopyOnWriteArrayList<>();
    private final CompletableFuture<Void> keysReady = new CompletableFuture<>();
    private ConnectionHandler connection;

    @BeforeEach
    void setUp() throws Exception {
        Path keyset = dir.resolve("keyset.json");
        Keysets.create(keyset);
        records = ValueCipherV1.fromKeysetFile(keyset);
        ValueCipher slowKeys = new ValueCipher() {
            @Override
            public ByteBuffer encrypt(String topic, ByteBuffer plaintext) throws GeneralSecurityException {
                if (!keysReady.isDone()) {
                    throw new AssertionError("encrypt called before its key was ready");
                }
                return records.encrypt(topic, plaintext);
            }

            @Override
            public ByteBuffer decrypt(String topic, ByteBuffer envelope) throws GeneralSecurityException {
                return records.decrypt(topic, envelope);
            }

            @Override
            public CompletableFuture<Void> prepareForEncryption(String topic) {
                prepared.add(topic);
                return keysReady.isDone() ? null : keysReady;
            }
        };
        EncryptionPolicy policy = EncryptionPolicy.ofRules(List.of(TopicRule.wholeValue("secret-*")),
                EncryptionPolicy.Unmatched.PASSTHROUGH);
        connection = new KafkaProxy(policy, slowKeys, null, new BrokerAddresses(Map.of()), TestLimits.kafka(1 << 20)).open();
    }

    @Test
    void givenProduceToTwoTopicsWithoutKeys_whenKeysArrive_thenTheResumedFrameIsEncryptedAndItsResponseMatched()
            throws Exception {
        byte[] produce = requestFrame(7, ApiKeys.PRODUCE, PRODUCE_V, produce(List.of("secret-a", "secret-b", "public"), "v"));

        RewriteDeferred deferred = assertThrows(RewriteDeferred.class, () -> connection.onRead(ByteString.copyFrom(produce), false));
        List<String> preparedBeforeKeys = List.copyOf(prepared);
        keysReady.complete(null);
        ByteString out = connection.resumeRead();

        assertEquals(List.of("secret-a", "secret-b"), preparedBeforeKeys, "one wait for every encrypted topic of the request");
        assertTrue(deferred.ready().toCompletableFuture().isDone());
        ProduceRequestData sent = (ProduceRequestData) decodeRequest(out, ApiKeys.PRODUCE);
        for (ProduceRequestData.TopicProduceData t : sent.topicData()) {
            Record r = records(t.partitionData().get(0).records()).get(0);
            if (t.name().startsWith("secret-")) {
                assertTrue(ValueEnvelope.isEnvelope(r.value()), t.name() + " is encrypted");
                assertEquals("v", utf8(records.decrypt(t.name(), r.value())));
            } else {
                assertEquals("v", utf8(r.value()), "a passthrough topic is untouched");
            }
        }
        // The response of the deferred request is expected exactly once, in order.
        byte[] response = responseFrame(7, ApiKeys.PRODUCE, PRODUCE_V, new ProduceResponseData());
        assertArrayEquals(response, connection.onWrite(ByteString.copyFrom(response), false).toByteArray());
        assertThrows(Exception.class, () -> connection.onWrite(ByteString.copyFrom(response), false),
                "a second response to the same request is refused");
    }

    @Test
    void givenDeferredProduce_whenTheNextChunkArrivesBeforeResume_thenTheConnectionFailsClosed() throws Exception {
        byte[] produce = requestFrame(1, ApiKeys.PRODUCE, PRODUCE_V, produce(List.of("secret-a"), "plain"));
        assertThrows(RewriteDeferred.class, () -> connection.onRead(ByteString.copyFrom(produce), false));

        Exception e = assertThrows(Exception.class, () -> connection.onRead(ByteString.copyFrom(produce), false));
        assertFalse(e instanceof RewriteDeferred);
    }

    @Test
    void givenProduceNamingMoreNewTopicsThanTheLimit_whenSent_thenClosedWithoutPreparingTheRest() throws Exception {
        EncryptionPolicy policy = EncryptionPolicy.ofRules(List.of(TopicRule.wholeValue("secret-*")),
                EncryptionPolicy.Unmatched.PASSTHROUGH);
        ValueCipher cipher = new ValueCipher() {
            @Override
            public ByteBuffer encrypt(String topic, ByteBuffer plaintext) {
                throw new AssertionError("nothing may be encrypted");
            }

            @Override
            public ByteBuffer decrypt(String topic, ByteBuffer envelope) {
                throw new AssertionError();
            }

            @Override
            public CompletableFuture<Void> prepareForEncryption(String topic) {
                prepared.add(topic);
                return keysReady;
            }
        };
        KafkaProxy.Limits limits = new KafkaProxy.Limits(1 << 20, 1 << 20, 16, 16, 1 << 20, 3);
        ConnectionHandler limited = new KafkaProxy(policy, cipher, null, new BrokerAddresses(Map.of()), limits).open();
        List<String> topics = new ArrayList<>();
        for (int i = 0; i < 1000; i++) {
            topics.add("secret-" + i);
        }
        byte[] produce = requestFrame(1, ApiKeys.PRODUCE, PRODUCE_V, produce(topics, "v"));

        Exception e = assertThrows(Exception.class, () -> limited.onRead(ByteString.copyFrom(produce), false));

        assertFalse(e instanceof RewriteDeferred, "refused, not deferred: " + e);
        assertTrue(e.getMessage().contains("limits.maxNewDataKeysPerRequest"), e.getMessage());
        assertEquals(4, prepared.size(), "only the first topics reach the key manager, not all 1000");
    }

    private static ProduceRequestData produce(List<String> topics, String value) {
        ProduceRequestData.TopicProduceDataCollection all = new ProduceRequestData.TopicProduceDataCollection();
        for (String topic : topics) {
            all.add(new ProduceRequestData.TopicProduceData().setName(topic)
                    .setPartitionData(new ArrayList<>(List.of(new ProduceRequestData.PartitionProduceData().setIndex(0)
                            .setRecords(MemoryRecords.withRecords(Compression.NONE,
                                    new SimpleRecord(null, value.getBytes(StandardCharsets.UTF_8))))))));
        }
        return new ProduceRequestData().setAcks((short) -1).setTimeoutMs(1000).setTopicData(all);
    }
}
