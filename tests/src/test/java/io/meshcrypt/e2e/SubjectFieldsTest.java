package io.meshcrypt.e2e;

import static io.meshcrypt.e2e.support.Records.text;
import static io.meshcrypt.e2e.support.Records.utf8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import io.meshcrypt.e2e.support.Await;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.e2e.support.MeshExtension;
import io.meshcrypt.e2e.support.StaticSidecar;
import io.meshcrypt.pki.LocalCa;
import io.meshcrypt.testsupport.EnvoyProcess;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * One person's card number in an HTTP body and in a Kafka record field, under one subject scope (the shared mesh's
 * {@code subject-fields-*} entry and {@code /subject-cards} HTTP rule, both {@code scope: customers}): one
 * {@code ./meshcrypt forget --scope customers} and both read as forgotten through the mesh (the HTTP rule's placeholder,
 * the Kafka entry's null), the rest of each document and another person's card untouched. The HTTP sidecar is a
 * static Envoy of the test's own in front of a JDK HTTP server that stores what it is sent and serves it back; its
 * HTTP ext_proc filter streams to the shared filter-service, whose one subject-key store serves both paths.
 */
@ExtendWith(MeshExtension.class)
class SubjectFieldsTest {
    private static final String CARD = "4111111111111111";
    private static final Duration FORGET_SEEN = Duration.ofSeconds(60);
    private static final Duration TIMEOUT = Duration.ofSeconds(30);
    private static final HttpClient HTTP = HttpClient.newHttpClient();

    private final LocalMesh mesh;

    SubjectFieldsTest(LocalMesh mesh) {
        this.mesh = mesh;
    }

    private static String card(String customer) {
        return "{\"customer\":{\"id\":\"" + customer + "\"},\"card\":{\"number\":\"" + CARD + "\"},\"total\":12}";
    }

    private static String cardReading(String customer, String number) {
        return "{\"customer\":{\"id\":\"" + customer + "\"},\"card\":{\"number\":" + number + "},\"total\":12}";
    }

    @Test
    void givenACardInAnHttpBodyAndInAKafkaRecordOfOneSubjectAndScope_whenTheSubjectIsForgottenOnce_thenBothReadAsForgotten()
            throws Exception {
        // Unique per run: the shared mesh's key topic outlives a run, and a forgotten subject stays forgotten.
        String topic = mesh.createTopic(LocalMesh.SUBJECT_FIELDS_TOPIC_PREFIX + "cards", 1);
        String alice = topic + "/alice";
        String bob = topic + "/bob";
        try (CardService http = CardService.start(mesh)) {
            // Given the card of each, sent in an HTTP body through Envoy (the service stores what it receives) ...
            for (String customer : List.of(alice, bob)) {
                assertEquals(card(customer), http.post(customer, card(customer)), "the echo through the rule: plaintext");
            }
            for (String stored : http.stored.values()) {
                assertFalse(stored.contains(CARD), "the service stores the card encrypted: " + stored);
                assertTrue(stored.contains("\"total\":12"), "and the rest as sent: " + stored);
            }
            // ... and in a Kafka record field, produced through Envoy
            try (KafkaProducer<byte[], byte[]> producer = mesh.producerThroughEnvoy(Map.of())) {
                for (String customer : List.of(alice, bob)) {
                    producer.send(new ProducerRecord<>(topic, utf8(customer), utf8(card(customer))))
                            .get(LocalMesh.CLIENT_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
                }
            }
            for (ConsumerRecord<byte[], byte[]> r : mesh.readDirect(topic)) {
                assertFalse(text(r.value()).contains(CARD), "at rest: " + text(r.value()));
            }
            assertEquals(List.of(card(alice), card(bob)), kafkaValues(topic), "before the forget, through Envoy");

            // When one of them is forgotten, once, by scope
            int rc = LocalMesh.runLauncher(mesh.root(), mesh.home(), LocalMesh.PORT_BASE, Map.of(),
                    mesh.logs().resolve("subject-fields-forget.log"), TIMEOUT.multipliedBy(4),
                    "forget", "--scope", LocalMesh.SUBJECT_SCOPE, "--subject", alice);
            assertEquals(0, rc, "./meshcrypt forget --scope; see " + mesh.logs().resolve("subject-fields-forget.log"));

            // Then their card reads as forgotten on both paths, the rest of each document and the other card as they were
            List<String> expectedKafka = List.of(cardReading(alice, "null"), card(bob));
            Await.until(FORGET_SEEN, () -> expectedKafka.equals(kafkaValues(topic)),
                    () -> "Kafka through Envoy: " + kafkaValues(topic));
            assertEquals(cardReading(alice, "\"" + LocalMesh.SUBJECT_FORGOTTEN_PLACEHOLDER + "\""), http.get(alice),
                    "HTTP through Envoy");
            assertEquals(card(bob), http.get(bob), "another subject: untouched");
        }
    }

    private List<String> kafkaValues(String topic) {
        List<String> values = new ArrayList<>();
        for (ConsumerRecord<byte[], byte[]> r : mesh.readThroughEnvoy(topic, Map.of())) {
            values.add(text(r.value()));
        }
        return values;
    }

    /**
     * A JDK HTTP server that stores each POSTed body under its path and answers with it, and serves it back on GET,
     * behind a static Envoy whose HTTP ext_proc filter streams to the shared filter-service (mutual TLS when the mesh
     * runs it).
     */
    private record CardService(EnvoyProcess envoy, HttpServer app, Map<String, String> stored, int listenerPort)
            implements AutoCloseable {
        static CardService start(LocalMesh mesh) throws IOException {
            Path dir = mesh.root().resolve("tests/target/subject-fields");
            Files.createDirectories(dir);
            Map<String, String> stored = new ConcurrentHashMap<>();
            HttpServer app = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
            app.createContext("/", exchange -> {
                try (exchange) {
                    String path = exchange.getRequestURI().getPath();
                    if (exchange.getRequestMethod().equals("POST")) {
                        stored.put(path, new String(exchange.getRequestBody().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8));
                    }
                    String body = stored.get(path);
                    if (body == null) {
                        exchange.sendResponseHeaders(404, -1);
                        return;
                    }
                    byte[] bytes = body.getBytes(java.nio.charset.StandardCharsets.UTF_8);
                    exchange.getResponseHeaders().set("content-type", "application/json");
                    exchange.sendResponseHeaders(200, bytes.length);
                    exchange.getResponseBody().write(bytes);
                }
            });
            app.start();
            int[] ports = StaticSidecar.freePorts(2);
            Path config = dir.resolve("envoy.yaml");
            try {
                Files.writeString(config, config(mesh, dir, ports[0], ports[1], app.getAddress().getPort()));
                EnvoyProcess envoy = EnvoyProcess.start(config, ports[1], dir.resolve("envoy.log"),
                        "--concurrency", "1", "--log-level", "warn");
                return new CardService(envoy, app, stored, ports[0]);
            } catch (IOException | RuntimeException e) {
                app.stop(0);
                throw e;
            }
        }

        /** The listener: every request through HTTP ext_proc (bodies buffered) to the app. */
        private static String config(LocalMesh mesh, Path dir, int listener, int admin, int appPort) {
            StringBuilder y = new StringBuilder();
            y.append("""
                    admin: { address: { socket_address: { address: 127.0.0.1, port_value: %d } } }
                    static_resources:
                      listeners:
                      - name: cards
                        address: { socket_address: { address: 127.0.0.1, port_value: %d } }
                        filter_chains:
                        - filters:
                          - name: envoy.filters.network.http_connection_manager
                            typed_config:
                              "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                              stat_prefix: cards
                              route_config: { virtual_hosts: [{ name: app, domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster: app } }] }] }
                              http_filters:
                              - name: envoy.filters.http.ext_proc
                                typed_config:
                                  "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
                                  grpc_service: { envoy_grpc: { cluster_name: filter_service }, timeout: 10s }
                                  failure_mode_allow: false
                                  allow_mode_override: true
                                  message_timeout: 10s
                                  processing_mode: { request_header_mode: SEND, request_body_mode: BUFFERED, request_trailer_mode: SKIP,
                                                     response_header_mode: SEND, response_body_mode: BUFFERED, response_trailer_mode: SKIP }
                              - name: envoy.filters.http.router
                                typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
                      clusters:
                    """.formatted(admin, listener));
            StaticSidecar.filterServiceCluster(y, mesh.filterGrpcPort(), LocalMesh.TLS ? tls(mesh, dir) : "");
            StaticSidecar.cluster(y, "app", "127.0.0.1", appPort);
            return y.toString();
        }

        /** A sidecar certificate of the mesh CA (issued into a copy of it) for the filter_service cluster. */
        private static String tls(LocalMesh mesh, Path dir) {
            Path pki = dir.resolve("pki");
            try {
                Files.createDirectories(pki);
                for (String file : List.of(LocalCa.CA_CERTIFICATE, "ca-key.pem")) {
                    Files.copy(mesh.pki().resolve(file), pki.resolve(file), StandardCopyOption.REPLACE_EXISTING);
                }
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
            LocalCa.Issued issued = LocalCa.openOrCreate(pki).issue("sidecar-subject-fields",
                    LocalCa.spiffeId("sidecar/subject-fields"), List.of(), Duration.ofHours(1));
            return ("    transport_socket: { name: envoy.transport_sockets.tls, typed_config: { \"@type\":"
                    + " type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext,"
                    + " common_tls_context: { alpn_protocols: [h2], tls_certificates: [{ certificate_chain: { filename: \"%s\" },"
                    + " private_key: { filename: \"%s\" } }], validation_context: { trusted_ca: { filename: \"%s\" } } } } }\n")
                    .formatted(issued.certificate(), issued.privateKey(), pki.resolve(LocalCa.CA_CERTIFICATE));
        }

        private URI uri(String customer) {
            return URI.create("http://127.0.0.1:" + listenerPort + LocalMesh.SUBJECT_CARDS_PATH + "/"
                    + customer.replace('/', '-'));
        }

        /** @return the response body, which must be 200 */
        private static String ok(HttpResponse<String> response) {
            assertEquals(200, response.statusCode(), response.body());
            return response.body();
        }

        String post(String customer, String json) throws IOException, InterruptedException {
            return ok(HTTP.send(HttpRequest.newBuilder(uri(customer)).header("content-type", "application/json")
                    .timeout(TIMEOUT).POST(HttpRequest.BodyPublishers.ofString(json)).build(),
                    HttpResponse.BodyHandlers.ofString()));
        }

        String get(String customer) throws IOException, InterruptedException {
            return ok(HTTP.send(HttpRequest.newBuilder(uri(customer)).timeout(TIMEOUT).GET().build(),
                    HttpResponse.BodyHandlers.ofString()));
        }

        @Override
        public void close() {
            try {
                envoy.close();
            } finally {
                app.stop(0);
            }
        }
    }
}
