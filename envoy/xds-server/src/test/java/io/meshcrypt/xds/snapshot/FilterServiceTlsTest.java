package io.meshcrypt.xds.snapshot;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.CommonTlsContext;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.Secret;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.SubjectAltNameMatcher;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext;
import io.meshcrypt.meshconfig.mesh.Mesh;
import io.meshcrypt.meshconfig.mesh.MeshReader;
import io.meshcrypt.xds.OneSidecarMesh;
import io.meshcrypt.xds.snapshot.EnvoyResources.Resources;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The filter_service cluster with and without the mesh file's {@code tls:} section. */
class FilterServiceTlsTest {

    /** The mesh file's {@code tls:} section (also {@link FilterServiceUnixSocketTest}'s). */
    static final String TLS = """
            tls:
              trustedCa: /pki/ca.pem
              certificates: /pki
              filterService: spiffe://meshcrypt.local/filter-service
            """;

    private static Resources resources(String yaml) throws Exception {
        Mesh mesh = MeshReader.parse(Path.of("/etc/mesh.yaml"), yaml.getBytes(StandardCharsets.UTF_8));
        return EnvoyResources.standard().forSidecar(mesh, mesh.sidecars().get("app-a"), "1-abc");
    }

    private static Cluster filterService(Resources resources) {
        return resources.clusters().stream().filter(c -> c.getName().equals(EnvoyResources.FILTER_SERVICE_CLUSTER)).findFirst().orElseThrow();
    }

    @Test
    void givenTheTlsSection_whenResourcesBuilt_thenTheClusterRequiresTheFilterServiceIdAndPresentsTheSidecarsFiles() throws Exception {
        Resources resources = resources(OneSidecarMesh.YAML + TLS);

        CommonTlsContext tls = filterService(resources).getTransportSocket().getTypedConfig().unpack(UpstreamTlsContext.class)
                .getCommonTlsContext();
        assertEquals(List.of("h2"), tls.getAlpnProtocolsList());
        assertEquals("/pki/ca.pem", tls.getValidationContext().getTrustedCa().getFilename());
        SubjectAltNameMatcher san = tls.getValidationContext().getMatchTypedSubjectAltNames(0);
        assertEquals(SubjectAltNameMatcher.SanType.URI, san.getSanType());
        assertEquals("spiffe://meshcrypt.local/filter-service", san.getMatcher().getExact());
        assertEquals(EnvoyResources.CLIENT_CERTIFICATE_SECRET, tls.getTlsCertificateSdsSecretConfigs(0).getName());
        Secret secret = resources.secrets().getFirst();
        assertEquals(EnvoyResources.CLIENT_CERTIFICATE_SECRET, secret.getName());
        assertEquals("/pki/sidecar-app-a/cert.pem", secret.getTlsCertificate().getCertificateChain().getFilename());
        assertEquals("/pki/sidecar-app-a/key.pem", secret.getTlsCertificate().getPrivateKey().getFilename());
        assertEquals("/pki/sidecar-app-a", secret.getTlsCertificate().getWatchedDirectory().getPath());
    }

    @Test
    void givenNoTlsSection_whenResourcesBuilt_thenTheClusterIsPlaintextAndNoSecretIsServed() throws Exception {
        Resources resources = resources(OneSidecarMesh.YAML);

        assertFalse(filterService(resources).hasTransportSocket());
        assertEquals(List.of(), resources.secrets());
    }
}
