package io.meshcrypt.istio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.config.FilterConfig;
import io.meshcrypt.filter.config.KeysConfig;
import io.meshcrypt.filter.config.PolicyWatcher;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.TopicDecision;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

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

    /**
     * The kubelet updates a ConfigMap folder as Kubernetes' AtomicWriter does: the files are symlinks through
     * {@code ..data}, which is swapped to a new timestamped folder in one rename. The running service must see that.
     */
    @Test
    void givenTheConfigMapFolder_whenTheKubeletSwapsInAnEditedFilterYaml_thenTheRunningServiceAppliesTheNewPolicy(
            @TempDir Path mount) throws Exception {
        String shipped = Files.readString(BASE.resolve("filter.yaml"));
        String edited = shipped.replace("encrypt: [\"*\"]", "encrypt: [\"orders*\"]");
        assertTrue(!edited.equals(shipped), "the test edits the shipped policy");
        writeVersion(mount, "..2026_12_01_00_00_00.1", shipped);
        Files.createSymbolicLink(mount.resolve("..data"), Path.of("..2026_12_01_00_00_00.1"));
        Files.createSymbolicLink(mount.resolve("filter.yaml"), Path.of("..data/filter.yaml"));
        Path file = mount.resolve("filter.yaml");
        AtomicReference<EncryptionPolicy> applied = new AtomicReference<>();
        try (PolicyWatcher watcher = PolicyWatcher.start(file, FilterConfig.load(file), applied::set, http -> { },
                Duration.ofMillis(50))) {
            assertTrue(watcher.current().decide("payments") == TopicDecision.ENCRYPT);

            writeVersion(mount, "..2026_12_01_00_01_00.2", edited);
            Files.createSymbolicLink(mount.resolve("..data_tmp"), Path.of("..2026_12_01_00_01_00.2"));
            Files.move(mount.resolve("..data_tmp"), mount.resolve("..data"), StandardCopyOption.ATOMIC_MOVE);
            Files.delete(mount.resolve("..2026_12_01_00_00_00.1/filter.yaml"));
            Files.delete(mount.resolve("..2026_12_01_00_00_00.1"));

            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (applied.get() == null && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertTrue(applied.get() != null, "the service never saw the swapped folder");
            assertTrue(applied.get().decide("orders-eu") == TopicDecision.ENCRYPT);
            assertTrue(applied.get().decide("payments") == TopicDecision.PASSTHROUGH, "the edited policy no longer encrypts payments");
        }
    }

    private static void writeVersion(Path mount, String folder, String filterYaml) throws Exception {
        Files.createDirectories(mount.resolve(folder));
        Files.writeString(mount.resolve(folder).resolve("filter.yaml"), filterYaml);
    }

    @Test
    void givenDeployment_whenItsMountsAreRead_thenTheyMatchTheConfigAndKeysetPaths() throws Exception {
        String deployment = Files.readString(BASE.resolve("deployment.yaml"));
        var node = IstioManifests.read(BASE.resolve("deployment.yaml"));
        var container = node.at("/spec/template/spec/containers/0");

        List<String> args = new ArrayList<>();
        container.path("args").forEach(arg -> args.add(arg.asText()));
        int config = args.indexOf("--config");
        assertTrue(config > 0, deployment);
        assertEquals("/etc/meshcrypt/config/filter.yaml", args.get(config + 1));
        boolean keysetMounted = false;
        boolean configFolderMounted = false;
        for (var mount : container.path("volumeMounts")) {
            keysetMounted |= mount.path("name").asText().equals("keyset")
                    && mount.path("mountPath").asText().equals("/etc/meshcrypt/keyset");
            configFolderMounted |= mount.path("name").asText().equals("config")
                    && mount.path("mountPath").asText().equals("/etc/meshcrypt/config") && !mount.has("subPath");
        }
        assertTrue(keysetMounted, "keyset.json and siv-keyset.json are read from /etc/meshcrypt/keyset");
        assertTrue(configFolderMounted, "filter.yaml is read from the ConfigMap's folder, which the kubelet updates");
        FilterConfig shipped = FilterConfig.load(BASE.resolve("filter.yaml"));
        assertEquals(Path.of("/etc/meshcrypt/keyset/siv-keyset.json"), shipped.sivKeyset(),
                "the record-key keyset comes from the Secret: shared by the replicas, never created in a read-only mount");
        assertEquals(9090, node.at("/spec/template/spec/containers/0/ports/0/containerPort").asInt());
    }
}
