package io.meshcrypt.filter;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.service.network_ext_proc.v3.Data;
import io.envoyproxy.envoy.service.network_ext_proc.v3.NetworkExternalProcessorGrpc;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse;
import io.grpc.ManagedChannel;
import io.grpc.stub.StreamObserver;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.apache.kafka.common.requests.ProduceRequest;
import org.apache.kafka.common.requests.RequestHeader;

/** What the tests of a started service send it over network ext_proc, as Envoy would. */
final class ExtProcRequests {
    private ExtProcRequests() {
    }

    /** A Produce request (v9, acks=all) as a client writes it: one record on partition 0 of {@code topic}. */
    static byte[] produceFrame(String topic, String value) {
        ProduceRequestData.TopicProduceDataCollection topics = new ProduceRequestData.TopicProduceDataCollection();
        topics.add(new ProduceRequestData.TopicProduceData().setName(topic).setPartitionData(List.of(
                new ProduceRequestData.PartitionProduceData().setIndex(0).setRecords(MemoryRecords.withRecords(
                        Compression.NONE, new SimpleRecord(value.getBytes(StandardCharsets.UTF_8)))))));
        short version = 9;
        ByteBuffer body = ProduceRequest.builder(new ProduceRequestData().setAcks((short) -1).setTimeoutMs(30_000)
                .setTopicData(topics)).build(version)
                .serializeWithHeader(new RequestHeader(ApiKeys.PRODUCE, version, "audit-test", 1));
        ByteBuffer frame = ByteBuffer.allocate(4 + body.remaining()).putInt(body.remaining()).put(body);
        return frame.array();
    }

    /** One ProcessingRequest on a new stream; its first answer (or error). */
    static Object exchange(ManagedChannel channel, byte[] clientBytes) throws InterruptedException {
        BlockingQueue<Object> responses = new LinkedBlockingQueue<>();
        StreamObserver<ProcessingRequest> requests = NetworkExternalProcessorGrpc.newStub(channel).process(
                new StreamObserver<>() {
                    @Override
                    public void onNext(ProcessingResponse value) {
                        responses.add(value);
                    }

                    @Override
                    public void onError(Throwable t) {
                        responses.add(t);
                    }

                    @Override
                    public void onCompleted() {
                    }
                });
        requests.onNext(ProcessingRequest.newBuilder()
                .setReadData(Data.newBuilder().setData(ByteString.copyFrom(clientBytes))).build());
        Object first = responses.poll(20, TimeUnit.SECONDS);
        requests.onCompleted();
        return first;
    }

}
