package io.meshcrypt.e2e.tls;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.e2e.support.Envelope;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.e2e.tls.TlsBrokerMesh.Route;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.SaslConfigs;
import org.apache.kafka.common.config.SslConfigs;
import org.apache.kafka.common.errors.SaslAuthenticationException;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Issue 18 end to end: a Kafka broker that accepts only TLS (SSL, and SASL_SSL with SCRAM-SHA-512), reached through the
 * mesh whose Kafka clusters declare {@code tls:}. kcat, the Java client and confluent-kafka-python keep PLAINTEXT or
 * SASL_PLAINTEXT towards their sidecar (or SASL_SSL to a listener that terminates TLS); the sidecar originates TLS to
 * the broker, verifies its certificate against the cluster's CA and name, and passes SASL byte for byte.
 */
class TlsBrokersTest {
    /** The broker's own error texts for a bad password: clients must get them as the broker sent them. */
    private static final String BAD_SCRAM_CREDENTIALS = "Authentication failed during authentication due to invalid"
            + " credentials with SASL mechanism " + SecureBroker.MECHANISM;
    private static final String BAD_PLAIN_CREDENTIALS = "Authentication failed: Invalid username or password";
    /**
     * Why kcat uses PLAIN: the system's kcat (Debian's, librdkafka 2.0.2) fails SCRAM against any Kafka 4 broker,
     * directly too (librdkafka before 2.6.1 sends a wrong nonce, confluentinc/librdkafka#4895); confluent-kafka-python
     * (a current librdkafka) runs SCRAM. It also turns SASL on only when ApiVersions offers SaslHandshake v0, which the
     * filter-service therefore offers (and refuses as a request: librdkafka then sends v1).
     */
    private static final String KCAT_MECHANISM = "PLAIN";
    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    private static TlsBrokerMesh mesh;
    private static Admin direct;

    @BeforeAll
    static void up() throws Exception {
        mesh = new TlsBrokerMesh();
        direct = Admin.create(mesh.broker().directProperties());
    }

    @AfterAll
    static void down() throws Exception {
        if (direct != null) {
            direct.close(Duration.ofSeconds(5));
        }
        if (mesh != null) {
            mesh.close();
        }
    }

    // ---- SASL_SSL broker, SASL_PLAINTEXT to the sidecar

    @Test
    void givenScramBroker_whenJavaClientsUseSaslPlaintextToTheSidecar_thenEnvelopesAtRestAndPlaintextBack() throws Exception {
        String topic = topic("java-scram");
        List<String> values = values(topic, 10);
        produce(sidecar(Route.SCRAM, "SASL_PLAINTEXT", mesh.password()), topic, values);

        assertEnvelopesAtRest(topic, values);
        assertEquals(values, read(sidecar(Route.SCRAM, "SASL_PLAINTEXT", mesh.password()), topic));
    }

    @Test
    void givenPlainMechanism_whenKcatUsesSaslPlaintextToTheSidecar_thenEnvelopesAtRestAndPlaintextBack() throws Exception {
        assertKcatRoundTrip("kcat-plain", Route.SCRAM, kcatSettings("sasl_plaintext", mesh.password()));
    }

    @Test
    void givenScramBroker_whenConfluentKafkaPythonUsesSaslPlaintextToTheSidecar_thenEnvelopesAtRestAndPlaintextBack()
            throws Exception {
        assertPythonRoundTrip("python-scram", librdkafka(Route.SCRAM, "SASL_PLAINTEXT", mesh.password()));
    }

    // ---- SSL broker without SASL, PLAINTEXT to the sidecar

    @Test
    void givenSslBrokerWithoutSasl_whenAPlaintextClientUsesTheSidecar_thenEnvelopesAtRestAndPlaintextBack() throws Exception {
        String topic = topic("java-ssl");
        List<String> values = values(topic, 10);
        Map<String, Object> plaintext = Map.of(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + Route.SSL.bootstrap());
        produce(plaintext, topic, values);

        assertEnvelopesAtRest(topic, values);
        assertEquals(values, read(plaintext, topic));
    }

    @Test
    void givenSslBrokerWithoutSasl_whenKcatUsesPlaintextToTheSidecar_thenEnvelopesAtRestAndPlaintextBack() throws Exception {
        assertKcatRoundTrip("kcat-ssl", Route.SSL, Map.of("security.protocol", "plaintext"));
    }

    // ---- wrong password

    @Test
    void givenWrongPassword_whenJavaAndPythonClientsConnectThroughTheSidecar_thenEachGetsTheBrokersAuthenticationError()
            throws Exception {
        String wrong = mesh.password() + "-wrong";
        try (KafkaProducer<byte[], byte[]> producer = producer(sidecar(Route.SCRAM, "SASL_PLAINTEXT", wrong))) {
            SaslAuthenticationException e = assertThrows(SaslAuthenticationException.class,
                    () -> producer.partitionsFor(topic("wrong-password")));
            assertTrue(e.getMessage().contains(BAD_SCRAM_CREDENTIALS), e.getMessage());
        }

        String python = Clients.python(mesh.home()).metadataErrors(librdkafka(Route.SCRAM, "SASL_PLAINTEXT", wrong));
        assertTrue(python.contains("SASL authentication error: " + BAD_SCRAM_CREDENTIALS), python);
    }

    @Test
    void givenWrongPassword_whenKcatConnectsThroughTheSidecar_thenItGetsTheBrokersAuthenticationError() throws Exception {
        Clients.Result kcat = Clients.kcat(mesh.home(), Route.SCRAM.bootstrap(),
                kcatSettings("sasl_plaintext", mesh.password() + "-wrong")).metadata();

        assertNotEquals(0, kcat.exit(), "kcat -L with a wrong password must fail");
        assertTrue(kcat.output().contains("SASL authentication error: " + BAD_PLAIN_CREDENTIALS), kcat.output());
    }

    // ---- the sidecar verifies the broker's certificate

    @Test
    void givenBrokerCertificateFromAForeignCa_whenAClientProducesThroughTheSidecar_thenRefusedAndNothingCrossesInPlaintext()
            throws Exception {
        assertRefused(Route.FOREIGN, mesh.foreignRelay(), "ssl.fail_verify_error");
    }

    @Test
    void givenBrokerCertificateForAnotherName_whenAClientProducesThroughTheSidecar_thenRefusedAndNothingCrossesInPlaintext()
            throws Exception {
        assertRefused(Route.WRONG_NAME, mesh.wrongNameRelay(), "ssl.fail_verify_san");
    }

    /**
     * A client of {@code route} gets no metadata, the broker stores nothing, every connection the sidecar opened towards
     * the broker started with a TLS handshake record and carried none of the client's Kafka bytes, and the sidecar
     * counted the certificate failure {@code failureStat}.
     */
    private static void assertRefused(Route route, RecordingRelay relay, String failureStat) throws Exception {
        String topic = topic("refused-" + route.cluster);
        String clientId = "refused-client-" + route.cluster;
        Map<String, Object> settings = Map.of(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + route.bootstrap(),
                CommonClientConfigs.CLIENT_ID_CONFIG, clientId, ProducerConfig.MAX_BLOCK_MS_CONFIG, 5_000);
        try (KafkaProducer<byte[], byte[]> producer = producer(settings)) {
            ExecutionException e = assertThrows(ExecutionException.class, () -> producer.send(
                    new ProducerRecord<>(topic, utf8("must never reach the broker"))).get(TIMEOUT.toSeconds(), TimeUnit.SECONDS));
            assertInstanceOf(TimeoutException.class, e.getCause(), "no metadata through the sidecar");
        }

        assertEquals(List.of(), readDirect(topic), "records at rest");
        List<byte[]> sent = relay.sentTowardsBroker();
        assertFalse(sent.isEmpty(), "the sidecar tried the broker");
        for (byte[] connection : sent) {
            if (connection.length > 0) {
                assertEquals(0x16, connection[0], "a TLS handshake record first, not a Kafka request: "
                        + Envelope.preview(connection));
            }
            assertTrue(Envelope.indexOf(connection, utf8(clientId)) < 0, "the client's Kafka request crossed in plaintext");
        }
        assertTrue(mesh.envoyCounter(route, failureStat) > 0, "the sidecar counted " + failureStat);
    }

    // ---- a sidecar listener that terminates TLS: SASL_SSL from the application

    @Test
    void givenTlsTerminatingSidecarListener_whenJavaClientsUseSaslSsl_thenEnvelopesAtRestPlaintextBackAndWrongPasswordRefused()
            throws Exception {
        String topic = topic("java-scram-tls");
        List<String> values = values(topic, 10);
        produce(sidecarTls(mesh.password()), topic, values);

        assertEnvelopesAtRest(topic, values);
        assertEquals(values, read(sidecarTls(mesh.password()), topic));
        try (KafkaProducer<byte[], byte[]> producer = producer(sidecarTls(mesh.password() + "-wrong"))) {
            SaslAuthenticationException e = assertThrows(SaslAuthenticationException.class, () -> producer.partitionsFor(topic));
            assertTrue(e.getMessage().contains(BAD_SCRAM_CREDENTIALS), e.getMessage());
        }
    }

    @Test
    void givenTlsTerminatingSidecarListener_whenConfluentKafkaPythonUsesSaslSsl_thenEnvelopesAtRestAndPlaintextBack()
            throws Exception {
        Map<String, String> settings = librdkafka(Route.SCRAM_TLS, "SASL_SSL", mesh.password());
        settings.put("ssl.ca.location", mesh.listenerCa().toString());
        assertPythonRoundTrip("python-scram-tls", settings);
    }

    @Test
    void givenTlsTerminatingSidecarListener_whenKcatUsesSaslSsl_thenEnvelopesAtRestAndPlaintextBack() throws Exception {
        Map<String, String> settings = new HashMap<>(kcatSettings("sasl_ssl", mesh.password()));
        settings.put("ssl.ca.location", mesh.listenerCa().toString());
        assertKcatRoundTrip("kcat-plain-tls", Route.SCRAM_TLS, settings);
    }

    // ---- KIP-368 re-authentication under traffic

    @Test
    void givenShortReauthentication_whenProducerAndConsumerRunForThreePeriods_thenNoErrorNoLossAndSessionsReauthenticated()
            throws Exception {
        String topic = topic("reauth");
        Map<String, Object> settings = sidecar(Route.SCRAM, "SASL_PLAINTEXT", mesh.password());
        List<String> sent = new CopyOnWriteArrayList<>();
        List<String> received = new CopyOnWriteArrayList<>();
        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<Throwable> consumerFailure = new AtomicReference<>();
        double consumerReauths;
        double producerReauths;
        try (KafkaProducer<byte[], byte[]> producer = producer(settings);
             KafkaConsumer<byte[], byte[]> consumer = consumer(settings)) {
            Thread reader = Thread.ofPlatform().start(() -> {
                try {
                    TopicPartition tp = new TopicPartition(topic, 0);
                    consumer.assign(List.of(tp));
                    consumer.seekToBeginning(List.of(tp));
                    while (!stop.get() || received.size() < sent.size()) {
                        consumer.poll(Duration.ofMillis(200)).forEach(r -> received.add(new String(r.value(), StandardCharsets.UTF_8)));
                    }
                } catch (Throwable t) {
                    consumerFailure.set(t);
                }
            });
            long end = System.nanoTime() + SecureBroker.REAUTH.multipliedBy(3).toNanos();
            for (int i = 0; System.nanoTime() < end; i++) {
                String value = "record " + i + " of " + topic;
                producer.send(new ProducerRecord<>(topic, utf8(value))).get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
                sent.add(value);
                Thread.sleep(50);
            }
            stop.set(true);
            reader.join(TIMEOUT.toMillis());
            assertFalse(reader.isAlive(), "the consumer read " + received.size() + " of " + sent.size());
            producerReauths = metric(producer.metrics(), "successful-reauthentication-total");
            consumerReauths = metric(consumer.metrics(), "successful-reauthentication-total");
            assertEquals(0.0, metric(producer.metrics(), "failed-reauthentication-total"), "producer re-authentication failures");
            assertEquals(0.0, metric(consumer.metrics(), "failed-reauthentication-total"), "consumer re-authentication failures");
        }
        assertNull(consumerFailure.get(), "the consumer failed");
        assertEquals(sent, received, "every record, in order, once");
        assertTrue(producerReauths >= 2, "the producer re-authenticated through the sidecar: " + producerReauths);
        assertTrue(consumerReauths >= 2, "the consumer re-authenticated through the sidecar: " + consumerReauths);
    }

    // ---- helpers

    /** Java client settings towards {@code route}'s sidecar listener as {@link SecureBroker#USER}. */
    private static Map<String, Object> sidecar(Route route, String protocol, String password) {
        return Map.of(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + route.bootstrap(),
                CommonClientConfigs.SECURITY_PROTOCOL_CONFIG, protocol,
                SaslConfigs.SASL_MECHANISM, SecureBroker.MECHANISM,
                SaslConfigs.SASL_JAAS_CONFIG, SecureBroker.jaas(SecureBroker.USER, password));
    }

    /** SASL_SSL to the TLS-terminating listener, trusting its CA (host name verification on, for 127.0.0.1). */
    private static Map<String, Object> sidecarTls(String password) {
        Map<String, Object> settings = new HashMap<>(sidecar(Route.SCRAM_TLS, "SASL_SSL", password));
        settings.put(SslConfigs.SSL_TRUSTSTORE_TYPE_CONFIG, "PEM");
        settings.put(SslConfigs.SSL_TRUSTSTORE_LOCATION_CONFIG, mesh.listenerCa().toString());
        return settings;
    }

    /** kcat produces to a new topic through {@code route} and reads it back: envelopes at rest, plaintext back. */
    private static void assertKcatRoundTrip(String prefix, Route route, Map<String, String> settings) throws Exception {
        String topic = topic(prefix);
        List<String> values = values(topic, 5);
        Clients.Kcat kcat = Clients.kcat(mesh.home(), route.bootstrap(), settings);
        kcat.produce(topic, values);

        assertEnvelopesAtRest(topic, values);
        assertEquals(values, kcat.consume(topic, values.size()));
    }

    /** confluent-kafka-python produces to a new topic and reads it back: envelopes at rest, plaintext back. */
    private static void assertPythonRoundTrip(String prefix, Map<String, String> settings) throws Exception {
        String topic = topic(prefix);
        List<String> values = values(topic, 5);

        List<String> back = Clients.python(mesh.home()).roundTrip(settings, topic, values);

        assertEnvelopesAtRest(topic, values);
        assertEquals(values, back);
    }

    /** kcat as {@link SecureBroker#USER} with {@link #KCAT_MECHANISM} (see there for why not SCRAM). */
    private static Map<String, String> kcatSettings(String protocol, String password) {
        return Map.of("security.protocol", protocol, "sasl.mechanisms", KCAT_MECHANISM,
                "sasl.username", SecureBroker.USER, "sasl.password", password);
    }

    /** librdkafka settings (confluent-kafka-python) towards {@code route} as {@link SecureBroker#USER} with SCRAM. */
    private static Map<String, String> librdkafka(Route route, String protocol, String password) {
        return new HashMap<>(Map.of("bootstrap.servers", "127.0.0.1:" + route.bootstrap(), "security.protocol", protocol,
                "sasl.mechanisms", SecureBroker.MECHANISM, "sasl.username", SecureBroker.USER, "sasl.password", password));
    }

    private static String topic(String prefix) throws Exception {
        byte[] suffix = new byte[4];
        ThreadLocalRandom.current().nextBytes(suffix);
        String name = prefix + "-" + HexFormat.of().formatHex(suffix);
        direct.createTopics(List.of(new NewTopic(name, 1, (short) 1))).all().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        return name;
    }

    private static List<String> values(String topic, int n) {
        List<String> values = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            values.add("secret " + i + " of " + topic);
        }
        return values;
    }

    private static void produce(Map<String, Object> settings, String topic, List<String> values) throws Exception {
        try (KafkaProducer<byte[], byte[]> producer = producer(settings)) {
            for (String v : values) {
                producer.send(new ProducerRecord<>(topic, utf8(v))).get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            }
        }
    }

    private static void assertEnvelopesAtRest(String topic, List<String> values) {
        List<byte[]> atRest = readDirect(topic);
        assertEquals(values.size(), atRest.size(), "records at rest in " + topic);
        for (int i = 0; i < values.size(); i++) {
            Envelope.assertEnvelopeOf(utf8(values.get(i)), atRest.get(i), topic + " record " + i);
        }
    }

    /** Every value of {@code topic} as the broker stores it, read over its own SASL_SSL listener. */
    private static List<byte[]> readDirect(String topic) {
        try (KafkaConsumer<byte[], byte[]> consumer = consumer(mesh.broker().direct())) {
            return LocalMesh.drain(consumer, topic).stream().map(ConsumerRecord::value).toList();
        }
    }

    private static List<String> read(Map<String, Object> settings, String topic) {
        try (KafkaConsumer<byte[], byte[]> consumer = consumer(settings)) {
            return LocalMesh.drain(consumer, topic).stream().map(r -> new String(r.value(), StandardCharsets.UTF_8)).toList();
        }
    }

    private static KafkaProducer<byte[], byte[]> producer(Map<String, Object> settings) {
        Map<String, Object> p = new HashMap<>(Map.of(ProducerConfig.ACKS_CONFIG, "all",
                ProducerConfig.MAX_BLOCK_MS_CONFIG, 15_000, ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30_000,
                ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000, ProducerConfig.LINGER_MS_CONFIG, 0));
        p.putAll(settings);
        return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }

    private static KafkaConsumer<byte[], byte[]> consumer(Map<String, Object> settings) {
        Map<String, Object> c = new HashMap<>(Map.of(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false,
                ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 100, ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000,
                ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) TIMEOUT.toMillis()));
        c.putAll(settings);
        return new KafkaConsumer<>(c, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    /** A client-wide metric (the selector's, over all its connections), e.g. successful-reauthentication-total. */
    private static double metric(Map<MetricName, ? extends Metric> metrics, String name) {
        return metrics.entrySet().stream()
                .filter(e -> e.getKey().name().equals(name) && List.of("producer-metrics", "consumer-metrics").contains(e.getKey().group()))
                .mapToDouble(e -> ((Number) e.getValue().metricValue()).doubleValue()).sum();
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
