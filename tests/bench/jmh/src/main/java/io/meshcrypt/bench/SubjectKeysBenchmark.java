package io.meshcrypt.bench;

import com.google.protobuf.ByteString;
import io.meshcrypt.filter.crypto.ValueEnvelopeV3;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.Record;
import org.apache.kafka.common.record.internal.SimpleRecord;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.infra.Blackhole;

/**
 * Issue 19's cost of per-subject keys, in the harness of {@link KafkaPathBenchmark}: one operation is one batch of
 * {@value KafkaPathBenchmark#RECORDS} records of {@value KafkaPathBenchmark#VALUE_BYTES} bytes through the
 * filter-service's Kafka connection handler, a Produce (encrypt) or a Fetch (decrypt) with its response. The records
 * are the same in every variant: a key {@code subject-NNNN} and a JSON value naming the same subject at
 * {@code /customer/id}; {@code activeSubjects} subjects interleaved, record i of the run being subject i modulo
 * {@code activeSubjects}, so consecutive batches cycle through all of them. The {@code subjects} parameter is the
 * policy entry of the topic: {@code topicKey}, the topic's data key (the single-key path, envelope version 2);
 * {@code fromKey}, a subject key per record from the record key; {@code fromValue}, from the JSON pointer (envelope
 * version 3 for both). tests/bench/jmh.sh SubjectKeysBenchmark prints them, subjects.sh adds the ratios.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
public class SubjectKeysBenchmark {
    private static final int CORRELATION_ID = 9;
    private static final String ENCRYPT = "[\"bench-enc-*\", {topic: \"bench-subjkey-*\", subject: {from: key}},"
            + " {topic: \"bench-subjval-*\", subject: {from: value, pointer: /customer/id}}]";

    @State(Scope.Thread)
    public static class Connection {
        @Param({"topicKey", "fromKey", "fromValue"})
        public String subjects;
        @Param({"produce", "fetch"})
        public String exchange;
        /** Distinct subjects the batches cycle through (the figure: 1,000). */
        @Param({"1000"})
        public int activeSubjects;

        KafkaDataPath path;
        ByteString[] requests;
        ByteString[] responses;
        int next;

        @Setup(Level.Trial)
        public void open() throws Exception {
            String topic = switch (subjects) {
                case "topicKey" -> KafkaDataPath.ENCRYPTED_TOPIC;
                case "fromKey" -> "bench-subjkey-1";
                case "fromValue" -> "bench-subjval-1";
                default -> throw new IllegalArgumentException("no subjects variant " + subjects);
            };
            path = new KafkaDataPath(false, ENCRYPT, true);
            // Enough batches that every subject appears, so each operation meets subjects the previous did not.
            int batches = Math.max(1, (activeSubjects + KafkaPathBenchmark.RECORDS - 1) / KafkaPathBenchmark.RECORDS);
            requests = new ByteString[batches];
            responses = new ByteString[batches];
            Set<ByteBuffer> refs = new HashSet<>();
            for (int b = 0; b < batches; b++) {
                MemoryRecords batch = batch(b, activeSubjects);
                ByteString produced = KafkaWire.produceRequest(CORRELATION_ID, topic, batch);
                MemoryRecords stored = KafkaWire.producedRecords(path.request(produced));
                path.response(KafkaWire.produceResponse(CORRELATION_ID, topic));
                requireEnvelopes(stored, batch, !subjects.equals("topicKey"), refs);
                if (exchange.equals("produce")) {
                    requests[b] = produced;
                    responses[b] = KafkaWire.produceResponse(CORRELATION_ID, topic);
                } else {
                    requests[b] = KafkaWire.fetchRequest(CORRELATION_ID, topic);
                    responses[b] = KafkaWire.fetchResponse(CORRELATION_ID, topic, stored);
                    // The handler gives every value back, or the trial fails instead of timing nothing.
                    path.request(requests[b]);
                    MemoryRecords fetched = KafkaWire.fetchedRecords(path.response(responses[b]));
                    if (!KafkaWire.values(fetched).stream().map(ByteBuffer::wrap).toList()
                            .equals(KafkaWire.values(batch).stream().map(ByteBuffer::wrap).toList())) {
                        throw new IllegalStateException(subjects + ": a fetched value is not the plaintext");
                    }
                }
            }
            int expectedRefs = subjects.equals("topicKey") ? 0 : Math.min(activeSubjects, batches * KafkaPathBenchmark.RECORDS);
            if (refs.size() != expectedRefs) {
                throw new IllegalStateException(subjects + ": " + refs.size() + " subject refs in the envelopes, expected "
                        + expectedRefs);
            }
        }

        @TearDown(Level.Trial)
        public void close() throws Exception {
            path.close();
        }
    }

    /**
     * The benchmark thread's CPU time (the handler runs on it), reported per second like the operations: divided by
     * the score it is CPU per operation, the steadier figure on a busy machine, where throughput follows the others'
     * load.
     */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class CpuTime {
        private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();
        public long cpuNanos;

        @Setup(Level.Iteration)
        public void reset() {
            cpuNanos = 0;
        }
    }

    /**
     * A request through the handler, then its response, each sent as the transport sends it
     * ({@link KafkaDataPath#exchange}); the next operation takes the next batch.
     */
    @Benchmark
    public void handler(Connection c, CpuTime cpu, Blackhole out) throws Exception {
        long start = CpuTime.THREADS.getCurrentThreadCpuTime();
        int b = c.next;
        c.next = b + 1 == c.requests.length ? 0 : b + 1;
        out.consume(c.path.exchange(c.requests[b], c.responses[b], true));
        cpu.cpuNanos += CpuTime.THREADS.getCurrentThreadCpuTime() - start;
    }

    /**
     * Batch {@code b}: records {@code b * RECORDS ...}, each with key {@code subject-NNNN} and a JSON value of exactly
     * VALUE_BYTES naming the same subject at /customer/id, then random letters (as ProducerPerformance sends).
     */
    static MemoryRecords batch(int b, int activeSubjects) {
        SplittableRandom random = new SplittableRandom(19 + b);
        SimpleRecord[] records = new SimpleRecord[KafkaPathBenchmark.RECORDS];
        for (int i = 0; i < records.length; i++) {
            String subject = "subject-%04d".formatted((b * KafkaPathBenchmark.RECORDS + i) % activeSubjects);
            byte[] head = ("{\"customer\":{\"id\":\"" + subject + "\"},\"payload\":\"").getBytes(StandardCharsets.UTF_8);
            byte[] value = new byte[KafkaPathBenchmark.VALUE_BYTES];
            System.arraycopy(head, 0, value, 0, head.length);
            for (int j = head.length; j < value.length - 2; j++) {
                value[j] = (byte) ('A' + random.nextInt(26));
            }
            value[value.length - 2] = '"';
            value[value.length - 1] = '}';
            records[i] = new SimpleRecord(subject.getBytes(StandardCharsets.UTF_8), value);
        }
        return MemoryRecords.withRecords(Compression.NONE, records);
    }

    /** Fails unless no stored value is its plaintext and each is (or is not) a version-3 envelope; collects refs. */
    private static void requireEnvelopes(MemoryRecords stored, MemoryRecords sent, boolean version3,
                                         Set<ByteBuffer> refs) {
        List<byte[]> plain = KafkaWire.values(sent);
        int i = 0;
        for (Record r : stored.records()) {
            byte[] v = new byte[r.valueSize()];
            r.value().get(v);
            ByteBuffer value = ByteBuffer.wrap(v);
            if (Arrays.equals(v, plain.get(i++)) || ValueEnvelopeV3.isVersion3(value) != version3) {
                throw new IllegalStateException("record " + (i - 1) + " is stored as plaintext or with the wrong envelope"
                        + " version (expected version 3: " + version3 + ")");
            }
            if (version3) {
                refs.add(ByteBuffer.wrap(Arrays.copyOfRange(v, ValueEnvelopeV3.REF_OFFSET,
                        ValueEnvelopeV3.REF_OFFSET + ValueEnvelopeV3.REF_LENGTH)));
            }
        }
    }
}
