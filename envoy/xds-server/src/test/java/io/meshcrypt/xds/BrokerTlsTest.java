package io.meshcrypt.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.transport.ExtProcServer;
import io.meshcrypt.meshconfig.tls.TlsFiles;
import io.meshcrypt.meshconfig.tls.TlsMaterial;
import io.meshcrypt.pki.LocalCa;
import io.meshcrypt.testsupport.EnvoyProcess;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import javax.net.ssl.KeyManager;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SNIMatcher;
import javax.net.ssl.SNIServerName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * TLS to brokers and from clients with a real Envoy configured by the xDS server: TLS echo servers stand in for
 * brokers (JDK {@link SSLServerSocket}, certificates from a test CA), a filter-service prefixes what it reads with
 * "R:" (so an answer proves ext_proc saw the plaintext), and Envoy must accept exactly the broker certificates the
 * mesh file's {@code tls:} allows.
 */
class BrokerTlsTest {

    private static final Duration DAY = Duration.ofHours(24);
    private static final int BASE = XdsMeshHarness.LAUNCHER_PORT_BASE + 650;
    private static final int XDS_PORT = BASE;
    private static final int STATUS_PORT = BASE + 1;
    private static final int FILTER_PORT = BASE + 2;
    private static final int ADMIN_PORT = BASE + 3;
    /** Listener ports: bootstrap, then broker 1 (and broker 2), per Kafka cluster. */
    private static final int GOOD = BASE + 10;
    private static final int NAMED = BASE + 13;
    private static final int WRONG_NAME = BASE + 16;
    private static final int FOREIGN = BASE + 19;
    private static final int MUTUAL = BASE + 22;
    private static final int TERMINATED = BASE + 25;
    private static final int TRANSPARENT = BASE + 28;

    @TempDir
    static Path dir;

    private static final List<AutoCloseable> RESOURCES = new ArrayList<>();
    private static final Queue<String> SNI_SEEN = new ConcurrentLinkedQueue<>();
    private static LocalCa brokersCa;
    private static EnvoyProcess envoy;

    @BeforeAll
    static void brokersXdsServerAndEnvoy() throws Exception {
        brokersCa = LocalCa.openOrCreate(dir.resolve("brokers"));
        LocalCa foreignCa = LocalCa.openOrCreate(dir.resolve("foreign"));
        // broker 1 of "good" is reached by name, broker 2 by IP: one certificate names only the one, one the other
        int good1 = tlsEcho(brokersCa.issue("good-1", LocalCa.spiffeId("good-1"), List.of("localhost"), DAY), brokersCa, false);
        int good2 = tlsEcho(brokersCa.issue("good-2", LocalCa.spiffeId("good-2"), List.of("127.0.0.1"), DAY), brokersCa, false);
        int named = tlsEcho(brokersCa.issue("named", LocalCa.spiffeId("named"), List.of("broker-1.example.com"), DAY), brokersCa, false);
        int wrongName = tlsEcho(brokersCa.issue("wrong-name", LocalCa.spiffeId("wrong-name"), List.of("other.example.com"), DAY), brokersCa, false);
        int foreign = tlsEcho(foreignCa.issue("foreign", LocalCa.spiffeId("foreign"), List.of("localhost", "127.0.0.1"), DAY), brokersCa, false);
        int mutual = tlsEcho(brokersCa.issue("mutual", LocalCa.spiffeId("mutual"), List.of("127.0.0.1"), DAY), brokersCa, true);
        brokersCa.issue("sidecar", LocalCa.spiffeId("sidecar/app"), List.of(), DAY);
        brokersCa.issue("listener", LocalCa.spiffeId("listener"), List.of("127.0.0.1"), DAY);

        RESOURCES.add(ExtProcServer.start(new InetSocketAddress("127.0.0.1", FILTER_PORT), headers -> new SidecarExchange.Prefixing(),
                ExtProcServer.Limits.of(1 << 20, Duration.ofSeconds(30))));
        Path mesh = dir.resolve("mesh.yaml");
        Files.writeString(mesh, """
                filterService: 127.0.0.1:%d
                kafkaClusters:
                  good:
                    brokers: {1: "localhost:%d", 2: "127.0.0.1:%d"}
                    tls: {trustedCa: brokers/ca.pem}
                  named:
                    brokers: {1: "127.0.0.1:%d"}
                    tls: {trustedCa: brokers/ca.pem, sni: {1: broker-1.example.com}}
                  wrong-name:
                    brokers: {1: "localhost:%d"}
                    tls: {trustedCa: brokers/ca.pem}
                  foreign:
                    brokers: {1: "localhost:%d"}
                    tls: {trustedCa: brokers/ca.pem}
                  mutual:
                    brokers: {1: "127.0.0.1:%d"}
                    tls: {trustedCa: brokers/ca.pem, certificate: brokers/sidecar/cert.pem, privateKey: brokers/sidecar/key.pem, minVersion: "1.3"}
                  terminated:
                    brokers: {1: "localhost:%d"}
                    tls: {trustedCa: brokers/ca.pem}
                  intercepted:
                    brokers: {1: "192.0.2.1:9093"}
                    tls: {trustedCa: brokers/ca.pem, sni: {1: broker-1.example.com}}
                sidecars:
                  app:
                    kafka:
                      good: {bootstrap: 127.0.0.1:%d, brokers: {1: 127.0.0.1:%d, 2: 127.0.0.1:%d}}
                      named: {bootstrap: 127.0.0.1:%d, brokers: {1: 127.0.0.1:%d}}
                      wrong-name: {bootstrap: 127.0.0.1:%d, brokers: {1: 127.0.0.1:%d}}
                      foreign: {bootstrap: 127.0.0.1:%d, brokers: {1: 127.0.0.1:%d}}
                      mutual: {bootstrap: 127.0.0.1:%d, brokers: {1: 127.0.0.1:%d}}
                      terminated:
                        bootstrap: 127.0.0.1:%d
                        brokers: {1: 127.0.0.1:%d}
                        tls: {certificate: brokers/listener/cert.pem, privateKey: brokers/listener/key.pem}
                    transparent: {listen: 127.0.0.1:%d, kafka: [intercepted]}
                policy:
                  encrypt: ["orders-*"]
                """.formatted(FILTER_PORT, good1, good2, named, wrongName, foreign, mutual, good1,
                GOOD, GOOD + 1, GOOD + 2, NAMED, NAMED + 1, WRONG_NAME, WRONG_NAME + 1, FOREIGN, FOREIGN + 1,
                MUTUAL, MUTUAL + 1, TERMINATED, TERMINATED + 1, TRANSPARENT));
        RESOURCES.add(XdsServer.start(mesh, new InetSocketAddress("127.0.0.1", XDS_PORT), new InetSocketAddress("127.0.0.1", STATUS_PORT)));
        envoy = EnvoyProcess.start(SidecarExchange.bootstrap(dir.resolve("envoy-app.yaml"), "app", ADMIN_PORT, XDS_PORT, ""), ADMIN_PORT, dir.resolve("envoy.log"), "--log-level", "info",
                "--base-id-path", dir.resolve("envoy.base-id").toString());
        RESOURCES.add(envoy);
    }

    @AfterAll
    static void tearDown() throws Exception {
        for (int i = RESOURCES.size() - 1; i >= 0; i--) {
            RESOURCES.get(i).close();
        }
    }

    @Test
    void givenBrokerCertificatesForTheirHosts_whenClientsGoThroughTheBootstrapAndBrokerListeners_thenEveryBrokerAcceptsAndEnvoyAckedTheConfig() throws Exception {
        assertEquals("R:hello", SidecarExchange.exchangeWhenListening(GOOD + 1, "hello"), envoy.admin("/stats?filter=kafka_good"));
        assertTrue(SNI_SEEN.contains("localhost"), "broker 1 is asked for by its host name: " + SNI_SEEN);
        assertEquals("R:hello", SidecarExchange.exchangeWhenListening(GOOD + 2, "hello"), "broker 2, by IP SAN, without SNI");
        // the bootstrap cluster spreads connections over both brokers, each checked against its own name
        for (int i = 0; i < 6; i++) {
            assertEquals("R:boot" + i, SidecarExchange.exchangeWhenListening(GOOD, "boot" + i));
        }
        assertEquals(6, stat("cluster.kafka_good_bootstrap.ssl.handshake"), "six TLS handshakes through the bootstrap cluster");
        assertEquals(0, stat("cluster_manager.cds.update_rejected") + stat("listener_manager.lds.update_rejected"), "no NACK");
    }

    @Test
    void givenATransparentListenerForATlsCluster_whenEnvoyIsConfigured_thenItsChainGoesToTheBrokersTlsCluster() throws Exception {
        awaitConfigured();

        assertTrue(envoy.admin("/listeners").contains("kafka_transparent::127.0.0.1:" + TRANSPARENT), envoy.admin("/listeners"));
        String dump = envoy.admin("/config_dump?resource=dynamic_active_clusters&name_regex=kafka_intercepted_broker_1");
        assertTrue(dump.contains("\"sni\": \"broker-1.example.com\""), dump);
        assertEquals(0, stat("cluster_manager.cds.update_rejected") + stat("listener_manager.lds.update_rejected"), "no NACK");
    }

    @Test
    void givenASniNameForABroker_whenAClientConnects_thenEnvoySendsItAndAcceptsACertificateForIt() throws Exception {
        assertEquals("R:hi", SidecarExchange.exchangeWhenListening(NAMED + 1, "hi"), envoy.logText());

        assertTrue(SNI_SEEN.contains("broker-1.example.com"), SNI_SEEN.toString());
    }

    @Test
    void givenABrokerCertificateForAnotherName_whenAClientConnects_thenEnvoyRefusesTheBroker() throws Exception {
        awaitConfigured();

        assertEquals("", answerOrClosed(WRONG_NAME + 1, "secret"), "the connection is closed, nothing passes");
        assertTrue(stat("cluster.kafka_wrong-name_broker_1.ssl.fail_verify_san") >= 1, envoy.admin("/stats?filter=wrong-name"));
    }

    @Test
    void givenABrokerCertificateFromAnotherCa_whenAClientConnects_thenEnvoyRefusesTheBroker() throws Exception {
        awaitConfigured();

        assertEquals("", answerOrClosed(FOREIGN + 1, "secret"), "the connection is closed, nothing passes");
        assertTrue(stat("cluster.kafka_foreign_broker_1.ssl.fail_verify_error") >= 1, envoy.admin("/stats?filter=foreign"));
    }

    @Test
    void givenABrokerRequiringAClientCertificate_whenAClientConnects_thenTheSidecarPresentsItsCertificateOverTls13() throws Exception {
        assertEquals("R:mutual", SidecarExchange.exchangeWhenListening(MUTUAL + 1, "mutual"), envoy.logText());
    }

    @Test
    void givenAListenerThatTerminatesTls_whenATlsClientConnects_thenTheFilterServiceSeesPlaintextAndTheBrokerTlsAgain() throws Exception {
        SSLContext client = context(new KeyManager[0], material(brokersCa.files("listener"), brokersCa).trustManager());

        String answer = SidecarExchange.exchangeWhenListening(TERMINATED, "tls", port -> {
            try {
                return client.getSocketFactory().createSocket("127.0.0.1", port);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });

        assertEquals("R:tls", answer, envoy.logText());
    }

    private static void awaitConfigured() throws Exception {
        // the good cluster answering means every listener and cluster of the snapshot is in place
        assertEquals("R:ready", SidecarExchange.exchangeWhenListening(GOOD + 1, "ready"), envoy.logText());
    }

    /** What comes back through a listener that exists; "" when the sidecar closes (or resets) the connection instead. */
    private static String answerOrClosed(int port, String text) throws IOException {
        try (Socket socket = new Socket("127.0.0.1", port)) {
            socket.setSoTimeout(10_000);
            socket.getOutputStream().write(text.getBytes(StandardCharsets.UTF_8));
            return new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        } catch (SocketException e) {
            return "";
        }
    }

    private static long stat(String name) {
        for (String line : envoy.admin("/stats?filter=" + name).lines().toList()) {
            if (line.startsWith(name + ": ")) {
                return Long.parseLong(line.substring(name.length() + 2).strip());
            }
        }
        return 0;
    }

    /** A TLS echo server on loopback with {@code identity}; with {@code clientAuth}, clients need a certificate from {@code trusted}. */
    private static int tlsEcho(LocalCa.Issued identity, LocalCa trusted, boolean clientAuth) throws Exception {
        TlsMaterial material = material(identity, trusted);
        SSLContext context = context(new KeyManager[] {material.keyManager()}, material.trustManager());
        SSLServerSocket server = (SSLServerSocket) context.getServerSocketFactory().createServerSocket(0, 50, InetAddress.getLoopbackAddress());
        SSLParameters parameters = server.getSSLParameters();
        parameters.setNeedClientAuth(clientAuth);
        parameters.setSNIMatchers(List.of(new SNIMatcher(0) {
            @Override
            public boolean matches(SNIServerName name) {
                SNI_SEEN.add(((SNIHostName) name).getAsciiName());
                return true;
            }
        }));
        server.setSSLParameters(parameters);
        RESOURCES.add(server);
        SidecarExchange.echo(server);
        return server.getLocalPort();
    }

    private static SSLContext context(KeyManager[] keys, TrustManager trust) throws Exception {
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(keys, new TrustManager[] {trust}, null);
        return context;
    }

    private static TlsMaterial material(LocalCa.Issued identity, LocalCa trusted) throws Exception {
        return TlsMaterial.load(new TlsFiles(identity.certificate(), identity.privateKey(), trusted.caCertificate()));
    }
}
