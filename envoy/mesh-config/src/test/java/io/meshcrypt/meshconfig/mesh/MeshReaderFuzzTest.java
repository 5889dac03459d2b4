package io.meshcrypt.meshconfig.mesh;

import static org.junit.jupiter.api.Assertions.fail;

import io.meshcrypt.meshconfig.yaml.ConfigException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * MeshReader on mutated mesh files: a bad file must be reported as ConfigException (file:line:column), never as any
 * other exception, which would take the xDS server (or a live reload) down with a stack trace.
 *
 * <p>A deterministic mutation loop rather than a Jazzer @FuzzTest: this module has no jazzer-junit test dependency
 * (the filter-service harnesses use Jazzer; see tests/fuzz/run.sh). {@code -Dmeshcrypt.fuzz.meshIterations=N} and
 * {@code -Dmeshcrypt.fuzz.meshSeed=S} run a longer or different campaign; a failing input is written to
 * target/mesh-fuzz-failure.yaml.
 *
 * <p>Inputs naming {@code advertise} are skipped: MeshReader resolves an advertised host name through DNS
 * ({@code isWildcard}), and a fuzzer must not send lookups for random names.
 */
class MeshReaderFuzzTest {
    private static final Path FILE = Path.of("/etc/meshcrypt/mesh.yaml");

    private static final List<String> SEEDS = List.of("""
            filterService: 127.0.0.1:50051
            kafkaClusters:
              main:
                brokers:
                  1: kafka-1.internal:9092
                  2: "[fd00::2]:9092"
            sidecars:
              app-a:
                kafka:
                  main:
                    bootstrap: 127.0.0.1:19192
                    brokers:
                      1: 127.0.0.1:19193
                      2: {listen: 127.0.0.1:19194}
              app-b:
                filterService: 10.0.0.7:50051
                http:
                  orders:
                    listen: 127.0.0.1:28080
                    upstream: app.internal:8080
            policy:
              encrypt: ["orders-*", {topic: "cards", fields: ["/number"]}]
              unmatched: reject
            http:
              rules:
                - name: orders
                  match: {methods: [POST], path: /orders}
                  binding: orders
                  request:
                    fields: {encrypt: ["/card"]}
            """, """
            filterService: 127.0.0.1:50051
            kafkaClusters:
              main:
                brokers:
                  1: 10.0.0.1:9092
              audit:
                brokers:
                  7: "[fd00::7]:9093"
            sidecars:
              go-app:
                filterService: 169.254.22.1:22097
                transparent:
                  listen: 127.0.0.1:15001
                  kafka: [main, audit]
            policy:
              encrypt: ["orders-*"]
            """);

    /** Fragments a mutation inserts: YAML syntax and the mesh file's own keys and value shapes. */
    private static final List<String> TOKENS = List.of(":", ": ", "\n", "\n  ", "  ", "- ", "[", "]", "{", "}", ",", "\"",
            "'", "&a ", "*a", "!!str ", "!!int ", "? ", "|\n", "#", "---\n", "...\n", "~", "null", "true", "0", "-1",
            "65535", "65536", "99999999999999999999", "1e400", "0x1F", "[::1]:1", "[::]:0", "0.0.0.0:1", "127.0.0.1:0",
            "255.255.255.255:65535", "[fe80::1%eth0]:9", "host:", ":9092", "filterService", "kafkaClusters", "sidecars",
            "policy", "http", "brokers", "bootstrap", "listen", "upstream", "transparent", "kafka", "encrypt",
            "unmatched", "passthrough", "reject", "topic", "fields", "keys", "deterministic", "rules", "name", "match",
            "binding", "request", "response", "methods", "path", "pathRegex", "(", "\\", "\u00e9", "\uFEFF", "\u0000", "\t");

    @Test
    void givenMutatedMeshFiles_whenParsed_thenOnlyConfigException() throws Exception {
        int iterations = Integer.getInteger("meshcrypt.fuzz.meshIterations", 20_000);
        SplittableRandom random = new SplittableRandom(Long.getLong("meshcrypt.fuzz.meshSeed", 11L));
        for (int i = 0; i < iterations; i++) {
            byte[] yaml = mutate(random);
            if (new String(yaml, StandardCharsets.ISO_8859_1).contains("advertise")) {
                continue;
            }
            try {
                MeshReader.parse(FILE, yaml);
            } catch (ConfigException expected) {
                // reported with file:line:column
            } catch (RuntimeException | StackOverflowError e) {
                Path out = Path.of("target", "mesh-fuzz-failure.yaml");
                Files.createDirectories(out.getParent());
                Files.write(out, yaml);
                fail("iteration " + i + ": " + e + " escaped MeshReader for the input in " + out.toAbsolutePath()
                        + " (hex " + HexFormat.of().formatHex(yaml, 0, Math.min(yaml.length, 2048)) + ")", e);
            }
        }
    }

    private static byte[] mutate(SplittableRandom random) {
        byte[] b = SEEDS.get(random.nextInt(SEEDS.size())).getBytes(StandardCharsets.UTF_8);
        int rounds = 1 + random.nextInt(6);
        for (int r = 0; r < rounds; r++) {
            int at = random.nextInt(b.length + 1);
            switch (random.nextInt(6)) {
                case 0 -> { // insert a token
                    byte[] t = TOKENS.get(random.nextInt(TOKENS.size())).getBytes(StandardCharsets.UTF_8);
                    b = splice(b, at, at, t);
                }
                case 1 -> { // delete a run
                    int end = Math.min(b.length, at + 1 + random.nextInt(24));
                    b = splice(b, at, end, new byte[0]);
                }
                case 2 -> { // overwrite a byte
                    if (at < b.length) {
                        b[at] = (byte) random.nextInt(256);
                    }
                }
                case 3 -> { // duplicate a run elsewhere (repeated keys, deeper nesting)
                    int end = Math.min(b.length, at + 1 + random.nextInt(80));
                    byte[] run = Arrays.copyOfRange(b, Math.min(at, b.length), end);
                    int to = random.nextInt(b.length + 1);
                    b = splice(b, to, to, run);
                }
                case 4 -> { // replace a run by a token
                    int end = Math.min(b.length, at + 1 + random.nextInt(12));
                    b = splice(b, at, end, TOKENS.get(random.nextInt(TOKENS.size())).getBytes(StandardCharsets.UTF_8));
                }
                default -> { // graft a run of the other seed
                    byte[] other = SEEDS.get(random.nextInt(SEEDS.size())).getBytes(StandardCharsets.UTF_8);
                    int from = random.nextInt(other.length);
                    b = splice(b, at, at, Arrays.copyOfRange(other, from, Math.min(other.length, from + 1 + random.nextInt(120))));
                }
            }
        }
        return b;
    }

    private static byte[] splice(byte[] b, int from, int to, byte[] insert) {
        from = Math.min(from, b.length);
        to = Math.max(from, Math.min(to, b.length));
        byte[] out = new byte[b.length - (to - from) + insert.length];
        System.arraycopy(b, 0, out, 0, from);
        System.arraycopy(insert, 0, out, from, insert.length);
        System.arraycopy(b, to, out, from + insert.length, b.length - to);
        return out;
    }
}
