package io.meshcrypt.xds.snapshot;

import static io.meshcrypt.xds.snapshot.StructValues.string;
import static io.meshcrypt.xds.snapshot.StructValues.struct;
import static io.meshcrypt.xds.snapshot.StructValues.structValue;

import com.github.xds.type.v3.TypedStruct;
import com.google.protobuf.Any;
import com.google.protobuf.BoolValue;
import com.google.protobuf.Duration;
import com.google.protobuf.ListValue;
import com.google.protobuf.UInt32Value;
import com.google.protobuf.Value;
import io.envoyproxy.envoy.config.cluster.v3.CircuitBreakers;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.cluster.v3.OutlierDetection;
import io.envoyproxy.envoy.config.core.v3.Address;
import io.envoyproxy.envoy.config.core.v3.CidrRange;
import io.envoyproxy.envoy.config.core.v3.DataSource;
import io.envoyproxy.envoy.config.core.v3.HealthCheck;
import io.envoyproxy.envoy.config.core.v3.Http2ProtocolOptions;
import io.envoyproxy.envoy.config.core.v3.Metadata;
import io.envoyproxy.envoy.config.core.v3.Pipe;
import io.envoyproxy.envoy.config.core.v3.RoutingPriority;
import io.envoyproxy.envoy.config.core.v3.SocketAddress;
import io.envoyproxy.envoy.config.core.v3.TransportSocket;
import io.envoyproxy.envoy.config.core.v3.WatchedDirectory;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.endpoint.v3.Endpoint;
import io.envoyproxy.envoy.config.endpoint.v3.LbEndpoint;
import io.envoyproxy.envoy.config.endpoint.v3.LocalityLbEndpoints;
import io.envoyproxy.envoy.config.listener.v3.Filter;
import io.envoyproxy.envoy.config.listener.v3.FilterChain;
import io.envoyproxy.envoy.config.listener.v3.FilterChainMatch;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.config.listener.v3.ListenerFilter;
import io.envoyproxy.envoy.config.route.v3.Route;
import io.envoyproxy.envoy.config.route.v3.RouteAction;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.config.route.v3.RouteMatch;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import io.envoyproxy.envoy.extensions.filters.http.router.v3.Router;
import io.envoyproxy.envoy.extensions.filters.listener.original_dst.v3.OriginalDst;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.PathWithEscapedSlashesAction;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter;
import io.envoyproxy.envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.CommonTlsContext;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.Secret;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.SubjectAltNameMatcher;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.TlsCertificate;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext;
import io.envoyproxy.envoy.extensions.upstreams.http.v3.HttpProtocolOptions;
import io.envoyproxy.envoy.extensions.upstreams.http.v3.HttpProtocolOptions.ExplicitHttpConfig;
import io.envoyproxy.envoy.type.matcher.v3.StringMatcher;
import io.meshcrypt.meshconfig.BrokerListenersHeader;
import io.meshcrypt.meshconfig.mesh.Mesh;
import io.meshcrypt.meshconfig.mesh.Mesh.HttpListener;
import io.meshcrypt.meshconfig.mesh.Mesh.KafkaCluster;
import io.meshcrypt.meshconfig.mesh.Mesh.KafkaListeners;
import io.meshcrypt.meshconfig.mesh.Mesh.Sidecar;
import io.meshcrypt.meshconfig.mesh.Mesh.Transparent;
import io.meshcrypt.xds.snapshot.ExtProcSettings.BridgeTls;
import io.meshcrypt.xds.snapshot.ExtProcSettings.KafkaFilter;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * The Envoy resources of one sidecar. Kafka: per Kafka cluster a bootstrap listener and one listener per broker,
 * each running network ext_proc (to the filter-service) before tcp_proxy, plus their upstream clusters and the
 * filter-service's HTTP/2 cluster. HTTP: per inbound HTTP listener an HTTP connection manager running HTTP ext_proc
 * (to the same filter-service) before the router, and the application's cluster. Transparent Kafka: one original_dst
 * listener with a filter chain per intercepted broker (network ext_proc, then tcp_proxy to the address the
 * application dialled). Each is a {@link Contributor}. TLS on the Kafka hops (a Kafka cluster's or a listener's
 * {@code tls:}): {@link TlsResources}.
 */
public final class EnvoyResources {

    public static final String FILTER_SERVICE_CLUSTER = "filter_service";
    /** The SDS secret holding a sidecar's client certificate towards the filter-service (mesh {@code tls:}). */
    public static final String CLIENT_CERTIFICATE_SECRET = "sidecar_client_certificate";
    /**
     * A cluster without endpoints that no route uses, whose metadata is the mesh version. Every mesh change thus
     * changes one resource of every sidecar, so with delta xDS, too, each Envoy receives, acknowledges and shows
     * (CDS version, /config_dump) the current mesh version even when its listeners did not change. Updating an
     * unused cluster touches no connection.
     */
    public static final String VERSION_CLUSTER = "meshcrypt_mesh_version";
    /** The transparent listener, where iptables REDIRECTs the application's connections. */
    public static final String TRANSPARENT_LISTENER = "kafka_transparent";
    /** tcp_proxy's upstream on the transparent listener: the address the application dialled. */
    public static final String ORIGINAL_DESTINATION_CLUSTER = "original_destination";
    static final String ORIGINAL_DST_FILTER = "envoy.filters.listener.original_dst";
    static final String BROKER_LISTENERS_HEADER = BrokerListenersHeader.NAME;
    /**
     * The downstream client's address on the ext_proc stream, for the filter-service's connection-end line (its
     * {@code StreamHeaders.CLIENT_ADDRESS}). Envoy evaluates the formatter in {@code initial_metadata} against the
     * proxied connection when it opens the stream.
     */
    static final String CLIENT_ADDRESS_HEADER = "x-meshcrypt-client-address";
    static final String CLIENT_ADDRESS_FORMAT = "%DOWNSTREAM_REMOTE_ADDRESS%";
    /** The sidecar's node id, as its xDS config names it (the filter-service's {@code StreamHeaders.SIDECAR_NODE}). */
    static final String SIDECAR_NODE_HEADER = "x-meshcrypt-sidecar-node";
    static final Pattern IP_LITERAL = Pattern.compile("[0-9.]+|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*");

    /**
     * Adds one protocol's resources for a sidecar. The extension point for HTTP: an HTTP contributor adds its
     * listeners (HTTP connection manager with HTTP ext_proc and routes) and upstream clusters; it may reuse
     * {@link #FILTER_SERVICE_CLUSTER}, which every sidecar gets.
     */
    @FunctionalInterface
    public interface Contributor {
        /** @param secrets SDS secrets the listeners and clusters refer to */
        void contribute(Mesh mesh, Sidecar sidecar, List<Listener> listeners, List<Cluster> clusters, List<Secret> secrets);
    }

    /**
     * @param listeners and clusters, each in a stable order
     * @param secrets SDS secrets the listeners and clusters refer to (certificate files), by name order
     */
    public record Resources(List<Listener> listeners, List<Cluster> clusters, List<Secret> secrets) {
        public Resources {
            listeners = List.copyOf(listeners);
            clusters = List.copyOf(clusters);
            secrets = List.copyOf(secrets);
        }

        public Resources(List<Listener> listeners, List<Cluster> clusters) {
            this(listeners, clusters, List.of());
        }
    }

    private final List<Contributor> contributors;

    public EnvoyResources(List<Contributor> contributors) {
        this.contributors = List.copyOf(contributors);
    }

    /**
     * Kafka, HTTP and transparent Kafka: everything the mesh file describes, Kafka through the filter the xDS server's
     * environment names ({@link KafkaFilter#SWITCH}).
     */
    public static EnvoyResources standard() {
        return standard(KafkaFilter.parse(System.getenv(KafkaFilter.SWITCH)));
    }

    /** {@link #standard()}, Kafka connections streamed to the filter-service by {@code kafkaFilter}. */
    public static EnvoyResources standard(KafkaFilter kafkaFilter) {
        return new EnvoyResources(List.of(
                (mesh, sidecar, listeners, clusters, secrets) -> kafka(mesh, sidecar, listeners, clusters, secrets, kafkaFilter),
                EnvoyResources::http,
                (mesh, sidecar, listeners, clusters, secrets) -> transparent(mesh, sidecar, listeners, clusters, secrets, kafkaFilter)));
    }

    /** @param version the mesh version, carried by the {@link #VERSION_CLUSTER} beacon */
    public Resources forSidecar(Mesh mesh, Sidecar sidecar, String version) {
        List<Listener> listeners = new ArrayList<>();
        List<Cluster> clusters = new ArrayList<>();
        clusters.add(versionBeacon(version));
        Cluster filterService = filterServiceCluster(sidecar.filterServices());
        List<Secret> secrets = new ArrayList<>();
        // a Unix socket's file permissions authenticate both ends: no TLS on that hop (docs/xds.md)
        if (mesh.tls().isPresent() && !sidecar.onUnixSockets()) {
            filterService = filterService.toBuilder().setTransportSocket(filterServiceTls(mesh.tls().get())).build();
            secrets.add(clientCertificate(mesh.tls().get(), sidecar.nodeId()));
        }
        clusters.add(filterService);
        for (Contributor c : contributors) {
            c.contribute(mesh, sidecar, listeners, clusters, secrets);
        }
        secrets.sort(Comparator.comparing(Secret::getName));
        return new Resources(listeners, clusters, secrets);
    }

    static void kafka(Mesh mesh, Sidecar sidecar, List<Listener> listeners, List<Cluster> clusters, List<Secret> secrets,
                      KafkaFilter kafkaFilter) {
        KafkaProcessing processing = KafkaProcessing.of(kafkaFilter, mesh, sidecar);
        for (KafkaListeners k : new TreeMap<>(sidecar.kafka()).values()) {
            KafkaCluster cluster = mesh.kafkaClusters().get(k.cluster());
            String bootstrap = "kafka_" + k.cluster() + "_bootstrap";
            String listenerMap = BrokerListenersHeader.write(k.advertised());
            Optional<TransportSocket> fromClients = k.tls().map(files -> {
                secrets.add(TlsResources.certificate(TlsResources.listenerCertificateSecret(k.cluster()), files));
                return TlsResources.downstream(k.cluster());
            });
            listeners.add(kafkaListener(bootstrap, k.bootstrap(), listenerMap, processing, fromClients));
            Cluster bootstrapCluster = kafkaUpstream(bootstrap, new TreeMap<>(cluster.brokers()).values().stream().toList());
            clusters.add(cluster.tls().map(tls -> TlsResources.bootstrap(bootstrapCluster, cluster, tls)).orElse(bootstrapCluster));
            for (Map.Entry<Integer, Mesh.Address> b : new TreeMap<>(k.brokers()).entrySet()) {
                String name = brokerClusterName(k.cluster(), b.getKey());
                listeners.add(kafkaListener(name, b.getValue(), listenerMap, processing, fromClients));
                addOnce(clusters, brokerCluster(cluster, b.getKey(), secrets));
            }
        }
    }

    static String brokerClusterName(String cluster, int id) {
        return "kafka_" + cluster + "_broker_" + id;
    }

    /**
     * The cluster of one broker, with TLS if its Kafka cluster has {@code tls:} (then the client certificate's
     * secret, if any, is added to {@code secrets}). Explicit and transparent listeners share it.
     */
    static Cluster brokerCluster(KafkaCluster cluster, int id, List<Secret> secrets) {
        Cluster plain = kafkaUpstream(brokerClusterName(cluster.name(), id), List.of(cluster.brokers().get(id)));
        if (cluster.tls().isEmpty()) {
            return plain;
        }
        Mesh.BrokerTls tls = cluster.tls().get();
        tls.clientCertificate().ifPresent(files ->
                addOnce(secrets, TlsResources.certificate(TlsResources.clientCertificateSecret(cluster.name()), files)));
        return plain.toBuilder().setTransportSocket(TlsResources.upstream(cluster, tls, id)).build();
    }

    /** Adds {@code item} unless an equal one is there: a resource two listeners need is served once. */
    static <T> void addOnce(List<T> list, T item) {
        if (!list.contains(item)) {
            list.add(item);
        }
    }

    /**
     * network ext_proc (every byte, both directions, to the filter-service; fail closed) then tcp_proxy; with
     * {@code fromClients}, TLS from the application ends in the transport socket, before ext_proc.
     */
    static Listener kafkaListener(String name, Mesh.Address address, String listenerMap, KafkaProcessing processing,
                                  Optional<TransportSocket> fromClients) {
        FilterChain.Builder chain = kafkaFilterChain(name, name, listenerMap, processing);
        fromClients.ifPresent(chain::setTransportSocket);
        return Listener.newBuilder()
                .setName(name)
                .setAddress(socket(address))
                .setPerConnectionBufferLimitBytes(UInt32Value.of(ExtProcSettings.KAFKA_BUFFER_LIMIT))
                .addFilterChains(chain)
                .build();
    }

    /**
     * The filter that streams every byte of a Kafka connection, both directions, to the filter-service (fail closed),
     * then tcp_proxy to {@code upstream}. The stream carries {@code listenerMap} as {@value #BROKER_LISTENERS_HEADER},
     * and for the connection-end line the sidecar's node id and the client's address.
     */
    static FilterChain.Builder kafkaFilterChain(String statPrefix, String upstream, String listenerMap, KafkaProcessing processing) {
        TcpProxy tcpProxy = TcpProxy.newBuilder().setStatPrefix(statPrefix).setCluster(upstream).build();
        return FilterChain.newBuilder()
                .addFilters(processing.filter(statPrefix, listenerMap))
                .addFilters(Filter.newBuilder().setName("envoy.filters.network.tcp_proxy").setTypedConfig(Any.pack(tcpProxy)));
    }

    /**
     * How one sidecar's Kafka connections reach the filter-service: Envoy's network ext_proc through the
     * {@link #FILTER_SERVICE_CLUSTER}, or the bridge module ({@link KafkaFilter#BRIDGE}) dialling {@code filterService}
     * itself. Both send the same request headers.
     */
    record KafkaProcessing(KafkaFilter kind, String nodeId, Mesh.FilterServiceAddress filterService, Optional<Mesh.Tls> tls) {

        /**
         * @throws IllegalArgumentException for the bridge and a sidecar with several filter-service replicas or a Unix
         *     socket
         */
        static KafkaProcessing of(KafkaFilter kind, Mesh mesh, Sidecar sidecar) {
            if (kind == KafkaFilter.BRIDGE && sidecar.filterServices().size() > 1) {
                // the module dials one address itself, without Envoy's load balancing and health checks
                throw new IllegalArgumentException("sidecar " + sidecar.nodeId() + ": " + KafkaFilter.SWITCH
                        + "=bridge dials one filter-service address, not a list of replicas; put one address (a"
                        + " Service in front of the replicas) in filterService");
            }
            if (kind == KafkaFilter.BRIDGE && sidecar.filterServices().getFirst() instanceof Mesh.UnixSocket socket) {
                // the module dials TCP (optionally TLS) itself; it has no Unix socket transport
                throw new IllegalArgumentException("sidecar " + sidecar.nodeId() + ": " + KafkaFilter.SWITCH
                        + "=bridge dials a filter-service host:port, not a Unix socket (" + socket + "); use Envoy's"
                        + " network ext_proc (the default) or a host:port filterService");
            }
            return new KafkaProcessing(kind, sidecar.nodeId(), sidecar.filterServices().getFirst(), mesh.tls());
        }

        /** The request headers of every stream, in order: each a (name, value), the value maybe a formatter. */
        List<Map.Entry<String, String>> streamHeaders(String listenerMap) {
            return List.of(Map.entry(BROKER_LISTENERS_HEADER, listenerMap), Map.entry(SIDECAR_NODE_HEADER, nodeId),
                    Map.entry(CLIENT_ADDRESS_HEADER, CLIENT_ADDRESS_FORMAT));
        }

        Filter filter(String statPrefix, String listenerMap) {
            return kind == KafkaFilter.BRIDGE ? bridge(listenerMap) : extProc(statPrefix, listenerMap);
        }

        private Filter extProc(String statPrefix, String listenerMap) {
            ListValue.Builder metadata = ListValue.newBuilder();
            for (Map.Entry<String, String> h : streamHeaders(listenerMap)) {
                metadata.addValues(structValue(Map.of("key", string(h.getKey()), "value", string(h.getValue()))));
            }
            // envoy_grpc, not google_grpc: google_grpc cost Envoy +1 us/record each way (its own threads and copies), and
            // it can check neither the filter-service's SPIFFE id nor take a rotated certificate by SDS
            Value grpcService = structValue(Map.of(
                    "envoy_grpc", structValue(Map.of("cluster_name", string(FILTER_SERVICE_CLUSTER))),
                    "initial_metadata", Value.newBuilder().setListValue(metadata).build()));
            // The 1.0.49 protos predate stat_prefix, which Envoy 1.35+ requires: a TypedStruct carries the config as
            // JSON, and Envoy converts it with its own (current) descriptor.
            return typed("envoy.filters.network.ext_proc", ExtProcSettings.NETWORK_EXT_PROC_TYPE,
                    ExtProcSettings.kafkaFilter(statPrefix, grpcService));
        }

        /**
         * The 1.0.49 protos have no dynamic_modules filter either: a TypedStruct again. With mesh {@code tls:}, the
         * module gets the files and SPIFFE id {@link #filterServiceTls} and {@link #clientCertificate} give Envoy.
         */
        private Filter bridge(String listenerMap) {
            Optional<BridgeTls> bridgeTls = tls.map(t -> new BridgeTls(
                    t.sidecarCertificate(nodeId), t.sidecarPrivateKey(nodeId), t.trustedCa(), t.filterService()));
            return typed(ExtProcSettings.DYNAMIC_MODULES_FILTER, ExtProcSettings.DYNAMIC_MODULES_TYPE,
                    ExtProcSettings.kafkaBridge(filterService.toString(), streamHeaders(listenerMap), bridgeTls));
        }

        private static Filter typed(String name, String typeUrl, com.google.protobuf.Struct config) {
            TypedStruct typed = TypedStruct.newBuilder().setTypeUrl(typeUrl).setValue(config).build();
            return Filter.newBuilder().setName(name).setTypedConfig(Any.pack(typed)).build();
        }
    }

    static void transparent(Mesh mesh, Sidecar sidecar, List<Listener> listeners, List<Cluster> clusters, List<Secret> secrets,
                            KafkaFilter kafkaFilter) {
        if (sidecar.transparent().isEmpty()) {
            return;
        }
        Transparent transparent = sidecar.transparent().get();
        listeners.add(transparentListener(mesh, transparent, KafkaProcessing.of(kafkaFilter, mesh, sidecar)));
        for (String name : transparent.kafkaClusters().stream().sorted().toList()) {
            KafkaCluster cluster = mesh.kafkaClusters().get(name);
            if (cluster.tls().isPresent()) {
                for (Integer id : new TreeMap<>(cluster.brokers()).keySet()) {
                    addOnce(clusters, brokerCluster(cluster, id, secrets));
                }
            }
        }
        if (transparent.kafkaClusters().stream().anyMatch(name -> mesh.kafkaClusters().get(name).tls().isEmpty())) {
            clusters.add(Cluster.newBuilder()
                    .setName(ORIGINAL_DESTINATION_CLUSTER)
                    .setType(Cluster.DiscoveryType.ORIGINAL_DST)
                    .setLbPolicy(Cluster.LbPolicy.CLUSTER_PROVIDED)
                    .setConnectTimeout(Duration.newBuilder().setSeconds(5))
                    .setPerConnectionBufferLimitBytes(UInt32Value.of(ExtProcSettings.KAFKA_BUFFER_LIMIT))
                    .build());
        }
    }

    /**
     * The transparent-mode listener (iptables REDIRECT, envoy/transparent/iptables-init.sh): the original_dst listener filter restores the address
     * the application dialled (SO_ORIGINAL_DST, set by the iptables REDIRECT), and each intercepted broker has a
     * filter chain matching exactly that address (chains ordered by cluster name, then node id). Fail closed: a
     * destination without a chain (anything else the application dials, or a connection made straight to this
     * listener, whose "original" destination is the listener itself) is refused, never passed through or looped.
     * The chains of a {@code tls:} Kafka cluster go to that broker's own cluster instead of the original destination:
     * its TLS socket needs the broker's name, which an ORIGINAL_DST cluster, one for every destination, cannot have.
     */
    static Listener transparentListener(Mesh mesh, Transparent transparent, KafkaProcessing processing) {
        Listener.Builder listener = Listener.newBuilder()
                .setName(TRANSPARENT_LISTENER)
                .setAddress(socket(transparent.listen()))
                .setPerConnectionBufferLimitBytes(UInt32Value.of(ExtProcSettings.KAFKA_BUFFER_LIMIT))
                .addListenerFilters(ListenerFilter.newBuilder().setName(ORIGINAL_DST_FILTER)
                        .setTypedConfig(Any.pack(OriginalDst.getDefaultInstance())));
        for (String name : transparent.kafkaClusters().stream().sorted().toList()) {
            KafkaCluster cluster = mesh.kafkaClusters().get(name);
            for (Map.Entry<Integer, Mesh.Address> b : new TreeMap<>(cluster.brokers()).entrySet()) {
                Mesh.Address broker = b.getValue();
                FilterChainMatch match = FilterChainMatch.newBuilder()
                        .setDestinationPort(UInt32Value.of(broker.port()))
                        .addPrefixRanges(CidrRange.newBuilder()
                                .setAddressPrefix(broker.host())
                                .setPrefixLen(UInt32Value.of(broker.host().indexOf(':') >= 0 ? 128 : 32)))
                        .build();
                String upstream = cluster.tls().isPresent() ? brokerClusterName(name, b.getKey()) : ORIGINAL_DESTINATION_CLUSTER;
                // transparent: clients keep the brokers' real addresses (their connections are intercepted too)
                listener.addFilterChains(kafkaFilterChain(TRANSPARENT_LISTENER + "_" + name + "_broker_" + b.getKey(),
                                upstream, BrokerListenersHeader.NONE, processing)
                        .setName(name + ".broker-" + b.getKey())
                        .setFilterChainMatch(match));
            }
        }
        return listener.build();
    }

    static void http(Mesh mesh, Sidecar sidecar, List<Listener> listeners, List<Cluster> clusters, List<Secret> secrets) {
        for (HttpListener h : new TreeMap<>(sidecar.http()).values()) {
            String name = "http_" + h.name();
            String app = name + "_app";
            listeners.add(httpListener(name, h.listen(), app));
            clusters.add(upstream(app, List.of(h.upstream())).toBuilder()
                    .setConnectTimeout(Duration.newBuilder().setSeconds(2))
                    // responses are buffered for ext_proc against this limit, as requests against the listener's
                    .setPerConnectionBufferLimitBytes(UInt32Value.of(ExtProcSettings.HTTP_BUFFER_LIMIT))
                    .build());
        }
    }

    /**
     * The xDS form of envoy/http-sidecar.yaml.template: HTTP connection manager (path normalised, so that
     * {@code /a/../orders} cannot dodge a rule matching {@code /orders}), HTTP ext_proc failing closed, router.
     */
    static Listener httpListener(String name, Mesh.Address address, String appCluster) {
        RouteConfiguration routes = RouteConfiguration.newBuilder()
                .setName(name)
                .addVirtualHosts(VirtualHost.newBuilder()
                        .setName(name)
                        .addDomains("*")
                        .addRoutes(Route.newBuilder()
                                .setMatch(RouteMatch.newBuilder().setPrefix("/"))
                                .setRoute(RouteAction.newBuilder().setCluster(appCluster).setTimeout(Duration.newBuilder().setSeconds(30)))))
                .build();
        HttpConnectionManager hcm = HttpConnectionManager.newBuilder()
                .setStatPrefix(name)
                .setNormalizePath(BoolValue.of(true))
                .setMergeSlashes(true)
                .setPathWithEscapedSlashesAction(PathWithEscapedSlashesAction.REJECT_REQUEST)
                .setRouteConfig(routes)
                .addHttpFilters(HttpFilter.newBuilder().setName("envoy.filters.http.ext_proc").setTypedConfig(Any.pack(ExtProcSettings.httpFilter(FILTER_SERVICE_CLUSTER))))
                .addHttpFilters(HttpFilter.newBuilder().setName("envoy.filters.http.router").setTypedConfig(Any.pack(Router.getDefaultInstance())))
                .build();
        return Listener.newBuilder()
                .setName(name)
                .setAddress(socket(address))
                .setPerConnectionBufferLimitBytes(UInt32Value.of(ExtProcSettings.HTTP_BUFFER_LIMIT))
                .addFilterChains(FilterChain.newBuilder()
                        .addFilters(Filter.newBuilder().setName("envoy.filters.network.http_connection_manager").setTypedConfig(Any.pack(hcm))))
                .build();
    }

    static Cluster versionBeacon(String version) {
        return Cluster.newBuilder()
                .setName(VERSION_CLUSTER)
                .setType(Cluster.DiscoveryType.STATIC)
                .setConnectTimeout(Duration.newBuilder().setSeconds(1))
                .setLoadAssignment(ClusterLoadAssignment.newBuilder().setClusterName(VERSION_CLUSTER))
                .setMetadata(Metadata.newBuilder().putFilterMetadata("meshcrypt", struct(Map.of("version", string(version)))))
                .build();
    }

    /**
     * The sidecar's filter-service replicas, one endpoint each. Each ext_proc stream (one per Kafka connection, one
     * per HTTP request) lives on the replica it started on; a replica that dies resets only its own streams, and the
     * clients' reconnections go to the others once Envoy stops choosing it: at once when connecting to it fails
     * ({@link #REPLICA_OUTLIERS}), within a few seconds when it stops answering its gRPC health check
     * ({@link #REPLICA_HEALTH_CHECK}). Least-request balancing: streams are long-lived, so a new one goes where fewer
     * are open (a restarted replica fills up again) rather than round robin over uneven lifetimes.
     */
    static Cluster filterServiceCluster(List<Mesh.FilterServiceAddress> replicas) {
        HttpProtocolOptions h2 = HttpProtocolOptions.newBuilder()
                .setExplicitHttpConfig(ExplicitHttpConfig.newBuilder().setHttp2ProtocolOptions(Http2ProtocolOptions.newBuilder()
                        // one gRPC stream per Kafka connection, each may carry multi-MB batches: wide flow-control windows
                        // (1 MiB / 4 MiB windows spent the same CPU per record on 2.5 MB Fetch responses: the wide ones cost nothing)
                        .setInitialStreamWindowSize(UInt32Value.of(64 << 20))
                        .setInitialConnectionWindowSize(UInt32Value.of(256 << 20))))
                .build();
        // every Kafka connection holds one stream for its whole life: lift the default 1024-request circuit breaker
        CircuitBreakers.Thresholds limits = CircuitBreakers.Thresholds.newBuilder()
                .setPriority(RoutingPriority.DEFAULT)
                .setMaxConnections(UInt32Value.of(100_000))
                .setMaxPendingRequests(UInt32Value.of(100_000))
                .setMaxRequests(UInt32Value.of(100_000))
                .build();
        return filterServiceEndpoints(replicas).toBuilder()
                .setConnectTimeout(Duration.newBuilder().setSeconds(1))
                .setLbPolicy(Cluster.LbPolicy.LEAST_REQUEST)
                .addHealthChecks(REPLICA_HEALTH_CHECK)
                .setOutlierDetection(REPLICA_OUTLIERS)
                .putTypedExtensionProtocolOptions("envoy.extensions.upstreams.http.v3.HttpProtocolOptions", Any.pack(h2))
                .setCircuitBreakers(CircuitBreakers.newBuilder().addThresholds(limits))
                .build();
    }

    /**
     * host:port replicas as any {@link #upstream}; Unix sockets as STATIC {@code pipe} endpoints (Envoy connects to the
     * socket file; its mode decides whether it may).
     */
    static Cluster filterServiceEndpoints(List<Mesh.FilterServiceAddress> replicas) {
        if (!(replicas.getFirst() instanceof Mesh.UnixSocket)) {
            return upstream(FILTER_SERVICE_CLUSTER, replicas.stream().map(Mesh.Address.class::cast).toList());
        }
        LocalityLbEndpoints.Builder lb = LocalityLbEndpoints.newBuilder();
        for (Mesh.FilterServiceAddress replica : replicas) {
            Address pipe = Address.newBuilder().setPipe(Pipe.newBuilder().setPath(((Mesh.UnixSocket) replica).path().toString())).build();
            lb.addLbEndpoints(LbEndpoint.newBuilder().setEndpoint(Endpoint.newBuilder().setAddress(pipe)));
        }
        return Cluster.newBuilder()
                .setName(FILTER_SERVICE_CLUSTER)
                .setType(Cluster.DiscoveryType.STATIC)
                .setLoadAssignment(ClusterLoadAssignment.newBuilder().setClusterName(FILTER_SERVICE_CLUSTER).addEndpoints(lb))
                .build();
    }

    /**
     * The filter-service's {@code grpc.health.v1.Health} on its ext_proc port (NOT_SERVING while it is not ready,
     * e.g. its KMS unreachable): a replica failing two checks in a row gets no new streams until it passes two. Every
     * sidecar checks every replica, so a replica answers (sidecars / 3 s) checks a second: a 3 s interval, jittered so
     * that sidecars started together do not check in step, and the same interval while the cluster has no traffic
     * yet (Envoy's default there is 60 s). With one replica, or all failing, Envoy's panic mode uses them anyway: the
     * streams then fail closed as before.
     */
    static final HealthCheck REPLICA_HEALTH_CHECK = HealthCheck.newBuilder()
            .setTimeout(Duration.newBuilder().setSeconds(2))
            .setInterval(Duration.newBuilder().setSeconds(3))
            .setIntervalJitter(Duration.newBuilder().setSeconds(1))
            .setNoTrafficInterval(Duration.newBuilder().setSeconds(3))
            .setUnhealthyThreshold(UInt32Value.of(2))
            .setHealthyThreshold(UInt32Value.of(2))
            // the server as a whole (service ""): network and HTTP ext_proc share its readiness
            .setGrpcHealthCheck(HealthCheck.GrpcHealthCheck.getDefaultInstance())
            .build();

    /**
     * Passive health checking: three streams in a row failing locally (connection refused or reset, timeout) eject
     * the replica for 10 s (longer each time again), so that a replica killed between two health checks stops
     * getting the reconnecting clients at once. Errors are split: only Envoy-side failures count, never the gRPC
     * status a replica ends a stream with (it ends hostile clients' streams on purpose; they must not eject it). At
     * most half the replicas are ejected at a time.
     */
    static final OutlierDetection REPLICA_OUTLIERS = OutlierDetection.newBuilder()
            .setSplitExternalLocalOriginErrors(true)
            .setConsecutiveLocalOriginFailure(UInt32Value.of(3))
            .setEnforcingConsecutiveLocalOriginFailure(UInt32Value.of(100))
            .setEnforcingConsecutive5Xx(UInt32Value.of(0))
            .setEnforcingSuccessRate(UInt32Value.of(0))
            .setEnforcingLocalOriginSuccessRate(UInt32Value.of(0))
            .setInterval(Duration.newBuilder().setSeconds(1))
            .setBaseEjectionTime(Duration.newBuilder().setSeconds(10))
            .setMaxEjectionPercent(UInt32Value.of(50))
            .build();

    /**
     * Mutual TLS towards the filter-service: the sidecar's own certificate by SDS ({@link #CLIENT_CERTIFICATE_SECRET}),
     * the filter-service's must chain to the mesh CA and carry its SPIFFE id; ALPN h2 for gRPC.
     */
    static TransportSocket filterServiceTls(Mesh.Tls tls) {
        UpstreamTlsContext context = UpstreamTlsContext.newBuilder()
                .setCommonTlsContext(CommonTlsContext.newBuilder()
                        .addAlpnProtocols("h2")
                        .addTlsCertificateSdsSecretConfigs(TlsResources.sds(CLIENT_CERTIFICATE_SECRET))
                        .setValidationContext(CertificateValidationContext.newBuilder()
                                .setTrustedCa(DataSource.newBuilder().setFilename(tls.trustedCa().toString()))
                                .addMatchTypedSubjectAltNames(SubjectAltNameMatcher.newBuilder()
                                        .setSanType(SubjectAltNameMatcher.SanType.URI)
                                        .setMatcher(StringMatcher.newBuilder().setExact(tls.filterService().toString())))))
                .build();
        return TlsResources.socket(Any.pack(context));
    }

    /**
     * The sidecar's client certificate as file references, not bytes: Envoy reads the files itself and, watching
     * their folder, re-reads them when the launcher replaces them (rotation without restart or push).
     */
    static Secret clientCertificate(Mesh.Tls tls, String nodeId) {
        return Secret.newBuilder()
                .setName(CLIENT_CERTIFICATE_SECRET)
                .setTlsCertificate(TlsCertificate.newBuilder()
                        .setCertificateChain(DataSource.newBuilder().setFilename(tls.sidecarCertificate(nodeId).toString()))
                        .setPrivateKey(DataSource.newBuilder().setFilename(tls.sidecarPrivateKey(nodeId).toString()))
                        .setWatchedDirectory(WatchedDirectory.newBuilder().setPath(tls.sidecarFolder(nodeId).toString())))
                .build();
    }

    /** A broker's (or the bootstrap's) cluster: {@link #upstream} reading at most {@link ExtProcSettings#KAFKA_BUFFER_LIMIT}. */
    static Cluster kafkaUpstream(String name, List<Mesh.Address> endpoints) {
        return upstream(name, endpoints).toBuilder()
                .setPerConnectionBufferLimitBytes(UInt32Value.of(ExtProcSettings.KAFKA_BUFFER_LIMIT))
                .build();
    }

    /**
     * STATIC for IP literals; STRICT_DNS (re-resolved) for names, e.g. a broker's advertised host, IPv4 preferred:
     * Envoy's default (IPv6 first) turns {@code localhost} into ::1, where a broker listening on 127.0.0.1 is not.
     */
    static Cluster upstream(String name, List<Mesh.Address> endpoints) {
        boolean allIps = endpoints.stream().allMatch(a -> IP_LITERAL.matcher(a.host()).matches());
        LocalityLbEndpoints.Builder lb = LocalityLbEndpoints.newBuilder();
        for (Mesh.Address a : endpoints) {
            lb.addLbEndpoints(LbEndpoint.newBuilder().setEndpoint(Endpoint.newBuilder().setAddress(socket(a))));
        }
        Cluster.Builder cluster = Cluster.newBuilder()
                .setName(name)
                .setType(allIps ? Cluster.DiscoveryType.STATIC : Cluster.DiscoveryType.STRICT_DNS)
                .setConnectTimeout(Duration.newBuilder().setSeconds(5))
                .setLoadAssignment(ClusterLoadAssignment.newBuilder().setClusterName(name).addEndpoints(lb));
        if (!allIps) {
            cluster.setDnsLookupFamily(Cluster.DnsLookupFamily.V4_PREFERRED);
        }
        return cluster.build();
    }

    private static Address socket(Mesh.Address a) {
        return Address.newBuilder().setSocketAddress(SocketAddress.newBuilder().setAddress(a.host()).setPortValue(a.port())).build();
    }
}
