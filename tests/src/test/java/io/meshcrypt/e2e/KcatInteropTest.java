package io.meshcrypt.e2e;

import static io.meshcrypt.e2e.support.Records.text;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.meshcrypt.e2e.support.Envelope;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.e2e.support.MeshExtension;
import io.meshcrypt.testsupport.Prerequisite;
import java.io.File;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** librdkafka (through kcat) negotiates versions and compression on its own; it must work through Envoy too. */
@ExtendWith(MeshExtension.class)
class KcatInteropTest {

    private static final long KCAT_TIMEOUT_SECONDS = 60;
    private static Path kcat;

    private final LocalMesh mesh;

    KcatInteropTest(LocalMesh mesh) {
        this.mesh = mesh;
    }

    @BeforeAll
    static void findKcat() {
        kcat = List.of(System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)).stream()
                .map(dir -> Path.of(dir, "kcat"))
                .filter(Files::isExecutable)
                .findFirst().orElse(null);
        Prerequisite.require(kcat != null, "kcat is not installed");
    }

    @ParameterizedTest(name = "kcat -z {0}")
    @ValueSource(strings = {"none", "gzip", "snappy", "lz4", "zstd"})
    void givenKcatProducerWithCompression_whenRoundTripThroughEnvoy_thenPlaintextBackAndEnvelopesAtRest(String codec) throws Exception {
        // Given keyed lines
        String topic = mesh.createTopic("kcat-" + codec, 1);
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 25; i++) {
            lines.add("key-" + i + "|kcat " + codec + " secret " + i + " " + "x".repeat(i * 3));
        }

        // When kcat produces them through Envoy and consumes them back through Envoy
        run(String.join("\n", lines) + "\n", "-b", mesh.kafkaBootstrap(), "-P", "-t", topic, "-z", codec, "-K", "|");
        String consumed = run("", "-b", mesh.kafkaBootstrap(), "-C", "-t", topic, "-o", "beginning", "-e", "-q",
                "-f", "%k|%s\\n");

        // Then kcat reads the plaintext back in order
        assertEquals(lines, consumed.lines().toList(), "kcat consumer output through Envoy");
        // and the broker holds only envelopes
        List<ConsumerRecord<byte[], byte[]>> direct = mesh.readDirect(topic);
        assertEquals(lines.size(), direct.size(), "records at rest");
        for (int i = 0; i < lines.size(); i++) {
            String[] kv = lines.get(i).split("\\|", 2);
            ConsumerRecord<byte[], byte[]> atRest = direct.get(i);
            assertArrayEquals(kv[0].getBytes(StandardCharsets.UTF_8), atRest.key(), "key at rest @" + atRest.offset());
            Envelope.assertEnvelopeOf(kv[1].getBytes(StandardCharsets.UTF_8), atRest.value(),
                    topic + "@" + atRest.offset() + " (" + text(atRest.key()) + ")");
        }
    }

    /** Runs kcat with {@code stdin}; returns stdout, failing with stderr if kcat fails or hangs. */
    private static String run(String stdin, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>();
        command.add(kcat.toString());
        command.addAll(List.of(args));
        Path stderr = Files.createTempFile("kcat", ".err");
        try {
            Process p = new ProcessBuilder(command).redirectError(stderr.toFile()).start();
            try (OutputStream in = p.getOutputStream()) {
                in.write(stdin.getBytes(StandardCharsets.UTF_8));
            }
            // stdout is small (tens of lines) so reading it after exit cannot dead-lock on a full pipe
            byte[] out;
            if (!p.waitFor(KCAT_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("kcat " + String.join(" ", args) + " hung; stderr: " + Files.readString(stderr));
            }
            out = p.getInputStream().readAllBytes();
            String err = Files.readString(stderr);
            assertEquals(0, p.exitValue(), () -> "kcat " + String.join(" ", args) + " failed: " + err);
            return new String(out, StandardCharsets.UTF_8);
        } finally {
            Files.deleteIfExists(stderr);
        }
    }
}
