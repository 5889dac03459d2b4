package io.meshcrypt.xds.snapshot;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import com.github.xds.type.v3.TypedStruct;
import com.google.protobuf.Struct;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.core.v3.CidrRange;
import io.envoyproxy.envoy.config.core.v3.Http2ProtocolOptions;
import io.envoyproxy.envoy.config.listener.v3.Filter;
import io.envoyproxy.envoy.config.listener.v3.FilterChain;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.config.listener.v3.ListenerFilter;
import io.envoyproxy.envoy.extensions.filters.listener.original_dst.v3.OriginalDst;
import io.envoyproxy.envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy;
import io.envoyproxy.envoy.extensions.upstreams.http.v3.HttpProtocolOptions;
import io.meshcrypt.meshconfig.mesh.Mesh;
import io.meshcrypt.meshconfig.mesh.MeshReader;
import io.meshcrypt.xds.snapshot.EnvoyResources.Resources;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The Kafka listeners EnvoyResources generates: explicit-proxy listeners, and the transparent (original_dst) listener
 * a transparent-mode sidecar runs.
 */
class KafkaResourcesTest {

    private static final String MESH = """
            filterService: 127.0.0.1:50051
            kafkaClusters:
              main:
                brokers:
                  2: 10.0.0.2:9092
                  1: 10.0.0.1:9092
              audit:
                brokers:
                  7: "[fd00::7]:9093"
            sidecars:
              go-app:
                filterService: 169.254.22.1:22097
                kafka:
                  main:
                    bootstrap: 127.0.0.1:19192
                    brokers:
                      1: 127.0.0.1:19193
                      2: 127.0.0.1:19194
                transparent:
                  listen: 127.0.0.1:15001
                  kafka: [main, audit]
              plain:
                kafka:
                  main:
                    bootstrap: 127.0.0.1:29192
                    brokers:
                      1: 127.0.0.1:29193
                      2: 127.0.0.1:29194
            policy:
              encrypt: ["orders-*"]
            """;

    private static Resources resources(String yaml, String node) throws Exception {
        Mesh mesh = MeshReader.parse(Path.of("mesh.yaml"), yaml.getBytes(StandardCharsets.UTF_8));
        return EnvoyResources.standard().forSidecar(mesh, mesh.sidecars().get(node), "1-abc");
    }

    private static Listener transparentListener(Resources resources) {
        List<Listener> matching = resources.listeners().stream().filter(l -> l.getName().equals("kafka_transparent")).toList();
        assertEquals(1, matching.size(), "one transparent listener");
        return matching.getFirst();
    }

    @Test
    void givenTransparentSidecar_whenResourcesAreGenerated_thenTheListenerRestoresTheOriginalDestination() throws Exception {
        Listener listener = transparentListener(resources(MESH, "go-app"));

        assertEquals("127.0.0.1", listener.getAddress().getSocketAddress().getAddress());
        assertEquals(15001, listener.getAddress().getSocketAddress().getPortValue());
        assertEquals(1, listener.getListenerFiltersCount());
        ListenerFilter originalDst = listener.getListenerFilters(0);
        assertEquals("envoy.filters.listener.original_dst", originalDst.getName());
        assertEquals("type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst", originalDst.getTypedConfig().getTypeUrl());
        assertEquals(OriginalDst.getDefaultInstance(), originalDst.getTypedConfig().unpack(OriginalDst.class));
    }

    @Test
    void givenTwoInterceptedClusters_whenResourcesAreGenerated_thenEachBrokerHasOneChainMatchingExactlyItsAddress() throws Exception {
        Listener listener = transparentListener(resources(MESH, "go-app"));

        // by cluster name, then node id; nothing else has a chain (no default chain: other destinations are refused)
        assertEquals(List.of("audit.broker-7", "main.broker-1", "main.broker-2"), listener.getFilterChainsList().stream().map(FilterChain::getName).toList());
        assertFalse(listener.hasDefaultFilterChain());
        assertChainMatch(listener.getFilterChains(0), "fd00::7", 128, 9093);
        assertChainMatch(listener.getFilterChains(1), "10.0.0.1", 32, 9092);
        assertChainMatch(listener.getFilterChains(2), "10.0.0.2", 32, 9092);
    }

    private static void assertChainMatch(FilterChain chain, String address, int prefixLen, int port) {
        assertEquals(port, chain.getFilterChainMatch().getDestinationPort().getValue(), chain.getName());
        List<CidrRange> ranges = chain.getFilterChainMatch().getPrefixRangesList();
        assertEquals(1, ranges.size(), chain.getName());
        assertEquals(address, ranges.getFirst().getAddressPrefix(), chain.getName());
        assertEquals(prefixLen, ranges.getFirst().getPrefixLen().getValue(), chain.getName());
    }

    @Test
    void givenTransparentChain_whenResourcesAreGenerated_thenExtProcFailsClosedBeforeTcpProxyToTheOriginalDestination() throws Exception {
        Listener listener = transparentListener(resources(MESH, "go-app"));

        for (FilterChain chain : listener.getFilterChainsList()) {
            assertEquals(List.of("envoy.filters.network.ext_proc", "envoy.filters.network.tcp_proxy"),
                    chain.getFiltersList().stream().map(Filter::getName).toList(), chain.getName());
            TypedStruct typed = chain.getFilters(0).getTypedConfig().unpack(TypedStruct.class);
            assertEquals(ExtProcSettings.NETWORK_EXT_PROC_TYPE, typed.getTypeUrl());
            Struct extProc = typed.getValue();
            assertFalse(extProc.getFieldsOrThrow("failure_mode_allow").getBoolValue(), chain.getName());
            Struct mode = extProc.getFieldsOrThrow("processing_mode").getStructValue();
            assertEquals("STREAMED", mode.getFieldsOrThrow("process_read").getStringValue());
            assertEquals("STREAMED", mode.getFieldsOrThrow("process_write").getStringValue());
            assertEquals("5s", extProc.getFieldsOrThrow("message_timeout").getStringValue());
            assertEquals("filter_service", extProc.getFieldsOrThrow("grpc_service").getStructValue()
                    .getFieldsOrThrow("envoy_grpc").getStructValue().getFieldsOrThrow("cluster_name").getStringValue());
            String statPrefix = "kafka_transparent_" + chain.getName().replace(".broker-", "_broker_");
            assertEquals(statPrefix, extProc.getFieldsOrThrow("stat_prefix").getStringValue());

            TcpProxy tcpProxy = chain.getFilters(1).getTypedConfig().unpack(TcpProxy.class);
            assertEquals("original_destination", tcpProxy.getCluster(), chain.getName());
            assertEquals(statPrefix, tcpProxy.getStatPrefix());
        }
    }

    @Test
    void givenTransparentSidecar_whenResourcesAreGenerated_thenOneOriginalDstClusterAndOneFilterServiceCluster() throws Exception {
        Resources resources = resources(MESH, "go-app");

        List<Cluster> original = resources.clusters().stream().filter(c -> c.getName().equals("original_destination")).toList();
        assertEquals(1, original.size());
        assertEquals(Cluster.DiscoveryType.ORIGINAL_DST, original.getFirst().getType());
        assertEquals(Cluster.LbPolicy.CLUSTER_PROVIDED, original.getFirst().getLbPolicy());
        assertEquals(5, original.getFirst().getConnectTimeout().getSeconds());
        assertFalse(original.getFirst().hasLoadAssignment(), "ORIGINAL_DST takes its endpoint from the connection");
        List<Cluster> filterService = resources.clusters().stream().filter(c -> c.getName().equals("filter_service")).toList();
        assertEquals(1, filterService.size(), "the sidecar's filter_service cluster is shared with its explicit Kafka listeners");
        assertEquals(resources.clusters().size(), resources.clusters().stream().map(Cluster::getName).distinct().count(), "cluster names unique");
        // the explicit listeners are still there, next to the transparent one
        assertEquals(List.of("kafka_main_bootstrap", "kafka_main_broker_1", "kafka_main_broker_2", "kafka_transparent"),
                resources.listeners().stream().map(Listener::getName).toList());
    }

    @Test
    void givenKafkaSidecar_whenResourcesAreGenerated_thenEveryKafkaListenerAndUpstreamReadsAtMostOneMebibyte() throws Exception {
        Resources resources = resources(MESH, "go-app");

        // one socket read is one ext_proc message: smaller limits multiply the messages per Kafka batch
        assertEquals(List.of("kafka_main_bootstrap", "kafka_main_broker_1", "kafka_main_broker_2", "kafka_transparent"),
                resources.listeners().stream().map(Listener::getName).toList());
        for (Listener listener : resources.listeners()) {
            assertEquals(1 << 20, listener.getPerConnectionBufferLimitBytes().getValue(), listener.getName());
        }
        List<Cluster> kafka = resources.clusters().stream()
                .filter(c -> c.getName().startsWith("kafka_") || c.getName().equals("original_destination")).toList();
        assertEquals(List.of("kafka_main_bootstrap", "kafka_main_broker_1", "kafka_main_broker_2", "original_destination"),
                kafka.stream().map(Cluster::getName).sorted().toList());
        for (Cluster cluster : kafka) {
            assertEquals(1 << 20, cluster.getPerConnectionBufferLimitBytes().getValue(), cluster.getName());
        }
    }

    @Test
    void givenKafkaSidecar_whenResourcesAreGenerated_thenTheFilterServiceClusterOpensItsHttp2WindowsForMultiMegabyteBatches() throws Exception {
        Cluster filterService = resources(MESH, "plain").clusters().stream()
                .filter(c -> c.getName().equals("filter_service")).findFirst().orElseThrow();

        Http2ProtocolOptions h2 = filterService.getTypedExtensionProtocolOptionsOrThrow("envoy.extensions.upstreams.http.v3.HttpProtocolOptions")
                .unpack(HttpProtocolOptions.class).getExplicitHttpConfig().getHttp2ProtocolOptions();
        assertEquals(64 << 20, h2.getInitialStreamWindowSize().getValue());
        assertEquals(256 << 20, h2.getInitialConnectionWindowSize().getValue());
    }

    @Test
    void givenSidecarWithoutTransparent_whenResourcesAreGenerated_thenItHasNoTransparentListenerOrCluster() throws Exception {
        Resources resources = resources(MESH, "plain");

        assertFalse(resources.listeners().stream().anyMatch(l -> l.getName().equals("kafka_transparent")));
        assertFalse(resources.clusters().stream().anyMatch(c -> c.getName().equals("original_destination")));
    }

    @Test
    void givenTheClustersListedInAnotherOrder_whenResourcesAreGenerated_thenTheListenerIsTheSame() throws Exception {
        Resources reordered = resources(MESH.replace("kafka: [main, audit]", "kafka: [audit, main]"), "go-app");

        assertEquals(transparentListener(resources(MESH, "go-app")), transparentListener(reordered),
                "no listener update (and no drained connections) for reordering the list");
    }

    private static String listenerMapHeader(FilterChain chain) throws Exception {
        return initialMetadata(chain).get(io.meshcrypt.meshconfig.BrokerListenersHeader.NAME);
    }

    /** The ext_proc stream's initial metadata, key to value, in order. */
    private static Map<String, String> initialMetadata(FilterChain chain) throws Exception {
        Struct grpc = chain.getFilters(0).getTypedConfig().unpack(TypedStruct.class).getValue()
                .getFieldsOrThrow("grpc_service").getStructValue();
        Map<String, String> headers = new LinkedHashMap<>();
        for (com.google.protobuf.Value entry : grpc.getFieldsOrThrow("initial_metadata").getListValue().getValuesList()) {
            Struct header = entry.getStructValue();
            headers.put(header.getFieldsOrThrow("key").getStringValue(), header.getFieldsOrThrow("value").getStringValue());
        }
        return headers;
    }

    @Test
    void givenKafkaAndTransparentChains_whenResourcesAreGenerated_thenEachStreamNamesTheSidecarNodeAndAsksForTheClientAddress()
            throws Exception {
        Resources resources = resources(MESH, "go-app");

        List<FilterChain> chains = resources.listeners().stream().flatMap(l -> l.getFilterChainsList().stream())
                .filter(c -> c.getFilters(0).getName().equals("envoy.filters.network.ext_proc")).toList();
        assertFalse(chains.isEmpty());
        for (FilterChain chain : chains) {
            Map<String, String> headers = initialMetadata(chain);
            assertEquals(List.of(io.meshcrypt.meshconfig.BrokerListenersHeader.NAME, "x-meshcrypt-sidecar-node",
                    "x-meshcrypt-client-address"), List.copyOf(headers.keySet()), chain.getName());
            assertEquals("go-app", headers.get("x-meshcrypt-sidecar-node"), chain.getName());
            // evaluated by Envoy against the proxied connection when it opens the stream
            assertEquals("%DOWNSTREAM_REMOTE_ADDRESS%", headers.get("x-meshcrypt-client-address"), chain.getName());
        }
    }

    @Test
    void givenTwoSidecarsOfOneCluster_whenResourcesAreGenerated_thenEachExtProcStreamNamesItsOwnSidecarsBrokerListeners() throws Exception {
        for (String node : List.of("go-app", "plain")) {
            String expected = node.equals("go-app") ? "1=127.0.0.1:19193,2=127.0.0.1:19194" : "1=127.0.0.1:29193,2=127.0.0.1:29194";
            List<Listener> explicit = resources(MESH, node).listeners().stream().filter(l -> !l.getName().equals("kafka_transparent")).toList();

            assertEquals(List.of("kafka_main_bootstrap", "kafka_main_broker_1", "kafka_main_broker_2"), explicit.stream().map(Listener::getName).toList());
            for (Listener listener : explicit) {
                assertEquals(expected, listenerMapHeader(listener.getFilterChains(0)), node + " " + listener.getName());
            }
        }
    }

    @Test
    void givenTransparentChain_whenResourcesAreGenerated_thenItsStreamAsksForBrokerAddressesUnchanged() throws Exception {
        for (FilterChain chain : transparentListener(resources(MESH, "go-app")).getFilterChainsList()) {
            assertEquals("none", listenerMapHeader(chain), chain.getName());
        }
    }

    @Test
    void givenBrokerListenerWithAnAdvertisedAddress_whenResourcesAreGenerated_thenEnvoyBindsOneAndTheStreamNamesTheOther() throws Exception {
        Resources resources = resources(MESH.replace("2: 127.0.0.1:29194", "2: {listen: 0.0.0.0:29194, advertise: kafka.plain.local:9094}"), "plain");
        Listener broker2 = resources.listeners().stream().filter(l -> l.getName().equals("kafka_main_broker_2")).findFirst().orElseThrow();

        assertEquals("0.0.0.0", broker2.getAddress().getSocketAddress().getAddress());
        assertEquals("1=127.0.0.1:29193,2=kafka.plain.local:9094", listenerMapHeader(broker2.getFilterChains(0)));
    }
}
