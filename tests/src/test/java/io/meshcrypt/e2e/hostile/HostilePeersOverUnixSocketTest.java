package io.meshcrypt.e2e.hostile;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.e2e.support.HostileMesh;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.testsupport.Prerequisite;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;

/**
 * Every case of {@link HostilePeersTest}, asserting the same, with Envoy's hop to the filter-service on a Unix domain
 * socket ({@code unixSockets:} in filter.yaml, a {@code pipe} cluster in Envoy) instead of TCP: the limits and checks
 * of the data path must not depend on the transport the sidecar's streams arrive on.
 */
class HostilePeersOverUnixSocketTest extends HostilePeersTest {

    HostilePeersOverUnixSocketTest(LocalMesh mesh) {
        super(mesh);
    }

    @Override
    HostileMesh startHostileMesh(LocalMesh mesh) throws IOException {
        Prerequisite.require(System.getProperty("os.name").toLowerCase().contains("linux"),
                "Unix domain sockets for the filter-service need Linux (Netty epoll)");
        return new HostileMesh(mesh, "mesh-hostile-uds", HostileMesh.LOCAL_KEYS, Map.of(), HostileMesh.Hop.UNIX_SOCKET);
    }

    @Test
    void givenTheHopOnAUnixSocket_whenAProducerSendsThroughEnvoy_thenEnvoysOnlyFilterServiceEndpointIsThePipeAndItCarriedStreams()
            throws Exception {
        // Given the fixture's socket, owner-only as unixSockets' default mode
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(hostile.socket(), LinkOption.NOFOLLOW_LINKS)));
        String topic = hostile.mesh().createTopic("enc-hop", 1);
        // When a producer sends one record through Envoy
        try (KafkaProducer<byte[], byte[]> producer = producer(hostile.realBootstrap(), Map.of())) {
            producer.send(new ProducerRecord<>(topic, "over the socket".getBytes(StandardCharsets.UTF_8))).get(30, TimeUnit.SECONDS);
        }
        // Then Envoy's filter_service cluster has the socket as its one endpoint, and connections went to it: the cases
        // of this class ran over the Unix socket, not over a TCP listener left in place
        String clusters = hostile.envoyAdmin("/clusters");
        Matcher connections = Pattern.compile("(?m)^filter_service::(\\S+)::cx_total::(\\d+)$").matcher(clusters);
        assertTrue(connections.find(), () -> "no filter_service endpoint in Envoy's /clusters:\n" + clusters);
        assertEquals(hostile.socket().toString(), connections.group(1), "the filter_service endpoint");
        assertTrue(Long.parseLong(connections.group(2)) > 0, "connections to the filter-service over its socket: " + connections.group());
        assertTrue(!connections.find(), () -> "one filter_service endpoint only:\n" + clusters);
    }
}
