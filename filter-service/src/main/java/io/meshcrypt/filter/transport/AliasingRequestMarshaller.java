package io.meshcrypt.filter.transport;

import com.google.protobuf.CodedInputStream;
import com.google.protobuf.ExtensionRegistryLite;
import com.google.protobuf.UnsafeByteOperations;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingRequest;
import io.grpc.KnownLength;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.protobuf.ProtoUtils;
import java.io.IOException;
import java.io.InputStream;

/**
 * Parses a network ext_proc request so that its chunk's bytes stay in the array the message was read into: gRPC's own
 * marshaller reads the message into an array and then copies the chunk out of it again. The array is this request's
 * alone and never written, so the chunk may alias it ({@link CodedInputStream#enableAliasing}); the frame code reads
 * frames in place from it. Serialising (the client side, tests) is gRPC's own.
 */
final class AliasingRequestMarshaller implements MethodDescriptor.Marshaller<ProcessingRequest> {

    static final AliasingRequestMarshaller INSTANCE = new AliasingRequestMarshaller();

    private final MethodDescriptor.Marshaller<ProcessingRequest> generated =
            ProtoUtils.marshaller(ProcessingRequest.getDefaultInstance());

    private AliasingRequestMarshaller() {
    }

    @Override
    public InputStream stream(ProcessingRequest value) {
        return generated.stream(value);
    }

    /** Parses {@code message}, which the caller never writes again: its bytes fields are views of it. */
    static ProcessingRequest parseAliasing(byte[] message) throws IOException {
        // Through a ByteString: only an input over an immutable buffer aliases (CodedInputStream.newInstance would
        // still copy every bytes field).
        CodedInputStream in = UnsafeByteOperations.unsafeWrap(message).newCodedInput();
        in.enableAliasing(true);
        return ProcessingRequest.parseFrom(in, ExtensionRegistryLite.getEmptyRegistry());
    }

    @Override
    public ProcessingRequest parse(InputStream stream) {
        try {
            byte[] message;
            if (stream instanceof KnownLength) {
                // gRPC's deframer hands a stream of known length, already bounded by maxInboundMessageSize.
                int size = stream.available();
                message = new byte[size];
                if (stream.readNBytes(message, 0, size) != size || stream.read() != -1) {
                    throw new IOException("message length differs from the length announced");
                }
            } else {
                message = stream.readAllBytes();
            }
            return parseAliasing(message);
        } catch (IOException e) {
            throw Status.INTERNAL.withDescription("invalid network ext_proc request: " + e.getMessage()).withCause(e)
                    .asRuntimeException();
        }
    }
}
