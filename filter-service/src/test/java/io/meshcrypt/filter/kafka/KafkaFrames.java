package io.meshcrypt.filter.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.protobuf.ByteString;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.apache.kafka.common.message.RequestHeaderData;
import org.apache.kafka.common.message.ResponseHeaderData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.protocol.ObjectSerializationCache;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.Record;

/** Kafka frames as a client or broker would put them on the wire, built and read with kafka-clients' messages. */
final class KafkaFrames {
    private KafkaFrames() {
    }

    static byte[] requestFrame(int correlationId, ApiKeys api, short version, ApiMessage body) {
        RequestHeaderData header = new RequestHeaderData().setRequestApiKey(api.id).setRequestApiVersion(version)
                .setCorrelationId(correlationId).setClientId("test-client");
        return frame(header, api.requestHeaderVersion(version), body, version);
    }

    static byte[] responseFrame(int correlationId, ApiKeys api, short version, ApiMessage body) {
        return frame(new ResponseHeaderData().setCorrelationId(correlationId), api.responseHeaderVersion(version), body, version);
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

    /** Decodes a forwarded request frame; its size field must match its length. */
    static ApiMessage decodeRequest(ByteString frame, ApiKeys api) {
        ByteBuffer buf = frame.asReadOnlyByteBuffer();
        assertEquals(frame.size() - 4, buf.getInt());
        short version = buf.getShort(buf.position() + 2);
        new RequestHeaderData(new ByteBufferAccessor(buf), api.requestHeaderVersion(version));
        ApiMessage body = api.messageType.newRequest();
        body.read(new ByteBufferAccessor(buf), version);
        return body;
    }

    /** Decodes a forwarded response frame; its size field must match its length. */
    static ApiMessage decodeResponse(ByteString frame, ApiKeys api, short version) {
        ByteBuffer buf = frame.asReadOnlyByteBuffer();
        assertEquals(frame.size() - 4, buf.getInt());
        new ResponseHeaderData(new ByteBufferAccessor(buf), api.responseHeaderVersion(version));
        ApiMessage body = api.messageType.newResponse();
        body.read(new ByteBufferAccessor(buf), version);
        return body;
    }

    static List<Record> records(Object records) {
        List<Record> out = new ArrayList<>();
        ((MemoryRecords) records).records().forEach(out::add);
        return out;
    }

    static byte[] bytes(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.duplicate().get(out);
        return out;
    }

    static String utf8(ByteBuffer b) {
        return new String(bytes(b), StandardCharsets.UTF_8);
    }
}
