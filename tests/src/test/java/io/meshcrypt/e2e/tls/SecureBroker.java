package io.meshcrypt.e2e.tls;

import io.meshcrypt.e2e.support.Await;
import io.meshcrypt.e2e.support.HostileMesh;
import io.meshcrypt.pki.LocalCa;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.SaslConfigs;
import org.apache.kafka.common.config.SslConfigs;

/**
 * A single-node KRaft Kafka broker as production clusters run it: no plaintext listener for clients. Started as its own
 * process from the Maven-Central jars the launcher's broker uses ({@code kafka.classpath}), with
 * <ul>
 * <li>{@code SASL_SSL} on {@link #saslSslPort()}: SCRAM-SHA-512, the user {@link #USER} created by Kafka's own
 * StorageTool at format time, and PLAIN for the same user and password; re-authentication every {@link #REAUTH};</li>
 * <li>{@code SSL} on {@link #sslPort()}: TLS only;</li>
 * <li>{@code FOREIGN} (SSL) on {@link #foreignPort()}: a certificate for the same host name from a CA the mesh does
 * not trust;</li>
 * <li>the KRaft controller on a plaintext loopback listener.</li>
 * </ul>
 * Every client listener advertises {@code localhost}, the name in its certificate.
 */
final class SecureBroker implements AutoCloseable {

    static final String USER = "alice";
    static final String MECHANISM = "SCRAM-SHA-512";
    static final Duration REAUTH = Duration.ofSeconds(10);
    static final String HOST = "localhost";
    private static final Duration START_TIMEOUT = Duration.ofSeconds(90);

    private final Path dir;
    private final String password;
    private final int saslSslPort;
    private final int sslPort;
    private final int foreignPort;
    private final int controllerPort;
    private final Path caCertificate;
    private final Path foreignCaCertificate;
    private final Process process;

    /**
     * Issues the certificates (the broker's from {@code ca}, the foreign one from a CA of its own), formats the
     * storage with the SCRAM credential and starts the broker; returns once it answers on its SASL_SSL listener.
     */
    SecureBroker(Path dir, String classpath, String password, int saslSslPort, int sslPort, int foreignPort,
                 int controllerPort) throws IOException {
        this.dir = dir;
        this.password = password;
        this.saslSslPort = saslSslPort;
        this.sslPort = sslPort;
        this.foreignPort = foreignPort;
        this.controllerPort = controllerPort;
        Files.createDirectories(dir);
        LocalCa ca = LocalCa.openOrCreate(dir.resolve("ca"));
        LocalCa foreign = LocalCa.openOrCreate(dir.resolve("foreign-ca"));
        caCertificate = ca.caCertificate();
        foreignCaCertificate = foreign.caCertificate();
        Path keyStore = pemKeyStore(ca.issue("broker", LocalCa.spiffeId("kafka/broker"), List.of(HOST), Duration.ofDays(1)),
                dir.resolve("broker-keystore.pem"));
        Path foreignKeyStore = pemKeyStore(foreign.issue("broker", LocalCa.spiffeId("kafka/broker"), List.of(HOST),
                Duration.ofDays(1)), dir.resolve("foreign-keystore.pem"));
        Files.writeString(dir.resolve("server.properties"), serverProperties(keyStore, foreignKeyStore));
        Files.writeString(dir.resolve("log4j2.properties"), """
                status = warn
                appender.out.type = Console
                appender.out.name = OUT
                appender.out.layout.type = PatternLayout
                appender.out.layout.pattern = [%d] %p %m (%c)%n
                rootLogger.level = INFO
                rootLogger.appenderRef.out.ref = OUT
                logger.config.name = org.apache.kafka.common.config.AbstractConfig
                logger.config.level = WARN
                """);
        List<String> jvm = List.of(java(), "-Xms128m", "-Xmx512m",
                "-Dlog4j2.configurationFile=" + dir.resolve("log4j2.properties"), "-cp", classpath);
        // Kafka's own tool creates the SCRAM credential in the cluster metadata, as an operator of a fresh cluster does
        List<String> format = new ArrayList<>(jvm);
        format.addAll(List.of("kafka.tools.StorageTool", "format", "-t", Uuid.randomUuid().toString(),
                "-c", dir.resolve("server.properties").toString(), "--standalone",
                "--add-scram", MECHANISM + "=[name=" + USER + ",password=" + password + "]"));
        run(format, log().resolveSibling("format.log"));
        List<String> serve = new ArrayList<>(jvm);
        serve.addAll(List.of("kafka.Kafka", dir.resolve("server.properties").toString()));
        process = new ProcessBuilder(serve).directory(dir.toFile()).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log().toFile())).start();
        Runtime.getRuntime().addShutdownHook(new Thread(this::close, "tls-broker-down"));
        awaitListening();
    }

    private String serverProperties(Path keyStore, Path foreignKeyStore) {
        return """
                # written by the TLS/SASL e2e test (SecureBroker.java)
                node.id=1
                process.roles=broker,controller
                listeners=CONTROLLER://127.0.0.1:%1$d,SASL_SSL://127.0.0.1:%2$d,SSL://127.0.0.1:%3$d,FOREIGN://127.0.0.1:%4$d
                advertised.listeners=SASL_SSL://%5$s:%2$d,SSL://%5$s:%3$d,FOREIGN://%5$s:%4$d
                listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL,FOREIGN:SSL
                inter.broker.listener.name=SSL
                controller.listener.names=CONTROLLER
                controller.quorum.bootstrap.servers=127.0.0.1:%1$d
                log.dirs=%6$s
                num.partitions=1
                auto.create.topics.enable=false
                offsets.topic.replication.factor=1
                ssl.keystore.type=PEM
                ssl.keystore.location=%7$s
                ssl.truststore.type=PEM
                ssl.truststore.location=%8$s
                listener.name.foreign.ssl.keystore.type=PEM
                listener.name.foreign.ssl.keystore.location=%9$s
                sasl.enabled.mechanisms=%10$s,PLAIN
                listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
                listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_%12$s="%13$s";
                # KIP-368: every SASL session re-authenticates on its connection this often
                connections.max.reauth.ms=%11$d
                """.formatted(controllerPort, saslSslPort, sslPort, foreignPort, HOST, dir.resolve("data"), keyStore,
                caCertificate, foreignKeyStore, MECHANISM, REAUTH.toMillis(), USER, password);
    }

    /** Kafka's PEM key store: the private key and the certificate in one file. */
    private static Path pemKeyStore(LocalCa.Issued issued, Path out) throws IOException {
        Files.writeString(out, Files.readString(issued.privateKey()) + Files.readString(issued.certificate()));
        return out;
    }

    /** The CA the broker's SSL and SASL_SSL listeners' certificate chains to. */
    Path caCertificate() {
        return caCertificate;
    }

    /** The CA of the FOREIGN listener's certificate. */
    Path foreignCaCertificate() {
        return foreignCaCertificate;
    }

    int saslSslPort() {
        return saslSslPort;
    }

    int sslPort() {
        return sslPort;
    }

    int foreignPort() {
        return foreignPort;
    }

    Path log() {
        return dir.resolve("broker.log");
    }

    /** Client settings for the broker's SASL_SSL listener itself, as {@link #USER}: what is stored, unfiltered. */
    Map<String, Object> direct() {
        return Map.of(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, HOST + ":" + saslSslPort,
                CommonClientConfigs.SECURITY_PROTOCOL_CONFIG, "SASL_SSL",
                SslConfigs.SSL_TRUSTSTORE_TYPE_CONFIG, "PEM",
                SslConfigs.SSL_TRUSTSTORE_LOCATION_CONFIG, caCertificate.toString(),
                SaslConfigs.SASL_MECHANISM, MECHANISM,
                SaslConfigs.SASL_JAAS_CONFIG, jaas(USER, password));
    }

    static String jaas(String user, String password) {
        return "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"" + user
                + "\" password=\"" + password + "\";";
    }

    Properties directProperties() {
        Properties p = new Properties();
        p.putAll(direct());
        return p;
    }

    private void awaitListening() {
        Await.until(START_TIMEOUT, () -> {
            if (!process.isAlive()) {
                throw new IllegalStateException("the TLS broker exited at start; see " + log());
            }
            return HostileMesh.canConnect(saslSslPort) && HostileMesh.canConnect(sslPort) && HostileMesh.canConnect(foreignPort);
        }, () -> "the TLS broker's listeners; see " + log());
    }

    @Override
    public void close() {
        process.destroy();
        // a broker that does not stop within 15 s is killed (a no-op once it has exited)
        process.onExit().completeOnTimeout(process, 15, TimeUnit.SECONDS).join();
        process.destroyForcibly();
    }

    private static void run(List<String> command, Path log) throws IOException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
        try {
            if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
                p.destroyForcibly();
                throw new IllegalStateException(String.join(" ", command.subList(command.indexOf("kafka.tools.StorageTool"),
                        command.indexOf("--add-scram"))) + " failed; see " + log + "\n" + Files.readString(log));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private static String java() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }
}
