package io.meshcrypt.e2e.bridge;

import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.launcher.PortPlan;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * A mesh of its own started with {@code ./meshcrypt up --bridge}, by default with mutual TLS (the default local mesh:
 * the bridge dials the filter-service over TLS with the sidecar's certificate), {@value #OFFSET} ports below the e2e
 * port base, in tests/target/bridge-mesh; its clients and raw access.
 */
final class BridgeMesh {

    static final int OFFSET = 12000;
    private static final Duration LAUNCHER_TIMEOUT = Duration.ofMinutes(10);

    final PortPlan ports = LocalMesh.portsBelow(OFFSET);
    final Path root = LocalMesh.projectRoot();
    final Path home = root.resolve("tests/target/bridge-mesh");
    private final Path launcherLog = root.resolve("tests/target/bridge-mesh-launcher.log");
    private final boolean tls;

    /** With mutual TLS, whatever MESHCRYPT_TLS says. */
    BridgeMesh() {
        this(true);
    }

    private BridgeMesh(boolean tls) {
        this.tls = tls;
    }

    /** Without TLS: for a test whose own sidecar dials the filter-service with an {@code http://} bridge config. */
    static BridgeMesh plaintext() {
        return new BridgeMesh(false);
    }

    /** ./meshcrypt with this mesh's state dir, ports and TLS choice; its exit code. */
    int launcher(String... args) {
        return LocalMesh.runLauncher(root, home, ports.base(), Map.of("MESHCRYPT_TLS", tls ? "on" : "off", "MESHCRYPT_TIMEOUT", "180"),
                launcherLog, LAUNCHER_TIMEOUT, args);
    }

    /**
     * {@code ./meshcrypt start filter-service}, once more if a port of the mesh was taken meanwhile: the mesh's ports
     * lie in Linux's ephemeral range, where any client's outgoing connection may hold one for a moment.
     */
    int startFilterService() throws IOException, InterruptedException {
        int rc = launcher("start", "filter-service");
        if (rc != 0 && launcherLogTail().contains("Address already in use")) {
            Thread.sleep(2_000);
            rc = launcher("start", "filter-service");
        }
        return rc;
    }

    String launcherLogTail() throws IOException {
        List<String> lines = Files.readAllLines(launcherLog);
        return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
    }

    String envoyBootstrap() {
        return "127.0.0.1:" + ports.envoyBootstrap();
    }

    String brokerDirect() {
        return "127.0.0.1:" + ports.broker();
    }

    String log(String component) throws IOException {
        return Files.readString(home.resolve("logs/" + component + ".log"));
    }

    /** The mesh's certificates ({@code $MESHCRYPT_HOME/pki}). */
    Path pki() {
        return home.resolve("pki");
    }

    long pid(String component) throws IOException {
        return Long.parseLong(Files.readString(home.resolve("pids/" + component + ".pid")).strip());
    }

    /** Envoy's admin {@code path}, e.g. /config_dump. */
    String envoyAdmin(String path) throws IOException, InterruptedException {
        HttpResponse<String> r = HttpClient.newHttpClient().send(
                HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + ports.envoyAdmin() + path)).build(),
                HttpResponse.BodyHandlers.ofString());
        return r.body();
    }

    /** A new topic {@code prefix-<random>}: the broker's data outlives a run. */
    String createTopic(String prefix) throws Exception {
        String name = prefix + "-" + Long.toHexString(ThreadLocalRandom.current().nextLong());
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, brokerDirect());
        try (Admin admin = Admin.create(p)) {
            admin.createTopics(List.of(new NewTopic(name, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
        }
        return name;
    }

    KafkaProducer<byte[], byte[]> producerThroughEnvoy(Duration deliveryTimeout) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, envoyBootstrap());
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, (int) Math.min(deliveryTimeout.toMillis(), 10_000));
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, (int) deliveryTimeout.toMillis());
        p.put(ProducerConfig.LINGER_MS_CONFIG, 0);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, (int) deliveryTimeout.toMillis());
        return new KafkaProducer<>(p);
    }

    /** Every record of {@code topic} read from offset 0 up to its end offset, through Envoy or from the broker. */
    List<ConsumerRecord<byte[], byte[]>> read(String topic, boolean throughEnvoy) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, throughEnvoy ? envoyBootstrap() : brokerDirect());
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            return LocalMesh.drain(consumer, topic);
        }
    }
}
