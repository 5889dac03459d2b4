package io.meshcrypt.filter.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.service.network_ext_proc.v3.Data;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingRequest;
import io.grpc.StatusRuntimeException;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.util.Random;
import org.junit.jupiter.api.Test;

class AliasingRequestMarshallerTest {

    @Test
    void givenRequestsBothWays_whenSerialisedAndParsed_thenEqualByteForByte() {
        byte[] chunk = new byte[70_000];
        new Random(7).nextBytes(chunk);
        for (ProcessingRequest request : new ProcessingRequest[] {
                ProcessingRequest.newBuilder().setReadData(Data.newBuilder().setData(ByteString.copyFrom(chunk))).build(),
                ProcessingRequest.newBuilder().setWriteData(Data.newBuilder().setData(ByteString.copyFromUtf8("w"))
                        .setEndOfStream(true)).build(),
                ProcessingRequest.getDefaultInstance()}) {
            ProcessingRequest parsed = AliasingRequestMarshaller.INSTANCE.parse(
                    AliasingRequestMarshaller.INSTANCE.stream(request));

            assertEquals(request, parsed);
            assertEquals(request.getReadData().getData(), parsed.getReadData().getData());
        }
    }

    @Test
    void givenAParsedRequest_whenItsMessageArrayChanges_thenItsChunkShowsIt() throws Exception {
        byte[] message = ProcessingRequest.newBuilder()
                .setReadData(Data.newBuilder().setData(ByteString.copyFromUtf8("abcdef"))).build().toByteArray();
        // The array stands in for the one parse() reads the message into from gRPC's buffers.
        ProcessingRequest aliased = AliasingRequestMarshaller.parseAliasing(message);
        assertEquals("abcdef", aliased.getReadData().getData().toStringUtf8());
        message[message.length - 1] = 'X';

        assertEquals("abcdeX", aliased.getReadData().getData().toStringUtf8(), "the chunk reads the message's array");
    }

    @Test
    void givenRandomBytes_whenParsed_thenARequestOrAnInvalidRequestStatusNeverAnotherFailure() {
        Random random = new Random(42);
        int refused = 0;
        for (int i = 0; i < 2000; i++) {
            byte[] garbage = new byte[random.nextInt(300)];
            random.nextBytes(garbage);
            try {
                AliasingRequestMarshaller.INSTANCE.parse(new ByteArrayInputStream(garbage));
            } catch (StatusRuntimeException e) {
                refused++;
            }
        }
        assertTrue(refused > 1000, "most random inputs are not requests: " + refused + " refused");
    }

    @Test
    void givenTruncatedMessage_whenParsed_thenRefusedAsInvalid() throws Exception {
        byte[] whole = ProcessingRequest.newBuilder()
                .setReadData(Data.newBuilder().setData(ByteString.copyFromUtf8("0123456789"))).build().toByteArray();
        InputStream truncated = new ByteArrayInputStream(whole, 0, whole.length - 3);

        assertThrows(StatusRuntimeException.class, () -> AliasingRequestMarshaller.INSTANCE.parse(truncated));
    }
}
