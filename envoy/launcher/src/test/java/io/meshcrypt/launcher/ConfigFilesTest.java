package io.meshcrypt.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConfigFilesTest {

    private static final PortPlan PORTS = PortPlan.of(19000);
    private static final Path TEMPLATE = Path.of(System.getProperty("meshcrypt.root", "../..")).resolve("envoy/xds-bootstrap.yaml.template");

    @TempDir
    Path dir;

    private String filterYaml(boolean tls) throws Exception {
        StateDir state = new StateDir(dir);
        ConfigFiles.writeFilter(state, PORTS, false, tls);
        return Files.readString(state.file("filter.yaml"));
    }

    @Test
    void givenTls_whenFilterYamlIsWritten_thenItWritesEnvelopeV2WithTheKeysetAsKekAndEndsWithTheTlsSection() throws Exception {
        assertEquals(StateDir.GENERATED_MARK + "\n"
                + "listen: 127.0.0.1:19051\n"
                + "keyset: keyset.json\n"
                + "# envelope version 2: per-topic data keys wrapped by keyset.json as KEK; its version-1 records stay readable\n"
                + "keys:\n"
                + "  provider: local\n"
                + "# Kafka node id -> the Envoy listener that fronts it; Metadata responses advertise these\n"
                + "brokers:\n"
                + "  1: 127.0.0.1:19193\n"
                + "# the encryption policy and the HTTP rules: the mesh file's, delivered by the xDS server (edits apply without restart)\n"
                + "policyFrom: xds://127.0.0.1:19018\n"
                + "# per-subject keys (policy entries with subject:): a compacted topic on the broker, read directly\n"
                + "subjectKeys:\n  bootstrap: 127.0.0.1:19092\n"
                + "# the audit trail: key operations and who accessed which topic (read it with ./meshcrypt audit)\n"
                + "audit:\n  file: logs/audit.jsonl\n"
                + "# Prometheus metrics, liveness and readiness (./meshcrypt status reads them)\n"
                + "observability:\n  listen: 127.0.0.1:19054\n"
                + "# who may call the admin API (./meshcrypt forget)\n"
                + "admin:\n  identities: [spiffe://meshcrypt.local/admin]\n"
                + "# mutual TLS with the mesh CA (pki/, issued by ./meshcrypt; rotated files are re-read)\n"
                + "tls:\n"
                + "  certificate: pki/filter-service/cert.pem\n"
                + "  privateKey: pki/filter-service/key.pem\n"
                + "  trustedCa: pki/ca.pem\n", filterYaml(true));
    }

    @Test
    void givenThreeBrokers_whenFilterYamlIsWritten_thenItsBrokerMapNamesTheSidecarListenerOfEach() throws Exception {
        StateDir state = new StateDir(dir);
        ConfigFiles.writeFilter(state, PORTS, 3, false, false);

        String yaml = Files.readString(state.file("filter.yaml"));

        assertEquals(filterYaml(false).replace("  1: 127.0.0.1:19193\n", "  1: 127.0.0.1:19193\n  2: 127.0.0.1:19212\n  3: 127.0.0.1:19213\n"), yaml);
    }

    private Map<String, String> brokerProperties(int id, int brokers) throws Exception {
        Path node = dir.resolve("broker-" + id);
        ConfigFiles.writeBroker(node, PORTS, id, brokers, false);
        java.util.Properties p = new java.util.Properties();
        try (var in = Files.newInputStream(node.resolve("server.properties"))) {
            p.load(in);
        }
        Map<String, String> out = new LinkedHashMap<>();
        p.stringPropertyNames().forEach(k -> out.put(k, p.getProperty(k)));
        return out;
    }

    @Test
    void givenNodeTwoOfThree_whenItsServerPropertiesAreWritten_thenItHasItsOwnPortsAndLogDirAllThreeVotersAndReplicationThreeMinIsrTwo()
            throws Exception {
        Map<String, String> p = brokerProperties(2, 3);

        assertEquals("2", p.get("node.id"));
        assertEquals("broker,controller", p.get("process.roles"));
        assertEquals("PLAINTEXT://127.0.0.1:19112,CONTROLLER://127.0.0.1:19122", p.get("listeners"));
        assertEquals("PLAINTEXT://127.0.0.1:19112", p.get("advertised.listeners"));
        assertEquals("1@127.0.0.1:19093,2@127.0.0.1:19122,3@127.0.0.1:19123", p.get("controller.quorum.voters"));
        assertEquals(null, p.get("controller.quorum.bootstrap.servers"));
        assertEquals(dir.resolve("broker-2/data").toString(), p.get("log.dirs"));
        for (String key : java.util.List.of("default.replication.factor", "offsets.topic.replication.factor",
                "transaction.state.log.replication.factor", "share.coordinator.state.topic.replication.factor")) {
            assertEquals("3", p.get(key), key);
        }
        for (String key : java.util.List.of("min.insync.replicas", "transaction.state.log.min.isr", "share.coordinator.state.topic.min.isr")) {
            assertEquals("2", p.get(key), key);
        }
        assertEquals("false", p.get("unclean.leader.election.enable"));
    }

    @Test
    void givenOneBroker_whenItsServerPropertiesAreWritten_thenItIsItsOwnQuorumWithReplicationOne() throws Exception {
        Map<String, String> p = brokerProperties(1, 1);

        assertEquals("1", p.get("node.id"));
        assertEquals("PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093", p.get("listeners"));
        assertEquals("127.0.0.1:19093", p.get("controller.quorum.bootstrap.servers"));
        assertEquals(null, p.get("controller.quorum.voters"));
        assertEquals("1", p.get("offsets.topic.replication.factor"));
        assertEquals("1", p.get("min.insync.replicas"));
    }

    @Test
    void givenNoTls_whenFilterYamlIsWritten_thenItHasNoTlsSectionAndOpensTheAdminApiOnLoopbackOnly() throws Exception {
        String yaml = filterYaml(false);

        assertEquals(filterYaml(true).replace(ConfigFiles.filterTls(), "").replace(ConfigFiles.filterAdmin(true),
                ConfigFiles.filterAdmin(false)), yaml);
        assertTrue(yaml.contains("admin:\n  plaintextLoopback: true\n"), yaml);
    }

    @Test
    void givenAHandEditedFilterYamlWithoutTls_whenWrittenWithTls_thenItIsKeptAndAWarningNamesIt() throws Exception {
        Path f = dir.resolve("filter.yaml");
        Files.writeString(f, "listen: 127.0.0.1:19051\nkeyset: keyset.json\n");
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        java.io.PrintStream stdout = System.out;
        System.setOut(new java.io.PrintStream(out, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            ConfigFiles.writeFilter(new StateDir(dir), PORTS, false, true);
        } finally {
            System.setOut(stdout);
        }

        assertEquals("listen: 127.0.0.1:19051\nkeyset: keyset.json\n", Files.readString(f));
        assertEquals("meshcrypt: keeping hand-edited " + f + "\nmeshcrypt: warning: " + f + " has no tls: section while MESHCRYPT_TLS is on;"
                + " its peers will refuse it (add the section, see ./meshcrypt pki, or delete the file to have it generated)\n",
                out.toString(java.nio.charset.StandardCharsets.UTF_8));
    }

    private static Map<String, Object> bootstrapValues() {
        Map<String, Object> values = new LinkedHashMap<>();
        values.put("NODE_ID", "kafka-apps");
        values.put("ENVOY_ADMIN_PORT", 19901);
        values.put("XDS_HOST", "127.0.0.1");
        values.put("XDS_PORT", 19018);
        values.put("XDS_API_TYPE", "GRPC");
        return values;
    }

    @Test
    void givenTheBootstrapTemplate_whenRenderedWithoutTls_thenOnlyItsTokensAreReplaced() throws Exception {
        String rendered = ConfigFiles.renderText(TEMPLATE, dir.resolve("envoy.yaml"), bootstrapValues());

        String template = Files.readString(TEMPLATE);
        String body = template.substring(template.indexOf("\nnode:"));
        assertEquals(body.replace("@@NODE_ID@@", "kafka-apps").replace("@@ENVOY_ADMIN_PORT@@", "19901").replace("@@XDS_HOST@@", "127.0.0.1")
                .replace("@@XDS_PORT@@", "19018").replace("@@XDS_API_TYPE@@", "GRPC"), rendered.substring(rendered.indexOf("\nnode:")));
    }

    @Test
    void givenTls_whenTheXdsTransportSocketIsAppended_thenItIsTheXdsServerClustersUpstreamTlsContext() throws Exception {
        String socket = ConfigFiles.xdsTransportSocket(Path.of("/h/pki/sidecar-kafka-apps"),
                Path.of("/h/pki/sidecar-kafka-apps/sds-certificate.yaml"), Path.of("/h/pki/ca.pem"));

        assertEquals("""
                    # mutual TLS (MESHCRYPT_TLS=on): this sidecar's certificate, the mesh CA, the xDS server's SPIFFE id
                    transport_socket:
                      name: envoy.transport_sockets.tls
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
                        common_tls_context:
                          alpn_protocols: [h2]
                          tls_certificate_sds_secret_configs:
                          - name: sidecar_certificate
                            sds_config:
                              resource_api_version: V3
                              path_config_source:
                                path: "/h/pki/sidecar-kafka-apps/sds-certificate.yaml"
                                watched_directory: { path: "/h/pki/sidecar-kafka-apps" }
                          validation_context:
                            trusted_ca: { filename: "/h/pki/ca.pem" }
                            match_typed_subject_alt_names:
                            - san_type: URI
                              matcher: { exact: "spiffe://meshcrypt.local/xds-server" }
                """, socket);
        String bootstrap = ConfigFiles.renderText(TEMPLATE, dir.resolve("envoy.yaml"), bootstrapValues()) + socket;
        JsonNode clusters = new ObjectMapper(new YAMLFactory()).readTree(bootstrap).at("/static_resources/clusters");
        assertEquals(1, clusters.size());
        assertEquals("xds_server", clusters.get(0).get("name").asText());
        assertEquals("spiffe://meshcrypt.local/xds-server", clusters.get(0)
                .at("/transport_socket/typed_config/common_tls_context/validation_context/match_typed_subject_alt_names/0/matcher/exact").asText());
        assertEquals("19018", clusters.get(0).at("/load_assignment/endpoints/0/lb_endpoints/0/endpoint/address/socket_address/port_value").asText());
    }

    @Test
    void givenASidecarsFiles_whenItsSdsSecretIsWritten_thenItNamesTheCertificateAndKeyUnderTheBootstrapsSecretName() {
        assertEquals("""
                # generated by ./meshcrypt: this sidecar's client certificate, re-read by Envoy when the files are replaced
                resources:
                - "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret
                  name: sidecar_certificate
                  tls_certificate:
                    certificate_chain: { filename: "/h/c.pem" }
                    private_key: { filename: "/h/k.pem" }
                """, ConfigFiles.sdsCertificate(Path.of("/h/c.pem"), Path.of("/h/k.pem")));
    }

    @Test
    void givenAKeptMeshFile_whenTheTransportAskedForDiffersFromItsSidecars_thenTheLauncherWarnsAndOtherwiseNot() throws Exception {
        Path tcp = dir.resolve("tcp-mesh.yaml");
        Files.writeString(tcp, "sidecars:\n  - nodeId: kafka-apps\n    filterService: 127.0.0.1:26051\n");
        Path unix = dir.resolve("unix-mesh.yaml");
        Files.writeString(unix, "sidecars:\n  - nodeId: kafka-apps\n    filterService: unix:/tmp/mc/run/kafka-apps.sock\n");

        assertEquals(null, ConfigFiles.transportMismatch(tcp, false));
        assertEquals(null, ConfigFiles.transportMismatch(unix, true));
        String toUnix = ConfigFiles.transportMismatch(tcp, true);
        assertTrue(toUnix != null && toUnix.contains("no sidecar on a unix: filterService")
                && toUnix.contains("MESHCRYPT_EXT_PROC=unix"), toUnix);
        String toTcp = ConfigFiles.transportMismatch(unix, false);
        assertTrue(toTcp != null && toTcp.contains("MESHCRYPT_EXT_PROC=tcp"), toTcp);
    }
}
