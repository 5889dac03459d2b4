package io.meshcrypt.filter.kafka;

import static io.meshcrypt.filter.kafka.KafkaFrames.requestFrame;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.crypto.NonceBudget;
import io.meshcrypt.filter.crypto.NonceLimitException;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.framing.KafkaFrameException;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.transport.ConnectionHandler;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A version-1 key at its random-nonce limit: the Produce that would pass it closes the connection, nothing forwarded. */
class V1NonceLimitProduceTest {
    private static final short PRODUCE_V = 12;

    @TempDir
    Path dir;

    @Test
    void givenAV1KeyWithTwoRecordsLeft_whenAProduceCarriesThree_thenTheConnectionIsClosedNamingTheLimit() throws Exception {
        Path keyset = dir.resolve("keyset.json");
        Keysets.create(keyset);
        ValueCipherV1 cipher = ValueCipherV1.fromKeysetFile(keyset, new NonceBudget.Settings(4, 2, 2));
        ConnectionHandler connection = new KafkaProxy(EncryptionPolicy.encryptAll(), cipher, null,
                new BrokerAddresses(Map.of()), TestLimits.kafka(1 << 20)).open();
        ByteString first = connection.onRead(ByteString.copyFrom(requestFrame(1, ApiKeys.PRODUCE, PRODUCE_V,
                produce("orders", "a", "b"))), false);
        assertFalse(first.isEmpty(), "within the limit the Produce is forwarded");

        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> connection.onRead(ByteString.copyFrom(
                requestFrame(2, ApiKeys.PRODUCE, PRODUCE_V, produce("orders", "c", "d", "e"))), false));

        assertTrue(e.getMessage().contains("Produce to orders-0"), e.getMessage());
        assertTrue(e.getMessage().contains("NIST SP 800-38D"), e.getMessage());
        Throwable cause = e;
        while (cause != null && !(cause instanceof NonceLimitException)) {
            cause = cause.getCause();
        }
        assertInstanceOf(NonceLimitException.class, cause, "the cipher's refusal is the cause");
    }

    private static ProduceRequestData produce(String topic, String... values) {
        SimpleRecord[] records = new SimpleRecord[values.length];
        for (int i = 0; i < values.length; i++) {
            records[i] = new SimpleRecord(null, values[i].getBytes(StandardCharsets.UTF_8));
        }
        ProduceRequestData.TopicProduceDataCollection topics = new ProduceRequestData.TopicProduceDataCollection();
        topics.add(new ProduceRequestData.TopicProduceData().setName(topic)
                .setPartitionData(new ArrayList<>(List.of(new ProduceRequestData.PartitionProduceData().setIndex(0)
                        .setRecords(MemoryRecords.withRecords(Compression.NONE, records))))));
        return new ProduceRequestData().setAcks((short) -1).setTimeoutMs(30_000).setTopicData(topics);
    }
}
