package io.meshcrypt.filter.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.framing.HeldBytesBudget;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.observability.FilterMetrics;
import io.meshcrypt.filter.transport.ConnectionHandler;
import io.meshcrypt.filter.transport.ConnectionLog;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.message.ProduceResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What one Kafka connection shows: the exact metric names and labels it moves (rewrite histograms, held bytes and
 * frames, records) and the counts it adds to its end line.
 */
class ConnectionObservabilityTest {
    private static final short PRODUCE_V = 12;
    private static final String LISTENERS = "1=127.0.0.1:19093";

    @TempDir
    Path dir;
    private final FilterMetrics metrics = new FilterMetrics(10);
    private final HeldBytesBudget budget = new HeldBytesBudget(1 << 20, 1 << 22, 2);
    private ConnectionHandler connection;

    @BeforeEach
    void setUp() throws Exception {
        Path keyset = dir.resolve("keyset.json");
        Keysets.create(keyset);
        KafkaProxy proxy = new KafkaProxy(EncryptionPolicy.encryptAll(), ValueCipherV1.fromKeysetFile(keyset), null,
                new BrokerAddresses(Map.of(1, new InetSocketAddress("127.0.0.1", 19093))), TestLimits.kafka(1 << 20),
                budget);
        proxy.auditTo(metrics.records());
        proxy.timeRewritesWith(metrics.rewriteTimers());
        metrics.bind(budget);
        connection = proxy.open(name -> KafkaProxy.BROKER_LISTENERS_HEADER.equals(name) ? LISTENERS : null,
                "spiffe://mesh/sa/orders");
    }

    @AfterEach
    void tearDown() {
        metrics.close();
    }

    @Test
    void givenNoTraffic_whenScraped_thenEveryRewrittenApiHasItsHistogramAtZeroAndNothingIsHeld() {
        String text = metrics.scrape();

        assertEquals(0, value(text, "meshcrypt_rewrite_seconds_count{api=\"produce\",direction=\"request\"}"));
        assertEquals(0, value(text, "meshcrypt_rewrite_seconds_count{api=\"fetch\",direction=\"response\"}"));
        assertEquals(0, value(text, "meshcrypt_rewrite_seconds_count{api=\"share_fetch\",direction=\"response\"}"));
        assertEquals(0, value(text, "meshcrypt_rewrite_seconds_count{api=\"metadata\",direction=\"response\"}"));
        assertEquals(0, value(text, "meshcrypt_held_bytes"));
        assertEquals(0, value(text, "meshcrypt_held_frames"));
        assertEquals(1 << 22, value(text, "meshcrypt_held_limit_bytes"));
        assertTrue(text.contains("# TYPE meshcrypt_rewrite_seconds histogram"), "a Prometheus histogram");
        assertTrue(text.contains("meshcrypt_rewrite_seconds_bucket{api=\"produce\",direction=\"request\",le=\"0.001\"}"),
                "with fixed buckets");
    }

    @Test
    void givenAProduceArrivingInTwoHalves_whenForwarded_thenHeldWhileIncompleteAndTimedOnceRewritten() throws Exception {
        byte[] frame = KafkaFrames.requestFrame(1, ApiKeys.PRODUCE, PRODUCE_V, produce("orders", "alpha", "beta"));
        int half = frame.length / 2;

        connection.onRead(ByteString.copyFrom(frame, 0, half), false);
        String holding = metrics.scrape();
        connection.onRead(ByteString.copyFrom(frame, half, frame.length - half), false);
        String done = metrics.scrape();

        assertEquals(1, value(holding, "meshcrypt_held_frames"));
        assertTrue(value(holding, "meshcrypt_held_bytes") >= half - 4, holding);
        assertEquals(0, value(done, "meshcrypt_held_frames"));
        assertEquals(0, value(done, "meshcrypt_held_bytes"));
        assertEquals(1, value(done, "meshcrypt_rewrite_seconds_count{api=\"produce\",direction=\"request\"}"));
        assertEquals(1, value(done, "meshcrypt_rewrite_seconds_bucket{api=\"produce\",direction=\"request\",le=\"+Inf\"}"));
        assertEquals(0, value(done, "meshcrypt_rewrite_seconds_count{api=\"produce\",direction=\"response\"}"));
        assertEquals(2, value(done, "meshcrypt_records_total{direction=\"produce\",outcome=\"encrypted\",topic=\"orders\"}"));
    }

    @Test
    void givenAProduceAndItsResponse_whenTheConnectionEnds_thenItsLineCountsFramesAndRecordsPerApi() throws Exception {
        connection.onRead(ByteString.copyFrom(KafkaFrames.requestFrame(1, ApiKeys.PRODUCE, PRODUCE_V,
                produce("orders", "alpha", "beta", "gamma"))), false);
        connection.onWrite(ByteString.copyFrom(KafkaFrames.responseFrame(1, ApiKeys.PRODUCE, PRODUCE_V,
                new ProduceResponseData())), false);
        connection.onClose();

        Map<String, Object> fields = new LinkedHashMap<>();
        connection.summarize(new ConnectionLog.Fields() {
            @Override
            public ConnectionLog.Fields add(String name, long value) {
                fields.put(name, value);
                return this;
            }

            @Override
            public ConnectionLog.Fields add(String name, String value) {
                fields.put(name, value);
                return this;
            }
        });

        assertEquals(Map.of("listeners", LISTENERS, "requests", 1L, "responses", 1L, "records_produce", 3L), fields);
        assertEquals(List.of("listeners", "requests", "responses", "records_produce"), new ArrayList<>(fields.keySet()));
        assertEquals(1, value(metrics.scrape(),
                "meshcrypt_rewrite_seconds_count{api=\"produce\",direction=\"response\"}"));
    }

    /** The value of the sample {@code series} (name and labels exactly as exported). */
    private static double value(String scrape, String series) {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(series) + " (\\S+)$").matcher(scrape);
        assertTrue(m.find(), series + " not exported in:\n" + scrape);
        return Double.parseDouble(m.group(1));
    }

    private static ProduceRequestData produce(String topic, String... values) {
        SimpleRecord[] records = new SimpleRecord[values.length];
        for (int i = 0; i < values.length; i++) {
            records[i] = new SimpleRecord(values[i].getBytes(StandardCharsets.UTF_8));
        }
        ProduceRequestData.TopicProduceDataCollection topics = new ProduceRequestData.TopicProduceDataCollection();
        topics.add(new ProduceRequestData.TopicProduceData().setName(topic)
                .setPartitionData(new ArrayList<>(List.of(new ProduceRequestData.PartitionProduceData().setIndex(0)
                        .setRecords(MemoryRecords.withRecords(Compression.NONE, records))))));
        return new ProduceRequestData().setAcks((short) -1).setTimeoutMs(1000).setTopicData(topics);
    }
}
