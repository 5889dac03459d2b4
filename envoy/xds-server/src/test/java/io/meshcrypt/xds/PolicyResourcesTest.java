package io.meshcrypt.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.Secret;
import io.meshcrypt.filter.config.XdsPolicySource;
import io.meshcrypt.meshconfig.mesh.Mesh;
import io.meshcrypt.meshconfig.mesh.MeshReader;
import io.meshcrypt.meshconfig.mesh.Policies;
import io.meshcrypt.meshconfig.mesh.PolicyDelivery;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.xds.snapshot.PolicyResources;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The policy resource the xDS server serves to filter-services, from the mesh file's policy: and http: sections. */
class PolicyResourcesTest {

    private static final String MESH = """
            filterService: 127.0.0.1:50051
            kafkaClusters:
              main:
                brokers:
                  1: 10.0.0.1:9092
            sidecars:
              app:
                kafka:
                  main:
                    bootstrap: 127.0.0.1:19192
                    brokers:
                      1: 127.0.0.1:19193
            policy:
              encrypt: ["%s", {topic: cards, fields: [/number]}]
              unmatched: reject
            http:
              rules:
                - name: orders
                  match: {path: /orders}
                  binding: orders
                  request: {fields: [{encrypt: /card}]}
            """;

    @TempDir
    Path dir;

    private static Mesh mesh(String topic) throws Exception {
        return MeshReader.parse(Path.of("mesh.yaml"), MESH.formatted(topic).getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void givenAMesh_whenItsPolicyResourceIsBuilt_thenTheResourceReadsBackAsItsPolicyAndRules() throws Exception {
        Mesh mesh = mesh("orders-*");

        Secret resource = PolicyResources.resource(mesh);

        assertEquals(PolicyDelivery.RESOURCE_NAME, resource.getName());
        assertEquals(new Policies(mesh.policy(), mesh.http()),
                PolicyDelivery.decode(resource.getGenericSecret().getSecret().getInlineString()));
    }

    @Test
    void givenNodes_whenGrouped_thenFilterServicesShareOneGroupAndEnvoysHaveTheirNodeId() {
        Node filterService = Node.newBuilder().setId("filter-a").setCluster(PolicyDelivery.FILTER_SERVICE_CLUSTER).build();
        Node envoy = Node.newBuilder().setId("app").setCluster("app").build();

        assertEquals(PolicyResources.FILTER_SERVICES, PolicyResources.group(filterService));
        assertEquals("app", PolicyResources.group(envoy));
    }

    @Test
    void givenARunningXdsServer_whenAFilterServiceSubscribesAndTheMeshFileChanges_thenItGetsEachPolicy() throws Exception {
        Path meshFile = dir.resolve("mesh.yaml");
        Files.writeString(meshFile, MESH.formatted("orders-*"));
        InetSocketAddress loopback = new InetSocketAddress("127.0.0.1", 0);
        List<EncryptionPolicy> applied = new CopyOnWriteArrayList<>();
        try (XdsServer server = XdsServer.start(meshFile, loopback, loopback);
             XdsPolicySource source = XdsPolicySource.start(server.xdsAddress(), "filter-a")) {
            Policies first = source.awaitFirst(Duration.ofSeconds(10));
            assertEquals(new Policies(mesh("orders-*").policy(), mesh("orders-*").http()), first);
            source.attach(first, applied::add, rules -> { });

            Path next = dir.resolve("mesh.yaml.tmp");
            Files.writeString(next, MESH.formatted("payments-*"));
            Files.move(next, meshFile, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);

            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (applied.isEmpty() && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertEquals(List.of(mesh("payments-*").policy()), applied);
        }
    }
}
