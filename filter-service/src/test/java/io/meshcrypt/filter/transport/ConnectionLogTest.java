package io.meshcrypt.filter.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.service.network_ext_proc.v3.Data;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.network_ext_proc.v3.ProcessingResponse;
import io.meshcrypt.filter.framing.KafkaFrameException;
import io.netty.util.concurrent.DefaultEventExecutor;
import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The one line per connection end: its exact text and JSON, and the close reason each way a connection ends. */
class ConnectionLogTest {
    private static final long TIMEOUT_SECONDS = RecordingCall.TIMEOUT_SECONDS;
    private static final long ONE_SECOND_AND_A_BIT = 1_234_567_890L;
    /** What the xDS server has Envoy send on a Kafka listener's stream. */
    private static final StreamHeaders ENVOY_HEADERS = name -> switch (name) {
        case StreamHeaders.CLIENT_ADDRESS -> "10.0.0.9:53211";
        case StreamHeaders.SIDECAR_NODE -> "shop-sidecar";
        default -> null;
    };

    private final DefaultEventExecutor worker = new DefaultEventExecutor();
    private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();

    @AfterEach
    void tearDown() throws Exception {
        worker.shutdownGracefully(0, 1, TimeUnit.SECONDS).await(TIMEOUT_SECONDS, TimeUnit.SECONDS);
    }

    /** Echoes; "bad" fails as a bad frame; summarizes fixed counts like a Kafka connection. */
    private static final class Handler implements ConnectionHandler {
        @Override
        public ByteString onRead(ByteString data, boolean endOfStream) throws Exception {
            if (data.toStringUtf8().equals("bad")) {
                throw new KafkaFrameException("not a frame");
            }
            return data;
        }

        @Override
        public ByteString onWrite(ByteString data, boolean endOfStream) {
            return data;
        }

        @Override
        public void onClose() {
        }

        @Override
        public void summarize(ConnectionLog.Fields fields) {
            fields.add("listeners", "1=127.0.0.1:19093").add("listeners_absent", (String) null).add("requests", 3)
                    .add("responses", 2).add("records_produce", 10);
        }
    }

    @Test
    void givenAFixedConnection_whenLoggedAsText_thenTheLineIsExactlyTheFieldsInOrder() {
        String line = new ConnectionLog(ConnectionLog.Format.TEXT, lines::add).line(7, ENVOY_HEADERS,
                "spiffe://mesh/ns/shop/sa/orders", ONE_SECOND_AND_A_BIT, 512, 2048, new Handler(), "client closed");

        assertEquals("connection ended: stream=7 client=10.0.0.9:53211 node=shop-sidecar"
                + " identity=spiffe://mesh/ns/shop/sa/orders duration_ms=1234"
                + " bytes_from_client=512 bytes_from_upstream=2048 listeners=\"1=127.0.0.1:19093\" requests=3 responses=2"
                + " records_produce=10 close=\"client closed\"", line);
    }

    @Test
    void givenAFixedConnection_whenLoggedAsJson_thenTheLineIsOneObjectWithTheSameFields() {
        String line = new ConnectionLog(ConnectionLog.Format.JSON, lines::add).line(7, ENVOY_HEADERS, null,
                ONE_SECOND_AND_A_BIT, 512, 2048, new Handler(), "reset: policy_reject");

        assertEquals("{\"event\":\"connection_end\",\"stream\":7,\"client\":\"10.0.0.9:53211\","
                + "\"node\":\"shop-sidecar\",\"identity\":\"-\",\"duration_ms\":1234,"
                + "\"bytes_from_client\":512,\"bytes_from_upstream\":2048,\"listeners\":\"1=127.0.0.1:19093\","
                + "\"requests\":3,\"responses\":2,\"records_produce\":10,\"close\":\"reset: policy_reject\"}", line);
    }

    @Test
    void givenAnIdentityWithQuotesAndANewline_whenLoggedAsText_thenEscapedSoNoLineCanBeForged() {
        String line = new ConnectionLog(ConnectionLog.Format.TEXT, lines::add).line(1, StreamHeaders.NONE,
                "a\"b\nINFO forged", 0, 0, 0, null, null);

        assertEquals("connection ended: stream=1 client=- node=- identity=\"a\\\"b\\x0aINFO forged\" duration_ms=0"
                + " bytes_from_client=0"
                + " bytes_from_upstream=0 close=\"connection closed\"", line);
    }

    @Test
    void givenAnOverlongNodeHeaderWithANewline_whenLoggedAsText_thenEscapedAndCut() {
        String node = "x\nINFO forged " + "n".repeat(1000);
        String line = new ConnectionLog(ConnectionLog.Format.TEXT, lines::add).line(1,
                name -> name.equals(StreamHeaders.SIDECAR_NODE) ? node : null, null, 0, 0, 0, null, null);

        String shown = node.substring(0, ConnectionLog.MAX_HEADER_CHARS).replace("\n", "\\x0a");
        assertEquals("connection ended: stream=1 client=- node=\"" + shown + "\" identity=- duration_ms=0"
                + " bytes_from_client=0 bytes_from_upstream=0 close=\"connection closed\"", line);
    }

    @Test
    void givenTheClientClosesFirst_whenTheStreamEnds_thenOneLineNamesTheClientAndCountsTheBytesEachWay() throws Exception {
        RecordingCall<ProcessingResponse> call = new RecordingCall<>();
        NetworkExtProcStream stream = stream(call, ConnectionLog.Format.TEXT);
        call.nextRequest();

        stream.onNext(read("hello", false));
        stream.onNext(write("world!", false));
        stream.onNext(read("", true));
        stream.onNext(write("", true));
        stream.onCompleted();

        String line = lines.poll(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        assertTrue(line.startsWith("connection ended: stream=1 client=10.0.0.9:53211 node=shop-sidecar"
                + " identity=spiffe://a duration_ms="), line);
        assertTrue(line.endsWith(" bytes_from_client=5 bytes_from_upstream=6 listeners=\"1=127.0.0.1:19093\""
                + " requests=3 responses=2 records_produce=10 close=\"client closed\""), line);
        assertEquals(null, lines.poll(200, TimeUnit.MILLISECONDS), "one line per connection");
    }

    @Test
    void givenTheBrokerClosesFirst_whenTheStreamEnds_thenTheLineNamesTheBroker() throws Exception {
        RecordingCall<ProcessingResponse> call = new RecordingCall<>();
        NetworkExtProcStream stream = stream(call, ConnectionLog.Format.TEXT);
        call.nextRequest();

        stream.onNext(write("", true));
        stream.onNext(read("", true));
        stream.onCompleted();

        assertTrue(lines.poll(TIMEOUT_SECONDS, TimeUnit.SECONDS).endsWith(" close=\"broker closed\""));
    }

    @Test
    void givenAHandlerFailure_whenTheConnectionIsReset_thenTheLineNamesTheResetReason() throws Exception {
        RecordingCall<ProcessingResponse> call = new RecordingCall<>();
        TransportMetrics metrics = new TransportMetrics();
        metrics.describeResetsWith(cause -> cause instanceof KafkaFrameException ? "protocol_violation" : "other");
        NetworkExtProcStream stream = stream(call, ConnectionLog.Format.JSON, metrics);
        call.nextRequest();

        stream.onNext(read("bad", false));

        String line = lines.poll(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        assertTrue(line.startsWith("{\"event\":\"connection_end\",\"stream\":1,"), line);
        assertTrue(line.endsWith(",\"close\":\"reset: protocol_violation\"}"), line);
    }

    @Test
    void givenEnvoyCancelsTheStream_whenNoSideSaidEndOfStream_thenTheLineSaysTheConnectionClosed() throws Exception {
        RecordingCall<ProcessingResponse> call = new RecordingCall<>();
        stream(call, ConnectionLog.Format.TEXT);
        call.nextRequest();

        call.onCancel.run();

        assertTrue(lines.poll(TIMEOUT_SECONDS, TimeUnit.SECONDS).endsWith(" close=\"connection closed\""));
    }

    @Test
    void givenTheLogIsNone_whenAConnectionEnds_thenNoLine() throws Exception {
        RecordingCall<ProcessingResponse> call = new RecordingCall<>();
        stream(call, ConnectionLog.Format.NONE);
        call.nextRequest();

        call.onCancel.run();

        assertEquals(null, lines.poll(300, TimeUnit.MILLISECONDS));
    }

    private NetworkExtProcStream stream(RecordingCall<ProcessingResponse> call, ConnectionLog.Format format) {
        return stream(call, format, new TransportMetrics());
    }

    private NetworkExtProcStream stream(RecordingCall<ProcessingResponse> call, ConnectionLog.Format format,
                                        TransportMetrics metrics) {
        NetworkExtProcStream stream = new NetworkExtProcStream(1, call, worker, headers -> new Handler(),
                ENVOY_HEADERS, "spiffe://a", 8, metrics, Duration.ofSeconds(30),
                new ConnectionLog(format, lines::add));
        stream.install();
        return stream;
    }

    private static ProcessingRequest read(String data, boolean end) {
        return ProcessingRequest.newBuilder().setReadData(Data.newBuilder()
                .setData(ByteString.copyFromUtf8(data)).setEndOfStream(end)).build();
    }

    private static ProcessingRequest write(String data, boolean end) {
        return ProcessingRequest.newBuilder().setWriteData(Data.newBuilder()
                .setData(ByteString.copyFromUtf8(data)).setEndOfStream(end)).build();
    }
}
