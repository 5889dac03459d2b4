package io.meshcrypt.filter.codec;

import com.google.protobuf.ByteString;
import io.meshcrypt.filter.framing.KafkaFrameException;
import java.nio.ByteBuffer;
import org.apache.kafka.common.errors.UnsupportedVersionException;
import org.apache.kafka.common.message.RequestHeaderData;
import org.apache.kafka.common.message.ResponseHeaderData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.protocol.ObjectSerializationCache;

/**
 * Decodes and re-encodes the Kafka frames that need rewriting, with kafka-clients' generated message
 * classes. Headers are never re-encoded: their original bytes are copied, so client ids, tagged fields
 * and anything this codec does not model survive unchanged. Records are read as zero-copy slices.
 */
public final class KafkaCodec {

    /** Bytes after the size field needed to route a request: api key, api version, correlation id. */
    public static final int REQUEST_HEAD_BYTES = 8;
    /** Bytes after the size field needed to route a response: correlation id. */
    public static final int RESPONSE_HEAD_BYTES = 4;

    /**
     * The array the fields of a frame start in: records are spliced, so the fields of a frame of a few partitions are a
     * few hundred bytes (4 KiB was most of what encoding a one-partition frame allocated); more partitions grow it.
     */
    private static final int FIELDS_CAPACITY = 512;

    private KafkaCodec() {
    }

    /** A decoded frame: the original header bytes and the decoded body. */
    public record Decoded<T extends ApiMessage>(ByteBuffer header, T body, short version) {
    }

    /** Decodes a request frame (position after the size field) of a known api key and version. */
    @SuppressWarnings("unchecked")
    public static <T extends ApiMessage> Decoded<T> decodeRequest(ByteBuffer frame, ApiKeys api, short version)
            throws KafkaFrameException {
        ByteBuffer buf = frame.slice();
        try {
            new RequestHeaderData(new ByteBufferAccessor(buf), api.requestHeaderVersion(version));
            ByteBuffer header = buf.duplicate().flip();
            ApiMessage body = api.messageType.newRequest();
            body.read(new ByteBufferAccessor(buf), version);
            return new Decoded<>(header, (T) body, version);
        } catch (RuntimeException e) {
            throw new KafkaFrameException("cannot decode " + api + " v" + version + " request: " + e.getMessage(), e);
        }
    }

    /** Decodes a response frame (position after the size field) to a request of the given api key and version. */
    @SuppressWarnings("unchecked")
    public static <T extends ApiMessage> Decoded<T> decodeResponse(ByteBuffer frame, ApiKeys api, short version)
            throws KafkaFrameException {
        ByteBuffer buf = frame.slice();
        try {
            new ResponseHeaderData(new ByteBufferAccessor(buf), api.responseHeaderVersion(version));
            ByteBuffer header = buf.duplicate().flip();
            ApiMessage body = api.messageType.newResponse();
            body.read(new ByteBufferAccessor(buf), version);
            return new Decoded<>(header, (T) body, version);
        } catch (RuntimeException e) {
            throw new KafkaFrameException("cannot decode " + api + " v" + version + " response: " + e.getMessage(), e);
        }
    }

    /**
     * Encodes a frame: size field, the original header bytes, then the (rewritten) body. Record sections are spliced in,
     * not copied ({@link SplicingWritable}): the result may be a rope over them, and over the received frame.
     */
    public static ByteString encode(Decoded<?> decoded) throws KafkaFrameException {
        try {
            ObjectSerializationCache cache = new ObjectSerializationCache();
            int headerSize = decoded.header().remaining();
            int bodySize = decoded.body().size(cache, decoded.version());
            long frameSize = 4L + headerSize + bodySize;
            SplicingWritable out = new SplicingWritable((int) Math.min(frameSize, FIELDS_CAPACITY));
            out.writeInt(headerSize + bodySize);
            out.writeByteBuffer(decoded.header());
            decoded.body().write(out, cache, decoded.version());
            ByteString frame = out.toByteString();
            if (frame.size() != frameSize) {
                throw new IllegalStateException("wrote " + frame.size() + " bytes, sized " + frameSize);
            }
            return frame;
        } catch (RuntimeException e) {
            // What decoded may still not re-encode (e.g. unknown tagged fields out of order, found by fuzzing): the
            // frame is refused like one that does not decode.
            throw new KafkaFrameException("cannot re-encode " + decoded.body().getClass().getSimpleName() + " v"
                    + decoded.version() + ": " + e.getMessage(), e);
        }
    }

    /** The api key of a request head, or null when this kafka-clients version does not know it. */
    public static ApiKeys apiKeyOrNull(short id) {
        return ApiKeys.hasId(id) ? ApiKeys.forId(id) : null;
    }

    /** Fails when this codec cannot decode {@code version} of {@code api}. */
    public static void requireDecodable(ApiKeys api, short version) throws KafkaFrameException {
        short highest = api.latestVersion(true);
        if (version < api.oldestVersion() || version > highest) {
            throw new KafkaFrameException(api + " v" + version + " is outside the versions this filter decodes ("
                    + api.oldestVersion() + ".." + highest + ")");
        }
        try {
            api.requestHeaderVersion(version);
        } catch (UnsupportedVersionException e) {
            throw new KafkaFrameException(api + " v" + version + ": " + e.getMessage(), e);
        }
    }
}
