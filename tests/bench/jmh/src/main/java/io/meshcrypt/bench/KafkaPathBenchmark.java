package io.meshcrypt.bench;

import com.google.protobuf.ByteString;
import java.nio.ByteBuffer;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import org.apache.kafka.common.record.internal.MemoryRecords;
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
 * One operation is one batch of {@value #RECORDS} records of {@value #VALUE_BYTES} bytes (uncompressed, magic v2)
 * through the filter-service's Kafka connection handler, in-process ({@link #handler}, one run per exchange): a
 * Produce request of a topic the policy encrypts or of one outside it, each with its Produce response as acks=all
 * brings one; or a Fetch request, then the Fetch response with the same batch, decrypted or passed. Beside it the
 * physical limit, raw AES-256-GCM over the same value bytes ({@link #aesGcmBaseline}). tests/bench/jmh.sh runs them
 * and prints the ratios.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
public class KafkaPathBenchmark {
    static final int RECORDS = 64;
    static final int VALUE_BYTES = 1024;
    private static final int CORRELATION_ID = 7;

    /**
     * A connection and the request and response of one {@link #exchange}; the frames are immutable ByteStrings, fed
     * again and again.
     */
    @State(Scope.Thread)
    public static class Connection {
        /**
         * Produce of the encrypted topic or of the one outside the policy, Fetch of either; "...Headers": the encrypted
         * topic's records carry three headers, two of which its policy entry encrypts.
         */
        @Param({"produceEncrypted", "producePassthrough", "fetchDecrypt", "fetchPassthrough", "produceEncryptedHeaders",
                "fetchDecryptHeaders"})
        public String exchange;
        /**
         * "on": the data path reports what the filter-service's observability section adds (records per topic, the
         * rewrite-time histogram), as Main wires it; "off": as without that section. Their ratio is the metrics' cost.
         */
        @Param({"off", "on"})
        public String metrics;
        /**
         * "on": each exchange runs in a scope of the thread's OutputArena, as a stream's task does, so the
         * rewritten records are written into the arena and reused once sent; "off" (pass {@code -p arena=off}): no
         * scope, every rewrite allocates its output exactly, as before the arena. Either way each answer is "sent".
         */
        @Param({"on"})
        public String arena;
        KafkaDataPath path;
        ByteString request;
        ByteString response;
        @Setup(Level.Trial)
        public void open() throws Exception {
            path = new KafkaDataPath(metrics.equals("on"));
            boolean headers = exchange.endsWith("Headers");
            MemoryRecords batch = KafkaWire.batch(RECORDS, VALUE_BYTES, headers);
            String encrypted = headers ? KafkaDataPath.HEADERS_TOPIC : KafkaDataPath.ENCRYPTED_TOPIC;
            String plain = KafkaDataPath.PLAIN_TOPIC;
            // What the broker would store for the encrypted topic: what the handler made of its Produce request.
            ByteString produced = KafkaWire.produceRequest(CORRELATION_ID, encrypted, batch);
            MemoryRecords stored = KafkaWire.producedRecords(path.request(produced));
            path.response(KafkaWire.produceResponse(CORRELATION_ID, encrypted));
            switch (exchange) {
                case "produceEncrypted", "produceEncryptedHeaders" -> {
                    request = produced;
                    response = KafkaWire.produceResponse(CORRELATION_ID, encrypted);
                }
                case "producePassthrough" -> {
                    request = KafkaWire.produceRequest(CORRELATION_ID, plain, batch);
                    response = KafkaWire.produceResponse(CORRELATION_ID, plain);
                }
                case "fetchDecrypt", "fetchDecryptHeaders" -> {
                    request = KafkaWire.fetchRequest(CORRELATION_ID, encrypted);
                    response = KafkaWire.fetchResponse(CORRELATION_ID, encrypted, stored);
                }
                case "fetchPassthrough" -> {
                    request = KafkaWire.fetchRequest(CORRELATION_ID, plain);
                    response = KafkaWire.fetchResponse(CORRELATION_ID, plain, batch);
                }
                default -> throw new IllegalArgumentException("no exchange " + exchange);
            }
            // The handler does its work, or the trial fails instead of timing nothing.
            ByteString forwarded = path.request(request);
            ByteString answered = path.response(response);
            boolean produce = exchange.startsWith("produce");
            requireValues(produce ? KafkaWire.producedRecords(forwarded) : KafkaWire.fetchedRecords(answered), batch,
                    !exchange.startsWith("produceEncrypted"), exchange);
            if (headers) {
                MemoryRecords seen = produce ? KafkaWire.producedRecords(forwarded) : KafkaWire.fetchedRecords(answered);
                byte[] userId = seen.records().iterator().next().headers()[1].value();
                if (Arrays.equals(userId, KafkaWire.HEADERS[1].value()) == produce) {
                    throw new IllegalStateException(exchange + ": the user-id header is " + (produce ? "" : "not ")
                            + "the plaintext");
                }
            }
        }

        @TearDown(Level.Trial)
        public void close() throws Exception {
            path.close();
        }
    }

    /**
     * A request through the handler, then its response: what the broker and the client would receive, each sent as the
     * transport sends it ({@link KafkaDataPath#exchange}).
     */
    @Benchmark
    public void handler(Connection c, Blackhole out) throws Exception {
        out.consume(c.path.exchange(c.request, c.response, c.arena.equals("on")));
    }

    /** The same values, AES-256-GCM with javax.crypto: a fresh 12-byte nonce per value (a counter), 16-byte tag. */
    @State(Scope.Thread)
    public static class RawCipher {
        Cipher cipher;
        SecretKeySpec key;
        List<byte[]> values;
        byte[] nonce = new byte[12];
        ByteBuffer nonceCounter = ByteBuffer.wrap(nonce);
        byte[] ciphertext = new byte[VALUE_BYTES + 16];
        long counter;

        @Setup(Level.Trial)
        public void init() throws GeneralSecurityException {
            byte[] k = new byte[32];
            new SecureRandom().nextBytes(k);
            key = new SecretKeySpec(k, "AES");
            cipher = Cipher.getInstance("AES/GCM/NoPadding");
            values = KafkaWire.values(KafkaWire.batch(RECORDS, VALUE_BYTES));
        }
    }

    @Benchmark
    public int aesGcmBaseline(RawCipher c) throws GeneralSecurityException {
        int written = 0;
        for (byte[] value : c.values) {
            c.nonceCounter.putLong(4, ++c.counter);
            c.cipher.init(Cipher.ENCRYPT_MODE, c.key, new GCMParameterSpec(128, c.nonce));
            written += c.cipher.doFinal(value, 0, value.length, c.ciphertext, 0);
        }
        return written;
    }

    /** Fails the trial unless every value is the batch's own ({@code plain}) or none is (encrypted). */
    private static void requireValues(MemoryRecords seen, MemoryRecords sent, boolean plain, String what) {
        List<byte[]> expected = KafkaWire.values(sent);
        List<byte[]> actual = KafkaWire.values(seen);
        if (actual.size() != expected.size()) {
            throw new IllegalStateException(what + ": " + actual.size() + " records, expected " + expected.size());
        }
        for (int i = 0; i < expected.size(); i++) {
            if (Arrays.equals(expected.get(i), actual.get(i)) != plain) {
                throw new IllegalStateException(what + ": record " + i + (plain ? " is not" : " is") + " the plaintext");
            }
        }
    }
}
