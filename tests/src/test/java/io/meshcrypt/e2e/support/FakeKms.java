package io.meshcrypt.e2e.support;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

/**
 * An AWS KMS stand-in (JSON 1.1 protocol: DescribeKey, Encrypt, Decrypt) with a fixed latency per call, like a real
 * KMS across a network. It does not protect anything (the "ciphertext" is the plaintext behind a marker); it exists to
 * count KMS calls and to make each one cost what it costs in production, so a test can see a worker blocked on it.
 */
public final class FakeKms implements AutoCloseable {

    public static final String KEY_ID = "alias/meshcrypt-hostile";
    public static final String ARN = "arn:aws:kms:us-east-1:000000000000:key/11111111-2222-3333-4444-555555555555";
    private static final byte[] MARK = "fake-kms:".getBytes(StandardCharsets.US_ASCII);

    private final HttpServer server;
    private final Duration latency;
    private final ObjectMapper json = new ObjectMapper();
    private final AtomicInteger encrypts = new AtomicInteger();
    private final AtomicInteger decrypts = new AtomicInteger();

    public FakeKms(Duration latency) throws IOException {
        this.latency = latency;
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 100);
        server.setExecutor(Executors.newFixedThreadPool(8, r -> Thread.ofPlatform().daemon().name("fake-kms").unstarted(r)));
        server.createContext("/", this::handle);
        server.start();
    }

    public String endpoint() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    /** Encrypt calls so far: one per data key wrapped. */
    public int encrypts() {
        return encrypts.get();
    }

    public int decrypts() {
        return decrypts.get();
    }

    private void handle(HttpExchange ex) throws IOException {
        try (ex) {
            String target = String.valueOf(ex.getRequestHeaders().getFirst("X-Amz-Target"));
            JsonNode req = json.readTree(ex.getRequestBody());
            Thread.sleep(latency.toMillis());
            Object body;
            if (target.endsWith(".DescribeKey")) {
                body = Map.of("KeyMetadata", Map.of("KeyId", "11111111-2222-3333-4444-555555555555", "Arn", ARN,
                        "KeyState", "Enabled", "Enabled", true, "Description", "meshcrypt hostile e2e"));
            } else if (target.endsWith(".Encrypt")) {
                encrypts.incrementAndGet();
                byte[] plain = Base64.getDecoder().decode(req.get("Plaintext").asText());
                byte[] blob = new byte[MARK.length + plain.length];
                System.arraycopy(MARK, 0, blob, 0, MARK.length);
                System.arraycopy(plain, 0, blob, MARK.length, plain.length);
                body = Map.of("CiphertextBlob", Base64.getEncoder().encodeToString(blob), "KeyId", ARN,
                        "EncryptionAlgorithm", "SYMMETRIC_DEFAULT");
            } else if (target.endsWith(".Decrypt")) {
                decrypts.incrementAndGet();
                byte[] blob = Base64.getDecoder().decode(req.get("CiphertextBlob").asText());
                byte[] plain = java.util.Arrays.copyOfRange(blob, MARK.length, blob.length);
                body = Map.of("Plaintext", Base64.getEncoder().encodeToString(plain), "KeyId", ARN,
                        "EncryptionAlgorithm", "SYMMETRIC_DEFAULT");
            } else {
                // Not a stub to fill in: an operation the filter-service must not need here fails loudly, as AWS KMS
                // answers an unknown action.
                byte[] err = json.writeValueAsBytes(Map.of("__type", "UnsupportedOperationException", "message", target));
                ex.getResponseHeaders().add("Content-Type", "application/x-amz-json-1.1");
                ex.sendResponseHeaders(400, err.length);
                ex.getResponseBody().write(err);
                return;
            }
            byte[] out = json.writeValueAsBytes(body);
            ex.getResponseHeaders().add("Content-Type", "application/x-amz-json-1.1");
            ex.sendResponseHeaders(200, out.length);
            ex.getResponseBody().write(out);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
