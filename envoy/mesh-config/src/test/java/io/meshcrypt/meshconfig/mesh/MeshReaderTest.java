package io.meshcrypt.meshconfig.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.meshconfig.mesh.Mesh.Address;
import io.meshcrypt.meshconfig.mesh.Mesh.UnixSocket;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
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

    /** {@code base} with {@code from} replaced by {@code to} ({@code \n} for line breaks) fails with {@code expected} after "file:". */
    private static void assertFailure(String base, String what, String from, String to, String expected) {
        String yaml = base.replace(from.replace("\\n", "\n"), to.replace("\\n", "\n"));
        assertEquals(FILE + ":" + expected.strip(), failure(yaml), what);
    }

    @Test
    void givenValidMesh_whenParsed_thenClustersSidecarsAndPolicyAreRead() throws Exception {
        Mesh mesh = parse(VALID);

        assertEquals(Map.of(1, new Address("kafka-1.internal", 9092), 2, new Address("kafka-2.internal", 9092)),
                mesh.kafkaClusters().get("main").brokers());
        assertEquals(List.of(new Address("127.0.0.1", 50051)), mesh.sidecars().get("app-a").filterServices(), "top-level default");
        assertEquals(List.of(new Address("10.0.0.7", 50051)), mesh.sidecars().get("app-b").filterServices(), "per-sidecar override");
        Mesh.KafkaListeners b = mesh.sidecars().get("app-b").kafka().get("main");
        assertEquals(new Address("127.0.0.1", 29192), b.bootstrap());
        assertEquals(new Address("127.0.0.1", 29194), b.brokers().get(2));
        assertEquals(EncryptionPolicy.of(List.of("orders-*"), EncryptionPolicy.Unmatched.REJECT), mesh.policy());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "unknown root key | filterService: 127.0.0.1:50051|filterServce: 127.0.0.1:50051"
                    + " | 1:1: filterServce: unknown field (expected one of filterService, kafkaClusters, sidecars, policy, http, tls)",
            "unknown sidecar key | kafka:\\n      main:\\n        bootstrap: 127.0.0.1:19192|kafka:\\n      main:\\n        bootstap: 127.0.0.1:19192"
                    + " | 11:9: sidecars.app-a.kafka.main.bootstap: unknown field (expected one of bootstrap, brokers, tls)",
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
            "wildcard broker listener | 2: 127.0.0.1:19194|2: 0.0.0.0:19194"
                    + " | 14:11: sidecars.app-a.kafka.main.brokers.2: clients are told to connect to a broker listener's address,"
                    + " so it cannot be a wildcard (got 0.0.0.0:19194); bind a wildcard with {listen: 0.0.0.0:19194, advertise:"
                    + " <the address clients reach it at>}",
            "wildcard advertised | 2: 127.0.0.1:19194|2: {listen: 0.0.0.0:19194, advertise: \"[::]:19194\"}"
                    + " | 14:11: sidecars.app-a.kafka.main.brokers.2: clients are told to connect to a broker listener's address,"
                    + " so it cannot be a wildcard (got [::]:19194); bind a wildcard with {listen: 0.0.0.0:19194, advertise:"
                    + " <the address clients reach it at>}",
            "broker listener without listen | 2: 127.0.0.1:19194|2: {advertise: localhost:19194}"
                    + " | 14:14: sidecars.app-a.kafka.main.brokers.2.listen: required field is missing (listener host:port)",
            "unknown broker listener key | 2: 127.0.0.1:19194|2: {listen: 0.0.0.0:19194, advertize: localhost:19194}"
                    + " | 14:38: sidecars.app-a.kafka.main.brokers.2.advertize: unknown field (expected one of listen, advertise)",
    })
    void givenMeshWithAnError_whenParsed_thenTheMessageNamesFileLineColumnAndField(String what, String from, String to, String expected) {
        assertFailure(VALID, what, from, to, expected);
    }

    @Test
    void givenSidecarMissingABrokerListener_whenParsed_thenTheErrorSaysClientsWouldBypassEnvoy() {
        String message = failure(VALID.replace("          2: 127.0.0.1:19194\n", ""));

        assertEquals(FILE + ":12:9: sidecars.app-a.kafka.main.brokers: broker 2 of kafkaClusters.main has no listener;"
                + " every broker needs one, or clients would bypass Envoy", message);
    }

    @Test
    void givenFilterServiceLists_whenParsed_thenEverySidecarGetsItsReplicasInFileOrder() throws Exception {
        Mesh mesh = parse(VALID.replace("filterService: 127.0.0.1:50051\n", "filterService: [127.0.0.1:50051, \"[::1]:50052\"]\n")
                .replace("filterService: 10.0.0.7:50051", "filterService:\n      - fs-1.internal:50051\n      - fs-0.internal:50051"));

        assertEquals(List.of(new Address("127.0.0.1", 50051), new Address("::1", 50052)),
                mesh.sidecars().get("app-a").filterServices(), "top-level list as the default");
        assertEquals(List.of(new Address("fs-1.internal", 50051), new Address("fs-0.internal", 50051)),
                mesh.sidecars().get("app-b").filterServices(), "per-sidecar list, file order kept");
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "empty list | filterService: 127.0.0.1:50051|filterService: []"
                    + " | 1:1: filterService: must list at least one filter-service host:port or unix:<absolute path>",
            "not an address | filterService: 10.0.0.7:50051|filterService: [10.0.0.7:50051, 10.0.0.8]"
                    + " | 16:37: sidecars.app-b.filterService[1]: must be host:port (got \"10.0.0.8\")",
            "a number in the list | filterService: 10.0.0.7:50051|filterService: [10.0.0.7:50051, 50052]"
                    + " | 16:37: sidecars.app-b.filterService[1]: must be a gRPC host:port or unix:<absolute path> (got 50052)",
            "a mapping | filterService: 10.0.0.7:50051|filterService: {host: 10.0.0.7}"
                    + " | 16:5: sidecars.app-b.filterService: must be a gRPC host:port or unix:<absolute path>, or a list of them (got a mapping)",
            "listed twice | filterService: 127.0.0.1:50051|filterService: [127.0.0.1:50051, 127.0.0.2:50051, 127.0.0.1:50051]"
                    + " | 1:51: filterService[2]: 127.0.0.1:50051 is also filterService[0]",
    })
    void givenFilterServiceListWithAnError_whenParsed_thenTheMessageNamesTheItem(String what, String from, String to, String expected) {
        assertFailure(VALID, what, from, to, expected);
    }

    @Test
    void givenUnixSocketFilterServices_whenParsed_thenEachSidecarReachesItsSocket() throws Exception {
        Mesh mesh = parse(VALID.replace("filterService: 127.0.0.1:50051\n", "filterService: unix:/run/meshcrypt/app-a.sock\n")
                .replace("filterService: 10.0.0.7:50051", "filterService: [unix:/run/meshcrypt/b1.sock, unix:/run/meshcrypt/b2.sock]"));

        assertEquals(List.of(new UnixSocket(Path.of("/run/meshcrypt/app-a.sock"))), mesh.sidecars().get("app-a").filterServices());
        assertEquals(List.of(new UnixSocket(Path.of("/run/meshcrypt/b1.sock")), new UnixSocket(Path.of("/run/meshcrypt/b2.sock"))),
                mesh.sidecars().get("app-b").filterServices(), "replicas on two sockets");
        assertTrue(mesh.sidecars().get("app-b").onUnixSockets());
        assertEquals("unix:/run/meshcrypt/app-a.sock", mesh.sidecars().get("app-a").filterServices().getFirst().toString(),
                "spelt as the mesh file spells it");
    }

    @Test
    void givenTcpFilterService_whenParsed_thenTheSidecarIsNotOnUnixSockets() throws Exception {
        assertFalse(parse(VALID).sidecars().get("app-a").onUnixSockets());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "relative path | filterService: 10.0.0.7:50051|filterService: unix:run/b.sock"
                    + " | 16:5: sidecars.app-b.filterService: needs an absolute socket path after unix: (got \"unix:run/b.sock\")",
            "abstract namespace | filterService: 10.0.0.7:50051|filterService: unix:@meshcrypt"
                    + " | 16:5: sidecars.app-b.filterService: needs an absolute socket path after unix: (got \"unix:@meshcrypt\")",
            "dot-dot part | filterService: 10.0.0.7:50051|filterService: unix:/run/../tmp/b.sock"
                    + " | 16:5: sidecars.app-b.filterService: needs a plain absolute path, without . or .. parts, double or trailing"
                    + " slashes (got \"unix:/run/../tmp/b.sock\")",
            "empty path | filterService: 10.0.0.7:50051|filterService: 'unix:'"
                    + " | 16:5: sidecars.app-b.filterService: needs an absolute socket path after unix: (got \"unix:\")",
            "mixed replicas | filterService: 10.0.0.7:50051|filterService: [unix:/run/b.sock, 10.0.0.7:50051]"
                    + " | 16:39: sidecars.app-b.filterService[1]: mixes a Unix socket and host:port replicas"
                    + " (sidecars.app-b.filterService[0] is unix:/run/b.sock); list only one kind",
            "socket listed twice | filterService: 10.0.0.7:50051|filterService: [unix:/run/b.sock, unix:/run/b.sock]"
                    + " | 16:39: sidecars.app-b.filterService[1]: unix:/run/b.sock is also sidecars.app-b.filterService[0]",
    })
    void givenUnixSocketFilterServiceWithAnError_whenParsed_thenTheMessageNamesFileLineColumnAndField(String what, String from, String to,
                                                                                                      String expected) {
        assertFailure(VALID, what, from, to, expected);
    }

    @Test
    void givenUnixSocketPathLongerThanSunPath_whenParsed_thenTheErrorGivesItsLengthAndTheLimit() {
        String tooLong = "/" + "d".repeat(100) + "/x.sock";

        String message = failure(VALID.replace("filterService: 10.0.0.7:50051", "filterService: unix:" + tooLong));

        assertEquals(FILE + ":16:5: sidecars.app-b.filterService: socket path is 108 bytes; Linux allows at most 107 (sun_path),"
                + " pick a shorter folder", message);
    }

    @Test
    void givenUnixSocketPathOfExactlySunPathLength_whenParsed_thenItIsAccepted() throws Exception {
        String longest = "/" + "d".repeat(99) + "/x.sock";

        Mesh mesh = parse(VALID.replace("filterService: 10.0.0.7:50051", "filterService: unix:" + longest));

        assertEquals(List.of(new UnixSocket(Path.of(longest))), mesh.sidecars().get("app-b").filterServices());
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

    /** VALID plus an HTTP listener on app-b, lines 23-26. */
    private static final String WITH_HTTP = VALID.replace("policy:\n", """
                http:
                  orders:
                    listen: 127.0.0.1:28080
                    upstream: app.internal:8080
            policy:
            """);

    @Test
    void givenHttpListener_whenParsed_thenListenAndUpstreamAreRead() throws Exception {
        Mesh.Sidecar b = parse(WITH_HTTP).sidecars().get("app-b");

        assertEquals(Map.of("orders", new Mesh.HttpListener("orders", new Address("127.0.0.1", 28080), new Address("app.internal", 8080))),
                b.http());
        assertEquals(Map.of(), parse(VALID).sidecars().get("app-a").http());
    }

    @Test
    void givenSidecarWithOnlyHttp_whenParsed_thenItNeedsNoKafka() throws Exception {
        String yaml = WITH_HTTP.replace("""
                    kafka:
                      main:
                        bootstrap: 127.0.0.1:29192
                        brokers:
                          1: 127.0.0.1:29193
                          2: 127.0.0.1:29194
                """, "");

        Mesh.Sidecar b = parse(yaml).sidecars().get("app-b");

        assertEquals(Map.of(), b.kafka());
        assertEquals(new Address("127.0.0.1", 28080), b.http().get("orders").listen());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "unknown HTTP listener key | upstream: app|upstrem: app"
                    + " | 26:9: sidecars.app-b.http.orders.upstrem: unknown field (expected one of listen, upstream)",
            "HTTP listener on a Kafka listener's address | listen: 127.0.0.1:28080|listen: 127.0.0.1:29192"
                    + " | 25:9: sidecars.app-b.http.orders.listen: listener address 127.0.0.1:29192 is already used by sidecars.app-b.kafka.main.bootstrap",
            "HTTP listen host not an IP | listen: 127.0.0.1:28080|listen: localhost:28080"
                    + " | 25:9: sidecars.app-b.http.orders.listen: a listener address needs an IP literal host (got \"localhost\")",
            "HTTP upstream missing | \\n        upstream: app.internal:8080\\n|\\n"
                    + " | 25:9: sidecars.app-b.http.orders.upstream: required field is missing (application host:port)",
            "HTTP upstream bad port | app.internal:8080|app.internal:0"
                    + " | 26:9: sidecars.app-b.http.orders.upstream: port must be 1-65535 (got 0)",
            "HTTP listener name | orders:|orders/v1:"
                    + " | 24:7: sidecars.app-b.http.orders/v1: name must match [A-Za-z0-9][A-Za-z0-9_.-]{0,62} (it becomes part of Envoy resource names)",
            "unknown listener kind | http:\\n      orders:|htp:\\n      orders:"
                    + " | 23:5: sidecars.app-b.htp: unknown field (expected one of filterService, kafka, http, transparent)",
    })
    void givenHttpListenerWithAnError_whenParsed_thenTheMessageNamesFileLineColumnAndField(String what, String from, String to, String expected) {
        assertFailure(WITH_HTTP, what, from, to, expected);
    }

    @Test
    void givenSidecarWithNeitherKafkaNorHttp_whenParsed_thenTheErrorSaysOneIsRequired() {
        String message = failure(VALID.replace("""
                    kafka:
                      main:
                        bootstrap: 127.0.0.1:29192
                        brokers:
                          1: 127.0.0.1:29193
                          2: 127.0.0.1:29194
                """, ""));

        assertEquals(FILE + ":16:5: sidecars.app-b.kafka: required field is missing (Kafka cluster name -> {bootstrap, brokers};"
                + " or http: listener name -> {listen, upstream}; or transparent: {listen, kafka: [Kafka cluster names]})", message);
    }

    /** A transparent-only sidecar intercepting two clusters, one with an IPv6 broker; transparent on lines 13-15. */
    private static final String TRANSPARENT = """
            filterService: 127.0.0.1:50051
            kafkaClusters:
              main:
                brokers:
                  1: 10.0.0.1:9092
                  2: 10.0.0.2:9092
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
            """;

    @Test
    void givenTransparentSidecar_whenParsed_thenListenAndInterceptedClustersAreRead() throws Exception {
        Mesh.Sidecar sidecar = parse(TRANSPARENT).sidecars().get("go-app");

        assertEquals(Optional.of(new Mesh.Transparent(new Address("127.0.0.1", 15001), List.of("main", "audit"))), sidecar.transparent());
        assertEquals(Map.of(), sidecar.kafka(), "transparent needs no explicit Kafka listeners");
        assertEquals(Map.of(), sidecar.http());
        assertEquals(new Address("fd00::7", 9093), parse(TRANSPARENT).kafkaClusters().get("audit").brokers().get(7));
        assertEquals(Optional.empty(), parse(VALID).sidecars().get("app-a").transparent());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "unknown transparent key | listen: 127|lisen: 127"
                    + " | 14:7: sidecars.go-app.transparent.lisen: unknown field (expected one of listen, kafka)",
            "listen missing | listen: 127.0.0.1:15001\\n      kafka|kafka"
                    + " | 14:7: sidecars.go-app.transparent.listen: required field is missing (listener host:port the iptables REDIRECT rule targets)",
            "listen host not an IP | listen: 127.0.0.1|listen: localhost"
                    + " | 14:7: sidecars.go-app.transparent.listen: a listener address needs an IP literal host (got \"localhost\")",
            "kafka missing | \\n      kafka: [main, audit]|''"
                    + " | 14:7: sidecars.go-app.transparent.kafka: required field is missing (list of Kafka cluster names whose brokers are intercepted)",
            "kafka not a list | [main, audit]|main"
                    + " | 15:7: sidecars.go-app.transparent.kafka: must be a list of Kafka cluster names (got \"main\")",
            "kafka empty | [main, audit]|[]"
                    + " | 15:7: sidecars.go-app.transparent.kafka: must name at least one Kafka cluster",
            "unknown Kafka cluster | [main, audit]|[main, audt]"
                    + " | 15:21: sidecars.go-app.transparent.kafka[1]: no such Kafka cluster \"audt\" (kafkaClusters has: audit, main)",
            "Kafka cluster twice | [main, audit]|[main, main]"
                    + " | 15:21: sidecars.go-app.transparent.kafka[1]: Kafka cluster main is listed twice",
            "broker host not an IP | 1: 10.0.0.1:9092|1: kafka-1.internal:9092"
                    + " | 5:7: kafkaClusters.main.brokers.1: needs an IP literal host, since sidecars.go-app.transparent.kafka intercepts main"
                    + " by destination address (got \"kafka-1.internal\")",
            "two brokers on one address | \"[fd00::7]:9093\"|10.0.0.2:9092"
                    + " | 9:7: kafkaClusters.audit.brokers.7: address 10.0.0.2:9092 is also kafkaClusters.main.brokers.2;"
                    + " sidecars.go-app.transparent needs a distinct address per broker to tell their connections apart",
            "one IPv6 address spelt twice | 2: 10.0.0.2:9092|2: \"[fd00:0:0::7]:9093\""
                    + " | 9:7: kafkaClusters.audit.brokers.7: address [fd00::7]:9093 is also kafkaClusters.main.brokers.2;"
                    + " sidecars.go-app.transparent needs a distinct address per broker to tell their connections apart",
            "broker on the listener address | listen: 127.0.0.1:15001|listen: 10.0.0.1:9092"
                    + " | 5:7: kafkaClusters.main.brokers.1: address 10.0.0.1:9092 is sidecars.go-app.transparent.listen itself;"
                    + " a connection to the listener would match its own filter chain and loop",
            "loopback broker | 2: 10.0.0.2:9092|2: 127.0.0.2:9092"
                    + " | 6:7: kafkaClusters.main.brokers.2: is a loopback address, which transparent interception never redirects;"
                    + " sidecars.go-app.transparent.kafka needs brokers the app reaches over the network (got 127.0.0.2:9092)",
            "listen used by an HTTP listener | transparent:|http:\\n      web:\\n        listen: 127.0.0.1:15001\\n        upstream: 127.0.0.1:8080\\n    transparent:"
                    + " | 18:7: sidecars.go-app.transparent.listen: listener address 127.0.0.1:15001 is already used by sidecars.go-app.http.web.listen",
    })
    void givenTransparentSidecarWithAnError_whenParsed_thenTheMessageNamesFileLineColumnAndField(String what, String from, String to, String expected) {
        assertFailure(TRANSPARENT, what, from, to, expected);
    }

    private static final String HTTP_RULES = """
            http:
              rules:
                - name: orders
                  match: {methods: [POST], path: /orders}
                  binding: orders
                  request:
                    fields:
                      - encrypt: /card/number
            """;

    @Test
    void givenHttpRewriteRules_whenParsed_thenTheyAreReadInOrder() throws Exception {
        Mesh mesh = parse(VALID + HTTP_RULES);

        assertEquals(List.of("orders"), mesh.http().rules().stream().map(r -> r.name()).toList());
        assertEquals("/orders", mesh.http().rules().getFirst().match().pathPrefix());
    }

    @Test
    void givenNoHttpSection_whenParsed_thenThereAreNoHttpRules() throws Exception {
        assertEquals(List.of(), parse(VALID).http().rules());
    }

    @Test
    void givenHttpRuleWithAnError_whenParsed_thenTheMessageNamesMeshFileLineAndField() {
        String message = failure(VALID + HTTP_RULES.replace("encrypt: /card/number", "encrypt: card/number"));

        assertEquals(FILE + ":33:22: http.rules[0].request.fields[0].encrypt: ", message.substring(0, message.indexOf(": ",
                message.indexOf("encrypt:")) + 2));
    }

    @Test
    void givenBrokerListenerBoundToAWildcard_whenParsed_thenClientsAreToldTheAdvertisedAddress() throws Exception {
        Mesh mesh = parse(VALID.replace("2: 127.0.0.1:19194", "2: {listen: 0.0.0.0:19194, advertise: kafka-2.app-a.local:29094}"));

        Mesh.KafkaListeners listeners = mesh.sidecars().get("app-a").kafka().get("main");
        assertEquals(new Address("0.0.0.0", 19194), listeners.brokers().get(2));
        assertEquals(new Address("kafka-2.app-a.local", 29094), listeners.advertised().get(2));
        assertEquals(new Address("127.0.0.1", 19193), listeners.advertised().get(1), "without advertise: the listener address");
    }

    @Test
    void givenTheComposeMeshFile_whenLoaded_thenItIsValidAndAdvertisesThePublishedPort() throws Exception {
        Path file = Path.of(System.getProperty("meshcrypt.root", "../..")).toAbsolutePath().normalize().resolve("envoy/compose/mesh.yaml");

        Mesh.KafkaListeners listeners = MeshReader.load(file).sidecars().get("compose-sidecar").kafka().get("main");

        assertEquals(new Address("0.0.0.0", 19193), listeners.brokers().get(1));
        assertEquals(new Address("localhost", 19193), listeners.advertised().get(1));
    }

    private static final String TLS = """
            tls:
              trustedCa: pki/ca.pem
              certificates: /var/lib/meshcrypt/pki
              filterService: spiffe://meshcrypt.local/filter-service
            """;

    @Test
    void givenATlsSection_whenParsed_thenPathsResolveAgainstTheFileAndEachSidecarHasItsFolder() throws Exception {
        Mesh mesh = parse(VALID + TLS);

        Mesh.Tls tls = mesh.tls().orElseThrow();
        assertEquals(Path.of("/etc/meshcrypt/pki/ca.pem"), tls.trustedCa());
        assertEquals(java.net.URI.create("spiffe://meshcrypt.local/filter-service"), tls.filterService());
        assertEquals(Path.of("/var/lib/meshcrypt/pki/sidecar-app-a/cert.pem"), tls.sidecarCertificate("app-a"));
        assertEquals(Path.of("/var/lib/meshcrypt/pki/sidecar-app-a/key.pem"), tls.sidecarPrivateKey("app-a"));
        assertEquals(Optional.empty(), parse(VALID).tls());
    }

    @Test
    void givenATlsSectionWithoutTheFilterServiceId_whenParsed_thenTheErrorNamesLineAndField() {
        String message = failure(VALID + TLS.replace("  filterService: spiffe://meshcrypt.local/filter-service\n", ""));

        assertTrue(message.matches("/etc/meshcrypt/mesh.yaml:\\d+:\\d+: tls.filterService: required field is missing.*"), message);
    }

    @Test
    void givenATlsSectionWithARelativeFilterServiceId_whenParsed_thenItIsRefused() {
        String message = failure(VALID + TLS.replace("spiffe://meshcrypt.local/filter-service", "filter-service"));

        assertTrue(message.contains("tls.filterService: must be an absolute URI"), message);
    }

    /** VALID with TLS to the brokers of main (lines 6-13) and a TLS-terminating listener on app-a (lines 23-25). */
    private static final String BROKER_TLS = VALID.replace("""
                  2: kafka-2.internal:9092
            """, """
                  2: kafka-2.internal:9092
                tls:
                  trustedCa: pki/brokers-ca.pem
                  certificate: /var/lib/meshcrypt/client.pem
                  privateKey: client-key.pem
                  sni:
                    2: broker-2.example.com
                  minVersion: "1.3"
            """).replace("""
                      2: 127.0.0.1:19194
              app-b:
            """, """
                      2: 127.0.0.1:19194
                    tls:
                      certificate: listener.pem
                      privateKey: listener-key.pem
              app-b:
            """);

    @Test
    void givenTlsToTheBrokers_whenParsed_thenPathsResolveAgainstTheFileAndSniAndVersionAreRead() throws Exception {
        Mesh mesh = parse(BROKER_TLS);

        Mesh.BrokerTls tls = mesh.kafkaClusters().get("main").tls().orElseThrow();
        assertEquals(Path.of("/etc/meshcrypt/pki/brokers-ca.pem"), tls.trustedCa());
        assertEquals(Optional.of(new Mesh.CertificateFiles(Path.of("/var/lib/meshcrypt/client.pem"), Path.of("/etc/meshcrypt/client-key.pem"))),
                tls.clientCertificate());
        assertEquals(Map.of(2, "broker-2.example.com"), tls.sni());
        assertEquals(Mesh.TlsVersion.TLS_1_3, tls.minVersion());
        assertEquals(Optional.of(new Mesh.CertificateFiles(Path.of("/etc/meshcrypt/listener.pem"), Path.of("/etc/meshcrypt/listener-key.pem"))),
                mesh.sidecars().get("app-a").kafka().get("main").tls());
        assertEquals(Optional.empty(), mesh.sidecars().get("app-b").kafka().get("main").tls(), "TLS towards clients is per listener set");
    }

    @Test
    void givenOnlyATrustedCa_whenParsed_thenNoClientCertificateNoSniAndTls12() throws Exception {
        Mesh mesh = parse(VALID.replace("      2: kafka-2.internal:9092\n", "      2: kafka-2.internal:9092\n    tls: {trustedCa: /ca.pem}\n"));

        assertEquals(new Mesh.BrokerTls(Path.of("/ca.pem"), Optional.empty(), Map.of(), Mesh.TlsVersion.TLS_1_2),
                mesh.kafkaClusters().get("main").tls().orElseThrow());
        assertEquals(Optional.empty(), parse(VALID).kafkaClusters().get("main").tls());
    }

    @Test
    void givenAnUnquotedMinVersion_whenParsed_thenItMeansTheSame() throws Exception {
        Mesh mesh = parse(BROKER_TLS.replace("minVersion: \"1.3\"", "minVersion: 1.3"));

        assertEquals(Mesh.TlsVersion.TLS_1_3, mesh.kafkaClusters().get("main").tls().orElseThrow().minVersion());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "unknown cluster key | tls:\\n      trustedCa|tsl:\\n      trustedCa"
                    + " | 7:5: kafkaClusters.main.tsl: unknown field (expected one of brokers, tls)",
            "unknown broker TLS key | minVersion: \"1.3\"|maxVersion: \"1.3\""
                    + " | 13:7: kafkaClusters.main.tls.maxVersion: unknown field (expected one of trustedCa, certificate, privateKey, sni, minVersion)",
            "trustedCa missing | trustedCa: pki/brokers-ca.pem\\n      certificate|certificate"
                    + " | 8:7: kafkaClusters.main.tls.trustedCa: required field is missing (PEM bundle the broker certificates must chain to)",
            "certificate without privateKey | privateKey: client-key.pem\\n      sni|sni"
                    + " | 8:7: kafkaClusters.main.tls.privateKey: required field is missing (PEM private key file, owner-only (0600);"
                    + " certificate and privateKey go together)",
            "privateKey without certificate | certificate: /var/lib/meshcrypt/client.pem\\n      privateKey|privateKey"
                    + " | 8:7: kafkaClusters.main.tls.certificate: required field is missing (PEM certificate chain file;"
                    + " certificate and privateKey go together)",
            "sni for a broker the cluster lacks | 2: broker-2.example.com|3: broker-3.example.com"
                    + " | 12:9: kafkaClusters.main.tls.sni.3: broker 3 is not in kafkaClusters.main.brokers",
            "sni an IP address | 2: broker-2.example.com|2: 10.0.0.2"
                    + " | 12:9: kafkaClusters.main.tls.sni.2: must be a DNS host name (got \"10.0.0.2\")",
            "sni not a host name | 2: broker-2.example.com|2: broker_2/x"
                    + " | 12:9: kafkaClusters.main.tls.sni.2: must be a DNS host name (got \"broker_2/x\")",
            "sni not a node id | 2: broker-2.example.com|two: broker-2.example.com"
                    + " | 12:9: kafkaClusters.main.tls.sni.two: broker node id must be a non-negative integer (got \"two\")",
            "bad minVersion | minVersion: \"1.3\"|minVersion: \"1.1\""
                    + " | 13:7: kafkaClusters.main.tls.minVersion: must be \"1.2\" or \"1.3\" (got \"1.1\")",
            "minVersion as TLSv1_3 | minVersion: \"1.3\"|minVersion: TLSv1_3"
                    + " | 13:7: kafkaClusters.main.tls.minVersion: must be \"1.2\" or \"1.3\" (got \"TLSv1_3\")",
            "unknown listener TLS key | privateKey: listener-key.pem|privateKey: listener-key.pem\\n          trustedCa: ca.pem"
                    + " | 25:11: sidecars.app-a.kafka.main.tls.trustedCa: unknown field (expected one of certificate, privateKey)",
            "listener TLS without privateKey | \\n          privateKey: listener-key.pem|''"
                    + " | 23:11: sidecars.app-a.kafka.main.tls.privateKey: required field is missing (PEM private key file, owner-only (0600))",
            "listener TLS empty | tls:\\n          certificate: listener.pem\\n          privateKey: listener-key.pem|tls:"
                    + " | 22:13: sidecars.app-a.kafka.main.tls: must be a mapping (got \"\")",
    })
    void givenTlsWithAnError_whenParsed_thenTheMessageNamesFileLineColumnAndField(String what, String from, String to, String expected) {
        assertFailure(BROKER_TLS, what, from, to, expected);
    }
}
