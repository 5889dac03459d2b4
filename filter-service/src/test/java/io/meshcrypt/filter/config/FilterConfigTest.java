package io.meshcrypt.filter.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy.Unmatched;
import io.meshcrypt.meshconfig.policy.TopicDecision;
import io.meshcrypt.meshconfig.tls.TlsFiles;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class FilterConfigTest {

    @TempDir
    Path dir;

    private Path write(String yaml) throws Exception {
        Path file = dir.resolve("filter.yaml");
        Files.writeString(file, yaml);
        return file;
    }

    private ConfigException failure(String yaml) throws Exception {
        Path file = write(yaml);
        return assertThrows(ConfigException.class, () -> FilterConfig.load(file));
    }

    @Test
    void givenCompleteFile_whenLoaded_thenEveryFieldRead() throws Exception {
        Path file = write("""
                listen: 127.0.0.1:6000
                maxFrameBytes: 1048576
                keyset: keys/keyset.json
                brokers:
                  1: broker-1.internal:19093
                  2: "[::1]:19094"
                policy:
                  encrypt: ["orders", "pii.*"]
                  unmatched: reject
                """);

        FilterConfig config = FilterConfig.load(file);

        assertEquals(new InetSocketAddress("127.0.0.1", 6000), config.listen());
        assertEquals(1_048_576, config.maxFrameBytes());
        assertEquals(dir.toAbsolutePath().resolve("keys/keyset.json"), config.keyset());
        assertEquals(Map.of(1, InetSocketAddress.createUnresolved("broker-1.internal", 19093),
                2, InetSocketAddress.createUnresolved("::1", 19094)), config.brokers());
        assertEquals(EncryptionPolicy.of(List.of("orders", "pii.*"), Unmatched.REJECT), config.policy());
        assertEquals(TopicDecision.REJECT, config.policy().decide("public"));
    }

    @Test
    void givenOnlyKeyset_whenLoaded_thenDefaultsApplied() throws Exception {
        FilterConfig config = FilterConfig.load(write("keyset: /secure/keyset.json\n"));

        assertEquals(new InetSocketAddress("127.0.0.1", 50051), config.listen());
        assertEquals(104_857_600, config.maxFrameBytes());
        assertEquals(Path.of("/secure/keyset.json"), config.keyset());
        assertEquals(Map.of(), config.brokers());
        assertEquals(EncryptionPolicy.encryptAll(), config.policy());
    }

    @Test
    void givenPolicyWithOnlyUnmatched_whenLoaded_thenEncryptDefaultsToAll() throws Exception {
        FilterConfig config = FilterConfig.load(write("keyset: k.json\npolicy:\n  unmatched: reject\n"));

        assertEquals(EncryptionPolicy.of(List.of("*"), Unmatched.REJECT), config.policy());
    }

    @Test
    void givenBadUnmatchedValue_whenLoaded_thenMessageNamesFileLineColumnFieldAndValue() throws Exception {
        ConfigException e = failure("""
                keyset: k.json
                policy:
                  encrypt: ["*"]
                  unmatched: drop
                """);

        assertEquals(dir.resolve("filter.yaml") + ":4:3: policy.unmatched: must be one of passthrough, reject (got \"drop\")",
                e.getMessage());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
            unknown root key        | keyset: k.json\\nlisen: 1.2.3.4:5                       | 2:1 | lisen: unknown field (expected one of listen, maxFrameBytes, keyset, brokers, policy, policyFrom, http, keys, sivKeyset, limits, tls, audit, observability, subjectKeys, admin, unixSockets)
            unknown policy key      | keyset: k.json\\npolicy:\\n  encrpyt: [a]               | 3:3 | policy.encrpyt: unknown field
            missing keyset          | listen: 127.0.0.1:1                                     | 1:1 | keyset: required field is missing
            keyset not a string     | keyset: [a, b]                                          | 1:1 | keyset: must be a string (got a list)
            empty keyset            | keyset: ''                                              | 1:1 | keyset: must not be empty
            listen wrong type       | keyset: k.json\\nlisten: 50051                          | 2:1 | listen: must be a string (got 50051)
            listen without port     | keyset: k.json\\nlisten: localhost                      | 2:1 | listen: must be host:port (got "localhost")
            listen port too large   | keyset: k.json\\nlisten: 127.0.0.1:70000                | 2:1 | listen: port must be 0-65535 (got 70000)
            negative frame size     | keyset: k.json\\nmaxFrameBytes: -5                      | 2:1 | maxFrameBytes: must be a positive integer at most 2147483647 (got -5)
            zero frame size         | keyset: k.json\\nmaxFrameBytes: 0                       | 2:1 | maxFrameBytes: must be a positive integer
            huge frame size         | keyset: k.json\\nmaxFrameBytes: 99999999999             | 2:1 | maxFrameBytes: must be a positive integer at most 2147483647 (got 99999999999)
            frame size as string    | keyset: k.json\\nmaxFrameBytes: "100"                   | 2:1 | maxFrameBytes: must be a positive integer (got "100")
            frame size as float     | keyset: k.json\\nmaxFrameBytes: 1.5                     | 2:1 | maxFrameBytes: must be a positive integer (got 1.5)
            broker id not a number  | keyset: k.json\\nbrokers:\\n  one: h:1                  | 3:3 | brokers.one: broker node id must be a non-negative integer (got "one")
            broker bad address      | keyset: k.json\\nbrokers:\\n  1: 'h 1:9092'             | 3:3 | brokers.1: must be host:port (got "h 1:9092")
            broker port zero        | keyset: k.json\\nbrokers:\\n  1: h:0                    | 3:3 | brokers.1: port must be 1-65535 (got 0)
            brokers not a mapping   | keyset: k.json\\nbrokers: [a]                           | 2:10 | brokers: must be a mapping (got a list)
            policy not a mapping    | keyset: k.json\\npolicy: encrypt                        | 2:9 | policy: must be a mapping (got "encrypt")
            encrypt not a list      | keyset: k.json\\npolicy:\\n  encrypt: orders            | 3:3 | policy.encrypt: must be a list of topic patterns (got "orders")
            empty encrypt list      | keyset: k.json\\npolicy:\\n  encrypt: []                | 3:3 | policy.encrypt: must list at least one topic pattern
            empty pattern           | keyset: k.json\\npolicy:\\n  encrypt:\\n    - a\\n    - ''  | 5:7 | policy.encrypt[1]: must not be empty
            pattern not a string    | keyset: k.json\\npolicy:\\n  encrypt: [a, 7]            | 3:16 | policy.encrypt[1]: must be a topic pattern string (got 7)
            unmatched empty         | keyset: k.json\\npolicy:\\n  unmatched:                 | 3:3 | policy.unmatched: must be one of passthrough, reject (got "")
            unmatched null          | keyset: k.json\\npolicy:\\n  unmatched: ~               | 3:3 | policy.unmatched: must be one of passthrough, reject (got nothing)
            unmatched wrong case    | keyset: k.json\\npolicy:\\n  unmatched: REJECT          | 3:3 | policy.unmatched: must be one of passthrough, reject (got "REJECT")
            duplicate key           | keyset: k.json\\nkeyset: j.json                         | 2:1 | duplicate key "keyset"
            top level list          | - keyset                                                | 1:1 | must be a mapping (got a list)
            two documents           | keyset: k.json\\n---\\nkeyset: j.json                   | 3:1 | only one YAML document is allowed
            syntax error            | keyset: k.json\\npolicy: [a\\n                          | 2:11 | YAML syntax error: while parsing a flow sequence
            """)
    void givenInvalidFile_whenLoaded_thenMessageNamesFileLineColumnAndField(String name, String yaml, String at,
            String expected) throws Exception {
        ConfigException e = failure(yaml.replace("\\n", "\n"));

        String prefix = dir.resolve("filter.yaml") + ":" + at + ": ";
        assertTrue(e.getMessage().startsWith(prefix + expected), () -> "expected prefix <" + prefix + expected
                + "> but was <" + e.getMessage() + ">");
    }

    @Test
    void givenSyntaxErrorOnLineWithValue_whenLoaded_thenSourceLineNotQuoted() throws Exception {
        ConfigException e = failure("keyset: k.json\nsecret: SECRETVALUE: x\n");

        assertTrue(e.getMessage().startsWith(dir.resolve("filter.yaml") + ":2:"), e.getMessage());
        assertFalse(e.getMessage().contains("SECRETVALUE"), e.getMessage());
    }

    @Test
    void givenEmptyFile_whenLoaded_thenKeysetRequired() throws Exception {
        ConfigException e = failure("");

        assertEquals(dir.resolve("filter.yaml") + ":1:1: the file is empty; at least keyset is required", e.getMessage());
    }

    @Test
    void givenMissingFile_whenLoaded_thenMessageNamesFile() {
        Path file = dir.resolve("absent.yaml");

        ConfigException e = assertThrows(ConfigException.class, () -> FilterConfig.load(file));

        assertEquals(file + ": config file not found", e.getMessage());
    }

    @Test
    void givenLongBogusValue_whenLoaded_thenEchoIsShortened() throws Exception {
        String blob = "x".repeat(500);

        ConfigException e = failure("keyset: k.json\npolicy:\n  unmatched: " + blob + "\n");

        assertTrue(e.getMessage().length() < 250, e.getMessage());
        assertTrue(e.getMessage().contains("xxx..."), e.getMessage());
    }

    private static final String TLS = """
            tls:
              certificate: pki/filter-service/cert.pem
              privateKey: pki/filter-service/key.pem
              trustedCa: pki/ca.pem
            """;

    @Test
    void givenATlsSection_whenLoaded_thenItsPathsResolveAgainstTheConfigFolder() throws Exception {
        FilterConfig config = FilterConfig.load(write("listen: 0.0.0.0:50051\nkeyset: k.json\n" + TLS));

        assertEquals(new TlsFiles(dir.resolve("pki/filter-service/cert.pem"), dir.resolve("pki/filter-service/key.pem"),
                dir.resolve("pki/ca.pem")), config.tls());
    }

    @Test
    void givenNoTlsAndALoopbackListen_whenLoaded_thenPlaintextAsBefore() throws Exception {
        assertNull(FilterConfig.load(write("listen: 127.0.0.1:50051\nkeyset: k.json\n")).tls());
        assertNull(FilterConfig.load(write("keyset: k.json\n")).tls());
    }

    @Test
    void givenNoTlsAndANonLoopbackListen_whenLoaded_thenTheErrorNamesTheListenLine() throws Exception {
        Path file = dir.resolve("filter.yaml");

        ConfigException e = failure("keyset: k.json\nlisten: 0.0.0.0:50051\n");

        assertEquals(file + ":2:1: tls: required when listen is not a loopback address (certificate, privateKey, trustedCa;"
                + " or \"mesh-sidecar\" when the pod's mesh sidecar terminates mutual TLS)", e.getMessage());
    }

    @Test
    void givenTlsLeftToTheMeshSidecar_whenLoadedWithANonLoopbackListen_thenItServesPlaintextBehindThatSidecar() throws Exception {
        assertNull(FilterConfig.load(write("listen: 0.0.0.0:9090\nkeyset: k.json\ntls: mesh-sidecar\n")).tls());
    }

    @Test
    void givenAnotherTlsWord_whenLoaded_thenItIsRefusedAsASectionThatIsNotAMapping() throws Exception {
        ConfigException e = failure("listen: 0.0.0.0:9090\nkeyset: k.json\ntls: off\n");

        assertTrue(e.getMessage().contains(":3:") && e.getMessage().contains("tls"), e.getMessage());
    }

    @Test
    void givenATlsSectionWithoutTheCa_whenLoaded_thenTheErrorNamesTheField() throws Exception {
        Path file = dir.resolve("filter.yaml");

        ConfigException e = failure("keyset: k.json\n" + TLS.replace("  trustedCa: pki/ca.pem\n", ""));

        assertTrue(e.getMessage().startsWith(file + ":3:3: tls.trustedCa: required field is missing"), e.getMessage());
    }
}
