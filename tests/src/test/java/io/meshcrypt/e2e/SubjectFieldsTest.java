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
import io.meshcrypt.e2e.support.StaticHttpSidecar;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
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
 * static Envoy of the test's own ({@link StaticHttpSidecar}) in front of a JDK HTTP server that stores what it is sent
 * and serves it back; it streams to the shared filter-service, whose one subject-key store serves both paths.
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
     * behind an HTTP sidecar of the test's own.
     */
    private record CardService(StaticHttpSidecar sidecar, HttpServer app, Map<String, String> stored)
            implements AutoCloseable {
        static CardService start(LocalMesh mesh) throws IOException {
            Map<String, String> stored = new ConcurrentHashMap<>();
            HttpServer app = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
            app.createContext("/", exchange -> {
                try (exchange) {
                    String path = exchange.getRequestURI().getPath();
                    if (exchange.getRequestMethod().equals("POST")) {
                        stored.put(path, new String(exchange.getRequestBody().readAllBytes(), StandardCharsets.UTF_8));
                    }
                    String body = stored.get(path);
                    if (body == null) {
                        exchange.sendResponseHeaders(404, -1);
                        return;
                    }
                    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
                    exchange.getResponseHeaders().set("content-type", "application/json");
                    exchange.sendResponseHeaders(200, bytes.length);
                    exchange.getResponseBody().write(bytes);
                }
            });
            app.start();
            try {
                return new CardService(StaticHttpSidecar.start(mesh, "subject-cards", app.getAddress().getPort()), app,
                        stored);
            } catch (IOException | RuntimeException e) {
                app.stop(0);
                throw e;
            }
        }

        private URI uri(String customer) {
            return URI.create("http://127.0.0.1:" + sidecar.listenerPort() + LocalMesh.SUBJECT_CARDS_PATH + "/"
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
                sidecar.close();
            } finally {
                app.stop(0);
            }
        }
    }
}
