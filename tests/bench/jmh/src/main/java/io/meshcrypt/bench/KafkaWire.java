package io.meshcrypt.bench;

import com.google.protobuf.ByteString;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.message.FetchRequestData;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.message.ProduceResponseData;
import org.apache.kafka.common.message.RequestHeaderData;
import org.apache.kafka.common.message.ResponseHeaderData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.apache.kafka.common.requests.RequestUtils;

/**
 * Kafka frames as a producer, a consumer and the broker put them on the wire, built with kafka-clients' messages at
 * the newest versions the mesh offers (topics by name): Produce v12 with acks=all, Fetch v12.
 */
final class KafkaWire {
    static final short PRODUCE_VERSION = 12;
    static final short FETCH_VERSION = 12;

    private KafkaWire() {
    }

    /** Per record of {@link #batch(int, int, boolean)}: a tracing header, and two a headers policy lists. */
    static final Header[] HEADERS = {
            new RecordHeader("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".getBytes()),
            new RecordHeader("user-id", "customer-4711".getBytes()),
            new RecordHeader("x-pii-email", "alice@example.com".getBytes())};

    /** {@code count} values of {@code size} random letters (as ProducerPerformance sends), no keys, one batch. */
    static MemoryRecords batch(int count, int size) {
        return batch(count, size, false);
    }

    /** As {@link #batch(int, int)}, each record with {@link #HEADERS} when {@code headers}. */
    static MemoryRecords batch(int count, int size, boolean headers) {
        SplittableRandom random = new SplittableRandom(14);
        SimpleRecord[] records = new SimpleRecord[count];
        for (int i = 0; i < count; i++) {
            byte[] value = new byte[size];
            for (int j = 0; j < size; j++) {
                value[j] = (byte) ('A' + random.nextInt(26));
            }
            records[i] = headers ? new SimpleRecord(0L, null, value, HEADERS) : new SimpleRecord(null, value);
        }
        return MemoryRecords.withRecords(Compression.NONE, records);
    }

    /** The values of a batch, in order, for the raw cipher baseline. */
    static List<byte[]> values(MemoryRecords batch) {
        List<byte[]> out = new ArrayList<>();
        batch.records().forEach(r -> {
            byte[] v = new byte[r.valueSize()];
            r.value().get(v);
            out.add(v);
        });
        return out;
    }

    static ByteString produceRequest(int correlationId, String topic, MemoryRecords batch) {
        ProduceRequestData.TopicProduceDataCollection topics = new ProduceRequestData.TopicProduceDataCollection();
        topics.add(new ProduceRequestData.TopicProduceData().setName(topic).setPartitionData(new ArrayList<>(List.of(
                new ProduceRequestData.PartitionProduceData().setIndex(0).setRecords(batch)))));
        return request(correlationId, ApiKeys.PRODUCE, PRODUCE_VERSION,
                new ProduceRequestData().setAcks((short) -1).setTimeoutMs(30_000).setTopicData(topics));
    }

    static ByteString produceResponse(int correlationId, String topic) {
        ProduceResponseData.TopicProduceResponseCollection topics = new ProduceResponseData.TopicProduceResponseCollection();
        topics.add(new ProduceResponseData.TopicProduceResponse().setName(topic).setPartitionResponses(new ArrayList<>(
                List.of(new ProduceResponseData.PartitionProduceResponse().setIndex(0).setBaseOffset(0)))));
        return response(correlationId, ApiKeys.PRODUCE, PRODUCE_VERSION, new ProduceResponseData().setResponses(topics));
    }

    /** The records of the (only) partition of a Produce request frame, as the broker would store them. */
    static MemoryRecords producedRecords(ByteString frame) {
        ByteBuffer buf = frame.asReadOnlyByteBuffer();
        buf.getInt();
        new RequestHeaderData(new ByteBufferAccessor(buf), ApiKeys.PRODUCE.requestHeaderVersion(PRODUCE_VERSION));
        ProduceRequestData body = new ProduceRequestData(new ByteBufferAccessor(buf), PRODUCE_VERSION);
        return (MemoryRecords) body.topicData().iterator().next().partitionData().get(0).records();
    }

    /** The records of the (only) partition of a Fetch response frame, as the consumer gets them. */
    static MemoryRecords fetchedRecords(ByteString frame) {
        ByteBuffer buf = frame.asReadOnlyByteBuffer();
        buf.getInt();
        new ResponseHeaderData(new ByteBufferAccessor(buf), ApiKeys.FETCH.responseHeaderVersion(FETCH_VERSION));
        FetchResponseData body = new FetchResponseData(new ByteBufferAccessor(buf), FETCH_VERSION);
        return (MemoryRecords) body.responses().get(0).partitions().get(0).records();
    }

    static ByteString fetchRequest(int correlationId, String topic) {
        FetchRequestData.FetchTopic fetchTopic = new FetchRequestData.FetchTopic().setTopic(topic)
                .setPartitions(new ArrayList<>(List.of(new FetchRequestData.FetchPartition().setPartition(0)
                        .setFetchOffset(0).setPartitionMaxBytes(1 << 20))));
        return request(correlationId, ApiKeys.FETCH, FETCH_VERSION, new FetchRequestData().setReplicaId(-1)
                .setMaxWaitMs(500).setMinBytes(1).setMaxBytes(50 << 20).setTopics(new ArrayList<>(List.of(fetchTopic))));
    }

    static ByteString fetchResponse(int correlationId, String topic, MemoryRecords batch) {
        FetchResponseData.FetchableTopicResponse t = new FetchResponseData.FetchableTopicResponse().setTopic(topic)
                .setPartitions(new ArrayList<>(List.of(new FetchResponseData.PartitionData().setPartitionIndex(0)
                        .setHighWatermark(batch.sizeInBytes()).setRecords(batch))));
        return response(correlationId, ApiKeys.FETCH, FETCH_VERSION,
                new FetchResponseData().setResponses(new ArrayList<>(List.of(t))));
    }

    private static ByteString request(int correlationId, ApiKeys api, short version, ApiMessage body) {
        RequestHeaderData header = new RequestHeaderData().setRequestApiKey(api.id).setRequestApiVersion(version)
                .setCorrelationId(correlationId).setClientId("producer-1");
        return frame(header, api.requestHeaderVersion(version), body, version);
    }

    private static ByteString response(int correlationId, ApiKeys api, short version, ApiMessage body) {
        return frame(new ResponseHeaderData().setCorrelationId(correlationId), api.responseHeaderVersion(version), body,
                version);
    }

    private static ByteString frame(ApiMessage header, short headerVersion, ApiMessage body, short version) {
        ByteBuffer message = RequestUtils.serialize(header, headerVersion, body, version);
        return ByteString.copyFrom(ByteBuffer.allocate(4 + message.remaining()).putInt(message.remaining()).put(message)
                .array());
    }
}
