package io.meshcrypt.xds.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.meshcrypt.filter.config.ConfigException;
import io.meshcrypt.filter.policy.EncryptionPolicy;
import io.meshcrypt.xds.mesh.Mesh.Address;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class MeshReaderTest {

    private static final Path FILE = Path.of("/etc/meshcrypt/mesh.yaml");

    private static final String VALID = """
            filterService: 127.0.0.1:50051
            kafkaClusters:
              main:
                brokers:
                  1: kafka-1.internal:9092
                  2: kafka-2.internal:9092
            sidecars:
              app-a:
                kafka:
                  main:
                    bootstrap: 127.0.0.1:19192
                    brokers:
                      1: 127.0.0.1:19193
                      2: 127.0.0.1:19194
              app-b:
                filterService: 10.0.0.7:50051
                kafka:
                  main:
                    bootstrap: 127.0.0.1:29192
                    brokers:
                      1: 127.0.0.1:29193
                      2: 127.0.0.1:29194
            policy:
              encrypt: ["orders-*"]
              unmatched: reject
            """;

    private static Mesh parse(String yaml) throws ConfigException {
        return MeshReader.parse(FILE, yaml.getBytes(StandardCharsets.UTF_8));
    }

    private static String failure(String yaml) {
        return assertThrows(ConfigException.class, () -> parse(yaml)).getMessage();
    }

    @Test
    void givenValidMesh_whenParsed_thenClustersSidecarsAndPolicyAreRead() throws Exception {
        Mesh mesh = parse(VALID);

        assertEquals(Map.of(1, new Address("kafka-1.internal", 9092), 2, new Address("kafka-2.internal", 9092)),
                mesh.kafkaClusters().get("main").brokers());
        assertEquals(new Address("127.0.0.1", 50051), mesh.sidecars().get("app-a").filterService(), "top-level default");
        assertEquals(new Address("10.0.0.7", 50051), mesh.sidecars().get("app-b").filterService(), "per-sidecar override");
        Mesh.KafkaListeners b = mesh.sidecars().get("app-b").kafka().get("main");
        assertEquals(new Address("127.0.0.1", 29192), b.bootstrap());
        assertEquals(new Address("127.0.0.1", 29194), b.brokers().get(2));
        assertEquals(EncryptionPolicy.of(List.of("orders-*"), EncryptionPolicy.Unmatched.REJECT), mesh.policy());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "unknown root key | filterService: 127.0.0.1:50051|filterServce: 127.0.0.1:50051"
                    + " | 1:1: filterServce: unknown field (expected one of filterService, kafkaClusters, sidecars, policy)",
            "unknown sidecar key | kafka:\\n      main:\\n        bootstrap: 127.0.0.1:19192|kafka:\\n      main:\\n        bootstap: 127.0.0.1:19192"
                    + " | 11:9: sidecars.app-a.kafka.main.bootstap: unknown field (expected one of bootstrap, brokers)",
            "unknown Kafka cluster | kafka:\\n      main:\\n        bootstrap: 127.0.0.1:19192|kafka:\\n      mian:\\n        bootstrap: 127.0.0.1:19192"
                    + " | 10:7: sidecars.app-a.kafka.mian: no such Kafka cluster (kafkaClusters has: main)",
            "broker without listener | 2: 127.0.0.1:19194|3: 127.0.0.1:19194"
                    + " | 14:11: sidecars.app-a.kafka.main.brokers.3: broker 3 is not in kafkaClusters.main",
            "listener host not an IP | bootstrap: 127.0.0.1:29192|bootstrap: localhost:29192"
                    + " | 19:9: sidecars.app-b.kafka.main.bootstrap: a listener address needs an IP literal host (got \"localhost\")",
            "listener used twice | 2: 127.0.0.1:19194|2: 127.0.0.1:19192"
                    + " | 14:11: sidecars.app-a.kafka.main.brokers.2: listener address 127.0.0.1:19192 is already used by sidecars.app-a.kafka.main.bootstrap",
            "bad policy | unmatched: reject|unmatched: drop"
                    + " | 25:3: policy.unmatched: must be one of passthrough, reject (got \"drop\")",
            "bad port | 10.0.0.7:50051|10.0.0.7:70000"
                    + " | 16:5: sidecars.app-b.filterService: port must be 1-65535 (got 70000)",
    })
    void givenMeshWithAnError_whenParsed_thenTheMessageNamesFileLineColumnAndField(String what, String from, String to, String expected) {
        String yaml = VALID.replace(from.replace("\\n", "\n"), to.replace("\\n", "\n"));
        assertEquals(FILE + ":" + expected.strip(), failure(yaml), what);
    }

    @Test
    void givenSidecarMissingABrokerListener_whenParsed_thenTheErrorSaysClientsWouldBypassEnvoy() {
        String message = failure(VALID.replace("          2: 127.0.0.1:19194\n", ""));

        assertEquals(FILE + ":12:9: sidecars.app-a.kafka.main.brokers: broker 2 of kafkaClusters.main has no listener;"
                + " every broker needs one, or clients would bypass Envoy", message);
    }

    @Test
    void givenNoFilterServiceAnywhere_whenParsed_thenTheErrorNamesTheSidecarField() {
        String message = failure(VALID.replace("filterService: 127.0.0.1:50051\n", ""));

        assertEquals(FILE + ":7:3: sidecars.app-a.filterService: required field is missing (set it here or at the top level)", message);
    }

    @Test
    void givenEmptyFile_whenParsed_thenTheErrorSaysWhatIsRequired() {
        assertEquals(FILE + ":1:1: the file is empty; kafkaClusters, sidecars and policy are required", failure(""));
    }
}
