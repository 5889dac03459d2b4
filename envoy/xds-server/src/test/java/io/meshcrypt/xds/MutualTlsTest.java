package io.meshcrypt.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.config.XdsPolicySource;
import io.meshcrypt.filter.transport.ExtProcServer;
import io.meshcrypt.meshconfig.mesh.Policies;
import io.meshcrypt.meshconfig.tls.TlsFiles;
import io.meshcrypt.meshconfig.tls.TlsMaterial;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import io.meshcrypt.pki.LocalCa;
import io.meshcrypt.testsupport.EnvoyProcess;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Mutual TLS on the xDS server's ADS port and on the filter_service cluster the mesh {@code tls:} section gives every
 * sidecar, with real certificates from the mesh CA and a real Envoy.
 */
class MutualTlsTest {

    private static final Duration DAY = Duration.ofHours(24);
    private static final int BASE = XdsMeshHarness.LAUNCHER_PORT_BASE + 600;
    private static final int XDS_PORT = BASE;
    private static final int STATUS_PORT = BASE + 1;
    private static final int FILTER_PORT = BASE + 2;
    private static final int BOOTSTRAP_PORT = BASE + 3;
    private static final int BROKER_PORT = BASE + 4;
    private static final int ADMIN_PORT = BASE + 5;

    @TempDir
    Path dir;

    private final List<AutoCloseable> resources = new ArrayList<>();
    private LocalCa meshCa;
    private Path mesh;

    @BeforeEach
    void meshCaAndXdsServer() throws Exception {
        meshCa = LocalCa.openOrCreate(dir.resolve("pki"));
        LocalCa.Issued xds = meshCa.issue("xds-server", LocalCa.spiffeId("xds-server"), List.of("localhost", "127.0.0.1"), DAY);
        mesh = dir.resolve("mesh.yaml");
        Files.writeString(mesh, OneSidecarMesh.YAML
                .replace("127.0.0.1:50051", "127.0.0.1:" + FILTER_PORT)
                .replace("127.0.0.1:19192", "127.0.0.1:" + BOOTSTRAP_PORT)
                .replace("127.0.0.1:19193", "127.0.0.1:" + BROKER_PORT)
                + """
                tls:
                  trustedCa: pki/ca.pem
                  certificates: pki
                  filterService: spiffe://meshcrypt.local/filter-service
                """);
        resources.add(io.meshcrypt.xds.XdsServer.start(mesh, new InetSocketAddress("127.0.0.1", XDS_PORT),
                new InetSocketAddress("127.0.0.1", STATUS_PORT), material(xds, meshCa)));
    }

    @AfterEach
    void tearDown() throws Exception {
        for (int i = resources.size() - 1; i >= 0; i--) {
            resources.get(i).close();
        }
    }

    @Test
    void givenAdsWithMutualTls_whenAClientHasNoMeshCertificate_thenItGetsNoPolicyWhileAMeshClientDoes() throws Exception {
        LocalCa foreignCa = LocalCa.openOrCreate(dir.resolve("foreign"));
        LocalCa.Issued foreign = foreignCa.issue("filter-service", LocalCa.spiffeId("filter-service"), List.of("127.0.0.1"), DAY);
        LocalCa.Issued filterService = meshCa.issue("filter-service", LocalCa.spiffeId("filter-service"), List.of("127.0.0.1"), DAY);
        InetSocketAddress ads = InetSocketAddress.createUnresolved("127.0.0.1", XDS_PORT);

        // a foreign certificate, though it trusts the mesh CA itself
        XdsPolicySource refused = XdsPolicySource.start(ads, "filter-service@foreign", material(foreign, meshCa));
        resources.add(refused);
        XdsPolicySource accepted = XdsPolicySource.start(ads, "filter-service@mesh", material(filterService, meshCa));
        resources.add(accepted);

        Policies policies = accepted.awaitFirst(Duration.ofSeconds(20));
        assertTrue(policies.encryption().toString().contains("orders-*"), policies.toString());
        assertThrows(ConfigException.class, () -> refused.awaitFirst(Duration.ofSeconds(3)));
    }

    @Test
    void givenTheMeshTlsSection_whenARealEnvoyStreamsThroughATlsFilterService_thenTheFilterServiceRewritesTheBytes() throws Exception {
        LocalCa.Issued filterService = meshCa.issue("filter-service", LocalCa.spiffeId("filter-service"), List.of("localhost", "127.0.0.1"), DAY);
        LocalCa.Issued sidecar = meshCa.issue("sidecar-app-a", LocalCa.spiffeId("sidecar/app-a"), List.of(), DAY);
        resources.add(ExtProcServer.start(new InetSocketAddress("127.0.0.1", FILTER_PORT), headers -> new SidecarExchange.Prefixing(),
                ExtProcServer.Limits.of(1 << 20, Duration.ofSeconds(30)), List.of(), material(filterService, meshCa)));
        ServerSocket broker = echoServer();
        Files.writeString(mesh, Files.readString(mesh).replace("10.0.0.1:9092", "127.0.0.1:" + broker.getLocalPort()));

        EnvoyProcess envoy = EnvoyProcess.start(bootstrap("app-a", sidecar), ADMIN_PORT, dir.resolve("envoy.log"),
                "--log-level", "info", "--base-id-path", dir.resolve("envoy.base-id").toString());
        resources.add(envoy);

        String answer = SidecarExchange.exchangeWhenListening(BOOTSTRAP_PORT, "hello");
        assertEquals("R:hello", answer, envoy.logText());
    }

    @Test
    void givenASidecarCertificateIsReissued_whenEnvoyWatchesItsFolder_thenItPresentsTheNewOneWithoutARestart() throws Exception {
        LocalCa.Issued filterService = meshCa.issue("filter-service", LocalCa.spiffeId("filter-service"), List.of("127.0.0.1"), DAY);
        LocalCa.Issued sidecar = meshCa.issue("sidecar-app-a", LocalCa.spiffeId("sidecar/app-a"), List.of(), DAY);
        resources.add(ExtProcServer.start(new InetSocketAddress("127.0.0.1", FILTER_PORT), headers -> new SidecarExchange.Prefixing(),
                ExtProcServer.Limits.of(1 << 20, Duration.ofSeconds(30)), List.of(), material(filterService, meshCa)));
        ServerSocket broker = echoServer();
        Files.writeString(mesh, Files.readString(mesh).replace("10.0.0.1:9092", "127.0.0.1:" + broker.getLocalPort()));
        EnvoyProcess envoy = EnvoyProcess.start(bootstrap("app-a", sidecar), ADMIN_PORT, dir.resolve("envoy.log"),
                "--log-level", "info", "--base-id-path", dir.resolve("envoy.base-id").toString());
        resources.add(envoy);
        assertEquals("R:hello", SidecarExchange.exchangeWhenListening(BOOTSTRAP_PORT, "hello"), envoy.logText());

        LocalCa.Issued reissued = meshCa.issue("sidecar-app-a", LocalCa.spiffeId("sidecar/app-a"), List.of(), DAY);

        // Envoy's /certs lists the certificates it holds, serial numbers in lower-case hex
        String serial = LocalCa.readCertificate(reissued.certificate()).getSerialNumber().toString(16);
        XdsMeshHarness.await(() -> envoy.admin("/certs").toLowerCase(java.util.Locale.ROOT).contains(serial),
                "Envoy holds the re-issued sidecar certificate " + serial);
        assertEquals("R:again", SidecarExchange.exchangeWhenListening(BOOTSTRAP_PORT, "again"), envoy.logText());
    }

    private static TlsMaterial material(LocalCa.Issued identity, LocalCa trusted) throws Exception {
        return TlsMaterial.load(new TlsFiles(identity.certificate(), identity.privateKey(), trusted.caCertificate()));
    }

    private ServerSocket echoServer() throws IOException {
        ServerSocket server = new ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress());
        resources.add(server);
        SidecarExchange.echo(server);
        return server;
    }

    /** A bootstrap whose ADS connection is mutual TLS with the sidecar's certificate, as the launcher's will be. */
    private Path bootstrap(String nodeId, LocalCa.Issued sidecar) throws IOException {
        return SidecarExchange.bootstrap(dir.resolve("envoy-" + nodeId + ".yaml"), nodeId, ADMIN_PORT, XDS_PORT, """
                transport_socket:
                  name: envoy.transport_sockets.tls
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
                    common_tls_context:
                      alpn_protocols: [h2]
                      tls_certificates:
                      - certificate_chain: {filename: "%s"}
                        private_key: {filename: "%s"}
                      validation_context:
                        trusted_ca: {filename: "%s"}
                        match_typed_subject_alt_names:
                        - {san_type: URI, matcher: {exact: "spiffe://meshcrypt.local/xds-server"}}
                """.formatted(sidecar.certificate(), sidecar.privateKey(), meshCa.caCertificate()));
    }
}
