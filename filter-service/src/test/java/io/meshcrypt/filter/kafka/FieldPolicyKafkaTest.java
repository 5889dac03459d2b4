package io.meshcrypt.filter.kafka;

import static io.meshcrypt.filter.kafka.KafkaFrames.bytes;
import static io.meshcrypt.filter.kafka.KafkaFrames.decodeRequest;
import static io.meshcrypt.filter.kafka.KafkaFrames.decodeResponse;
import static io.meshcrypt.filter.kafka.KafkaFrames.records;
import static io.meshcrypt.filter.kafka.KafkaFrames.requestFrame;
import static io.meshcrypt.filter.kafka.KafkaFrames.responseFrame;
import static io.meshcrypt.filter.kafka.KafkaFrames.utf8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.crypto.ValueEnvelope;
import io.meshcrypt.filter.framing.KafkaFrameException;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.transport.ConnectionHandler;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.TopicRule;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.message.FetchRequestData;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.Record;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Field-level topic policies through the whole Kafka connection pipeline: Produce stores only the listed JSON fields
 * encrypted, Fetch gives consumers the original JSON back.
 */
class FieldPolicyKafkaTest {
    private static final short PRODUCE_V = 12;
    private static final short FETCH_V = 12;
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String ORDER = "{\"id\":1,\"card\":{\"number\":\"4111111111111111\",\"exp\":\"12/29\"},\"total\":12.50}";

    @TempDir
    Path dir;
    private ValueCipherV1 cipher;
    private ConnectionHandler connection;
    private int correlation;

    @BeforeEach
    void setUp() throws Exception {
        Keysets.create(dir.resolve("keyset.json"));
        cipher = ValueCipherV1.fromKeysetFile(dir.resolve("keyset.json"));
        EncryptionPolicy policy = EncryptionPolicy.ofRules(List.of(
                TopicRule.wholeValue("orders-raw"),
                new TopicRule("orders*", List.of(JsonPointer.parse("/card/number"), JsonPointer.parse("/card/cvv")))),
                EncryptionPolicy.Unmatched.PASSTHROUGH);
        connection = new KafkaProxy(policy, cipher, null, new BrokerAddresses(Map.of()), TestLimits.kafka(1 << 20)).open();
    }

    @Test
    void givenFieldPolicy_whenProduced_thenOnlyTheListedFieldIsAnEnvelopeBoundToTheTopic() throws Exception {
        List<Record> stored = produce("orders-eu", ORDER);

        JsonNode value = JSON.readTree(bytes(stored.getFirst().value()));
        assertEquals(1, value.get("id").asInt());
        assertEquals("12/29", value.at("/card/exp").asText());
        assertTrue(new String(bytes(stored.getFirst().value()), StandardCharsets.UTF_8).endsWith(",\"total\":12.50}"));
        byte[] envelope = Base64.getDecoder().decode(value.at("/card/number").asText());
        assertTrue(ValueEnvelope.isEnvelope(ByteBuffer.wrap(envelope)));
        assertEquals("\"4111111111111111\"", utf8(cipher.decrypt("orders-eu", ByteBuffer.wrap(envelope))));
        assertTrue(!new String(bytes(stored.getFirst().value()), StandardCharsets.UTF_8).contains("4111111111111111"));
    }

    @Test
    void givenFieldEncryptedRecords_whenFetched_thenConsumersGetTheOriginalJson() throws Exception {
        List<Record> stored = produce("orders-eu", ORDER, "{\"id\":2}");

        FetchResponseData.PartitionData partition = fetch("orders-eu", stored);

        assertEquals(Errors.NONE.code(), partition.errorCode());
        List<Record> seen = records(partition.records());
        assertEquals(ORDER, new String(bytes(seen.get(0).value()), StandardCharsets.UTF_8));
        assertEquals("{\"id\":2}", new String(bytes(seen.get(1).value()), StandardCharsets.UTF_8));
    }

    @Test
    void givenFirstMatchingEntryIsWholeValue_whenProduced_thenTheWholeValueIsEncrypted() throws Exception {
        List<Record> stored = produce("orders-raw", ORDER);

        assertEquals(ORDER, utf8(cipher.decrypt("orders-raw", stored.getFirst().value())));
    }

    @Test
    void givenFieldPolicy_whenValueIsNotJson_thenTheProduceFailsRatherThanStoringPlaintext() throws Exception {
        byte[] frame = request(ApiKeys.PRODUCE, PRODUCE_V, produceRequest("orders-eu", "card=4111111111111111"));

        assertThrows(KafkaFrameException.class, () -> connection.onRead(ByteString.copyFrom(frame), false));
    }

    @Test
    void givenFieldTopicRecordWithAPlaintextField_whenFetched_thenCorruptMessage() throws Exception {
        List<Record> plaintext = records(MemoryRecords.withRecords(Compression.NONE,
                new SimpleRecord(null, ORDER.getBytes(StandardCharsets.UTF_8))));

        assertEquals(Errors.CORRUPT_MESSAGE.code(), fetch("orders-eu", plaintext).errorCode());
    }

    @Test
    void givenWholeValueEnvelopeOnAFieldTopic_whenFetched_thenDecryptedAsAWhole() throws Exception {
        byte[] envelope = bytes(cipher.encrypt("orders-eu", ByteBuffer.wrap(ORDER.getBytes(StandardCharsets.UTF_8))));
        List<Record> older = records(MemoryRecords.withRecords(Compression.NONE, new SimpleRecord(null, envelope)));

        FetchResponseData.PartitionData partition = fetch("orders-eu", older);

        assertEquals(ORDER, new String(bytes(records(partition.records()).getFirst().value()), StandardCharsets.UTF_8));
    }

    // ---- helpers ----

    private List<Record> produce(String topic, String... values) throws Exception {
        ByteString out = connection.onRead(ByteString.copyFrom(request(ApiKeys.PRODUCE, PRODUCE_V, produceRequest(topic, values))), false);
        ProduceRequestData sent = (ProduceRequestData) decodeRequest(out, ApiKeys.PRODUCE);
        return records(sent.topicData().iterator().next().partitionData().getFirst().records());
    }

    private FetchResponseData.PartitionData fetch(String topic, List<Record> stored) throws Exception {
        int corr = ++correlation;
        connection.onRead(ByteString.copyFrom(requestFrame(corr, ApiKeys.FETCH, FETCH_V, new FetchRequestData())), false);
        SimpleRecord[] simple = stored.stream().map(r -> new SimpleRecord(r.key() == null ? null : bytes(r.key()), bytes(r.value()))).toArray(SimpleRecord[]::new);
        FetchResponseData response = new FetchResponseData().setResponses(new ArrayList<>(List.of(
                new FetchResponseData.FetchableTopicResponse().setTopic(topic).setPartitions(new ArrayList<>(List.of(
                        new FetchResponseData.PartitionData().setPartitionIndex(0).setHighWatermark(10)
                                .setRecords(MemoryRecords.withRecords(Compression.NONE, simple))))))));
        ByteString out = connection.onWrite(ByteString.copyFrom(responseFrame(corr, ApiKeys.FETCH, FETCH_V, response)), false);
        return ((FetchResponseData) decodeResponse(out, ApiKeys.FETCH, FETCH_V)).responses().getFirst().partitions().getFirst();
    }

    private static ProduceRequestData produceRequest(String topic, String... values) {
        SimpleRecord[] records = new SimpleRecord[values.length];
        for (int i = 0; i < values.length; i++) {
            records[i] = new SimpleRecord(("k" + i).getBytes(StandardCharsets.UTF_8), values[i].getBytes(StandardCharsets.UTF_8));
        }
        ProduceRequestData.TopicProduceDataCollection topics = new ProduceRequestData.TopicProduceDataCollection();
        topics.add(new ProduceRequestData.TopicProduceData().setName(topic)
                .setPartitionData(new ArrayList<>(List.of(new ProduceRequestData.PartitionProduceData().setIndex(0)
                        .setRecords(MemoryRecords.withRecords(Compression.gzip().build(), records))))));
        return new ProduceRequestData().setAcks((short) 0).setTimeoutMs(30_000).setTopicData(topics); // acks=0: no response to answer before the Fetch
    }

    private byte[] request(ApiKeys api, short version, ApiMessage body) {
        return requestFrame(++correlation, api, version, body);
    }






}
