package io.meshcrypt.istio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.config.FilterConfig;
import io.meshcrypt.filter.config.KeysConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The filter.yaml the ConfigMap ships is one the filter-service accepts, wired to the Deployment's mounts. */
class FilterServiceConfigMapTest {

    private static final Path ROOT = Path.of(System.getProperty("meshcrypt.root", "..")).toAbsolutePath().normalize();
    private static final Path BASE = ROOT.resolve("istio/base/filter-service");

    @Test
    void givenShippedFilterYaml_whenLoadedByFilterService_thenTransparentModeOnTheServicePort() throws Exception {
        FilterConfig config = FilterConfig.load(BASE.resolve("filter.yaml"));

        assertEquals(9090, config.listen().getPort());
        assertTrue(config.listen().getAddress().isAnyLocalAddress(), "the sidecar forwards to the pod IP: bind all");
        assertTrue(config.brokers().isEmpty(), "sidecars intercept every broker: no address rewriting");
        assertEquals(Path.of("/etc/meshcrypt/keyset/keyset.json"), config.keyset());
    }

    @Test
    void givenShippedFilterYaml_whenLoaded_thenItWritesEnvelopeV2WithTheMountedKeysetAsLocalKekAndStillReadsV1() throws Exception {
        FilterConfig config = FilterConfig.load(BASE.resolve("filter.yaml"));

        assertEquals(KeysConfig.LOCAL, config.keys().provider());
        assertEquals(config.keyset(), config.keys().localKeyset(), "the one mounted keyset is the KEK and reads version 1");
    }

    @Test
    void givenDeployment_whenItsMountsAreRead_thenTheyMatchTheConfigAndKeysetPaths() throws Exception {
        String deployment = Files.readString(BASE.resolve("deployment.yaml"));
        var node = IstioManifests.read(BASE.resolve("deployment.yaml"));
        var container = node.at("/spec/template/spec/containers/0");

        java.util.List<String> command = new java.util.ArrayList<>();
        container.path("command").forEach(arg -> command.add(arg.asText()));
        int config = command.indexOf("--config");
        assertTrue(config > 0, deployment);
        assertEquals("/etc/meshcrypt/filter.yaml", command.get(config + 1));
        boolean keysetMounted = false;
        for (var mount : container.path("volumeMounts")) {
            keysetMounted |= mount.path("name").asText().equals("keyset")
                    && mount.path("mountPath").asText().equals("/etc/meshcrypt/keyset");
        }
        assertTrue(keysetMounted, "keyset.json is read from /etc/meshcrypt/keyset");
        assertEquals(9090, node.at("/spec/template/spec/containers/0/ports/0/containerPort").asInt());
    }
}
