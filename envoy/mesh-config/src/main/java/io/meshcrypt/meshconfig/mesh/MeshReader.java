package io.meshcrypt.meshconfig.mesh;

import com.fasterxml.jackson.core.JsonToken;
import io.meshcrypt.meshconfig.http.HttpConfigReader;
import io.meshcrypt.meshconfig.http.HttpRules;
import io.meshcrypt.meshconfig.mesh.Mesh.Address;
import io.meshcrypt.meshconfig.mesh.Mesh.BrokerTls;
import io.meshcrypt.meshconfig.mesh.Mesh.CertificateFiles;
import io.meshcrypt.meshconfig.mesh.Mesh.FilterServiceAddress;
import io.meshcrypt.meshconfig.mesh.Mesh.HttpListener;
import io.meshcrypt.meshconfig.mesh.Mesh.KafkaCluster;
import io.meshcrypt.meshconfig.mesh.Mesh.KafkaListeners;
import io.meshcrypt.meshconfig.mesh.Mesh.Sidecar;
import io.meshcrypt.meshconfig.mesh.Mesh.TlsVersion;
import io.meshcrypt.meshconfig.mesh.Mesh.Transparent;
import io.meshcrypt.meshconfig.mesh.Mesh.UnixSocket;
import io.meshcrypt.meshconfig.policy.PolicyReader;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import io.meshcrypt.meshconfig.yaml.ConfigFields;
import io.meshcrypt.meshconfig.yaml.ConfigFields.HostPort;
import io.meshcrypt.meshconfig.yaml.YamlTree;
import io.meshcrypt.meshconfig.yaml.YamlTree.Entry;
import io.meshcrypt.meshconfig.yaml.YamlTree.Location;
import io.meshcrypt.meshconfig.yaml.YamlTree.Mapping;
import io.meshcrypt.meshconfig.yaml.YamlTree.Node;
import io.meshcrypt.meshconfig.yaml.YamlTree.Scalar;
import io.meshcrypt.meshconfig.yaml.YamlTree.Sequence;
import java.io.IOException;
import java.net.InetAddress;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * Reads and validates a mesh file. Every error names the file, line:column and field path, in the filter-service's
 * config style, e.g. {@code mesh.yaml:12:7: sidecars.app-a.kafka.main.brokers.2: broker 2 is not in kafkaClusters.main}.
 * Unknown keys are errors.
 */
public final class MeshReader {

    private static final List<String> ROOT_KEYS = List.of("filterService", "kafkaClusters", "sidecars", "policy", "http", "tls");
    private static final List<String> TLS_KEYS = List.of("trustedCa", "certificates", "filterService");
    private static final List<String> CLUSTER_KEYS = List.of("brokers", "tls");
    private static final List<String> BROKER_TLS_KEYS = List.of("trustedCa", "certificate", "privateKey", "sni", "minVersion");
    private static final List<String> LISTENER_TLS_KEYS = List.of("certificate", "privateKey");
    private static final List<String> SIDECAR_KEYS = List.of("filterService", "kafka", "http", "transparent");
    private static final List<String> TRANSPARENT_KEYS = List.of("listen", "kafka");
    private static final List<String> HTTP_KEYS = List.of("listen", "upstream");
    private static final List<String> LISTENER_KEYS = List.of("bootstrap", "brokers", "tls");
    /** Names become parts of Envoy resource names and stat prefixes. */
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,62}");
    private static final Pattern NODE_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.:/-]{0,253}");
    private static final Pattern IPV4 = Pattern.compile("(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}");
    private static final Pattern IPV6 = Pattern.compile("[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*");
    /** A DNS host name (letters, digits, hyphens; labels of at most 63), as SNI carries it. */
    private static final Pattern DNS_NAME = Pattern.compile(
            "(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*");
    private static final Location TOP = new Location(1, 1);

    private final Path file;
    private final ConfigFields reader;
    private final PolicyReader policies;
    /** Where each broker field is (by field path, e.g. kafkaClusters.main.brokers.1), for errors found later. */
    private final Map<String, Location> brokerLocations = new HashMap<>();

    private MeshReader(Path file) {
        this.file = file;
        this.reader = new ConfigFields(file);
        this.policies = new PolicyReader(reader);
    }

    public static Mesh load(Path file) throws ConfigException {
        try {
            return parse(file, Files.readAllBytes(file));
        } catch (NoSuchFileException e) {
            throw new ConfigException(file + ": mesh file not found", e);
        } catch (IOException e) {
            throw new ConfigException(file + ": cannot read mesh file: " + e, e);
        }
    }

    public static Mesh parse(Path file, byte[] yaml) throws ConfigException {
        return new MeshReader(file).read(YamlTree.parse(file.toString(), yaml));
    }

    private Mesh read(Node root) throws ConfigException {
        if (root == null) {
            throw reader.error(TOP, "", "the file is empty; kafkaClusters, sidecars and policy are required");
        }
        Mapping mapping = reader.mapping(root, "");
        reader.checkKeys(mapping, "", ROOT_KEYS);

        Entry fsEntry = mapping.entries().get("filterService");
        List<FilterServiceAddress> defaultFilterServices = fsEntry == null ? null : filterServices(fsEntry, "filterService");

        Map<String, KafkaCluster> clusters = new LinkedHashMap<>();
        Entry clustersEntry = reader.required(mapping, "kafkaClusters", "name -> {brokers: {node id: host:port}}");
        for (Entry c : named(clustersEntry, "kafkaClusters").entries().values()) {
            String path = "kafkaClusters." + c.key();
            name(c, path);
            Mapping cluster = reader.mapping(c.value(), path);
            reader.checkKeys(cluster, path + ".", CLUSTER_KEYS);
            Map<Integer, Address> brokers = brokers(reader.required(cluster, path + ".brokers", "node id -> host:port"), path + ".brokers", false);
            Entry tlsEntry = cluster.entries().get("tls");
            Optional<BrokerTls> tls = tlsEntry == null ? Optional.empty() : Optional.of(brokerTls(tlsEntry, path, brokers.keySet()));
            clusters.put(c.key(), new KafkaCluster(c.key(), brokers, tls));
        }

        Map<String, Sidecar> sidecars = new LinkedHashMap<>();
        Entry sidecarsEntry = reader.required(mapping, "sidecars", "Envoy node id -> {filterService, kafka}");
        for (Entry s : named(sidecarsEntry, "sidecars").entries().values()) {
            sidecars.put(s.key(), sidecar(s, clusters, defaultFilterServices));
        }

        Entry policyEntry = reader.required(mapping, "policy", "encrypt: [topic globs], unmatched: passthrough|reject");
        // validated here too, so an HTTP section the filter-services would refuse never reaches an Envoy either
        Entry httpEntry = mapping.entries().get("http");
        HttpRules http = httpEntry == null ? HttpRules.NONE : new HttpConfigReader(reader).http(httpEntry);
        Entry tlsEntry = mapping.entries().get("tls");
        Optional<Mesh.Tls> tls = tlsEntry == null ? Optional.empty() : Optional.of(tls(tlsEntry));
        return new Mesh(clusters, sidecars, policies.policy(policyEntry), http, tls);
    }

    private Mesh.Tls tls(Entry entry) throws ConfigException {
        Mapping tls = reader.mapping(entry.value(), "tls");
        reader.checkKeys(tls, "tls.", TLS_KEYS);
        Path trustedCa = reader.path(reader.required(tls, "tls.trustedCa", "PEM file of the mesh CA"), "tls.trustedCa");
        Path certificates = reader.path(reader.required(tls, "tls.certificates",
                "folder with sidecar-<node id>/cert.pem and key.pem"), "tls.certificates");
        Entry fsEntry = reader.required(tls, "tls.filterService", "URI SAN of the filter-service, e.g. spiffe://meshcrypt.local/filter-service");
        String value = reader.nonEmpty(fsEntry, "tls.filterService");
        URI filterService;
        try {
            filterService = new URI(value);
        } catch (URISyntaxException e) {
            throw reader.error(fsEntry.keyLocation(), "tls.filterService", "is not a valid URI (got " + ConfigFields.echo(value) + ")");
        }
        if (!filterService.isAbsolute()) {
            throw reader.error(fsEntry.keyLocation(), "tls.filterService", "must be an absolute URI such as spiffe://meshcrypt.local/filter-service"
                    + " (got " + ConfigFields.echo(value) + ")");
        }
        return new Mesh.Tls(trustedCa, certificates, filterService);
    }

    /**
     * {@code kafkaClusters.<name>.tls}: TLS the sidecars originate to the brokers.
     *
     * @param path the cluster's field path
     */
    private BrokerTls brokerTls(Entry entry, String path, Set<Integer> brokerIds) throws ConfigException {
        String tPath = path + ".tls";
        Mapping tls = named(entry, tPath);
        reader.checkKeys(tls, tPath + ".", BROKER_TLS_KEYS);
        Path trustedCa = reader.path(reader.required(tls, tPath + ".trustedCa",
                "PEM bundle the broker certificates must chain to"), tPath + ".trustedCa");
        Optional<CertificateFiles> client = certificateFiles(tls, tPath, true);

        Map<Integer, String> sni = new LinkedHashMap<>();
        Entry sniEntry = tls.entries().get("sni");
        for (Entry b : sniEntry == null ? List.<Entry>of() : named(sniEntry, tPath + ".sni").entries().values()) {
            String bPath = tPath + ".sni." + b.key();
            int id = reader.nodeId(b, bPath);
            if (!brokerIds.contains(id)) {
                throw reader.error(b.keyLocation(), bPath, "broker " + id + " is not in " + path + ".brokers");
            }
            String name = reader.nonEmpty(b, bPath);
            if (isIpLiteral(name) || !DNS_NAME.matcher(name).matches()) {
                // RFC 6066: SNI carries host names only; an IP-literal broker gets no SNI and an IP SAN check
                throw reader.error(b.keyLocation(), bPath, "must be a DNS host name (got " + ConfigFields.echo(name) + ")");
            }
            if (sni.put(id, name) != null) {
                throw reader.error(b.keyLocation(), bPath, "duplicate broker node id " + id);
            }
        }

        TlsVersion minVersion = TlsVersion.TLS_1_2;
        Entry versionEntry = tls.entries().get("minVersion");
        if (versionEntry != null) {
            minVersion = tlsVersion(versionEntry, tPath + ".minVersion");
        }
        return new BrokerTls(trustedCa, client, sni, minVersion);
    }

    /** "1.2" or "1.3"; unquoted, YAML reads them as numbers, which mean the same. */
    private TlsVersion tlsVersion(Entry entry, String path) throws ConfigException {
        if (entry.value() instanceof Scalar s && (s.token() == JsonToken.VALUE_STRING || s.token() == JsonToken.VALUE_NUMBER_FLOAT)) {
            for (TlsVersion v : TlsVersion.values()) {
                if (v.text().equals(s.value().toString())) {
                    return v;
                }
            }
        }
        throw reader.error(entry.keyLocation(), path, "must be \"1.2\" or \"1.3\" (got " + ConfigFields.describe(entry.value()) + ")");
    }

    /**
     * {@code certificate} and {@code privateKey} of a {@code tls:} mapping, relative paths resolved against the mesh
     * file's folder. Envoy reads the files, so they are not opened here (the xDS server may run on another host).
     *
     * @param optional both may be absent (empty result); either alone is an error
     */
    private Optional<CertificateFiles> certificateFiles(Mapping tls, String path, boolean optional) throws ConfigException {
        if (optional && !tls.entries().containsKey("certificate") && !tls.entries().containsKey("privateKey")) {
            return Optional.empty();
        }
        String together = optional ? "; certificate and privateKey go together" : "";
        Path certificate = reader.path(reader.required(tls, path + ".certificate", "PEM certificate chain file" + together),
                path + ".certificate");
        Path privateKey = reader.path(reader.required(tls, path + ".privateKey", "PEM private key file, owner-only (0600)" + together),
                path + ".privateKey");
        return Optional.of(new CertificateFiles(certificate, privateKey));
    }

    private Sidecar sidecar(Entry s, Map<String, KafkaCluster> clusters, List<FilterServiceAddress> defaultFilterServices) throws ConfigException {
        String path = "sidecars." + s.key();
        if (!NODE_ID.matcher(s.key()).matches()) {
            throw reader.error(s.keyLocation(), path, "node id must match " + NODE_ID.pattern());
        }
        Mapping sidecar = reader.mapping(s.value(), path);
        reader.checkKeys(sidecar, path + ".", SIDECAR_KEYS);

        Entry fsEntry = sidecar.entries().get("filterService");
        List<FilterServiceAddress> filterServices = fsEntry != null ? filterServices(fsEntry, path + ".filterService") : defaultFilterServices;
        if (filterServices == null) {
            throw reader.error(s.keyLocation(), path + ".filterService", "required field is missing (set it here or at the top level)");
        }

        // one listener address is one socket: two listeners of one sidecar on it would make Envoy reject the update
        Map<Address, String> taken = new HashMap<>();
        Map<String, KafkaListeners> kafka = new LinkedHashMap<>();
        Entry kafkaEntry = sidecar.entries().get("kafka");
        Entry httpEntry = sidecar.entries().get("http");
        Entry transparentEntry = sidecar.entries().get("transparent");
        if (kafkaEntry == null && httpEntry == null && transparentEntry == null) {
            throw reader.error(sidecar.location(), path + ".kafka", "required field is missing (Kafka cluster name -> {bootstrap, brokers};"
                    + " or http: listener name -> {listen, upstream}; or transparent: {listen, kafka: [Kafka cluster names]})");
        }
        for (Entry k : kafkaEntry == null ? List.<Entry>of() : named(kafkaEntry, path + ".kafka").entries().values()) {
            String kPath = path + ".kafka." + k.key();
            KafkaCluster cluster = clusters.get(k.key());
            if (cluster == null) {
                throw reader.error(k.keyLocation(), kPath, "no such Kafka cluster (kafkaClusters has: "
                        + String.join(", ", new TreeSet<>(clusters.keySet())) + ")");
            }
            Mapping listeners = reader.mapping(k.value(), kPath);
            reader.checkKeys(listeners, kPath + ".", LISTENER_KEYS);
            Entry bootstrapEntry = reader.required(listeners, kPath + ".bootstrap", "listener host:port");
            Address bootstrap = address(bootstrapEntry, kPath + ".bootstrap", true);
            claim(taken, bootstrap, bootstrapEntry.keyLocation(), kPath + ".bootstrap");
            Entry brokersEntry = reader.required(listeners, kPath + ".brokers", "broker node id -> listener host:port");
            Map<Integer, Address> brokers = brokers(brokersEntry, kPath + ".brokers", true);
            Map<Integer, Address> advertised = new LinkedHashMap<>();
            for (Entry b : ((Mapping) brokersEntry.value()).entries().values()) {
                int id = Integer.parseInt(b.key());
                String bPath = kPath + ".brokers." + b.key();
                Entry advertiseEntry = b.value() instanceof Mapping m ? m.entries().get("advertise") : null;
                Address advertise = advertiseEntry == null ? brokers.get(id) : address(advertiseEntry, bPath + ".advertise", false);
                if (isWildcard(advertise.host())) {
                    // the filter-service hands this address to clients in Metadata responses
                    throw reader.error(b.keyLocation(), bPath, "clients are told to connect to a broker listener's address,"
                            + " so it cannot be a wildcard (got " + advertise + "); bind a wildcard with {listen: "
                            + brokers.get(id) + ", advertise: <the address clients reach it at>}");
                }
                advertised.put(id, advertise);
                if (!cluster.brokers().containsKey(id)) {
                    throw reader.error(b.keyLocation(), kPath + ".brokers." + b.key(), "broker " + id + " is not in kafkaClusters." + k.key());
                }
                claim(taken, brokers.get(id), b.keyLocation(), kPath + ".brokers." + b.key());
            }
            for (Integer id : cluster.brokers().keySet()) {
                if (!brokers.containsKey(id)) {
                    // the filter-service closes any connection whose Metadata names a broker without a listener
                    throw reader.error(brokersEntry.keyLocation(), kPath + ".brokers", "broker " + id + " of kafkaClusters."
                            + k.key() + " has no listener; every broker needs one, or clients would bypass Envoy");
                }
            }
            Entry tlsEntry = listeners.entries().get("tls");
            Optional<CertificateFiles> tls = Optional.empty();
            if (tlsEntry != null) {
                Mapping tlsMapping = named(tlsEntry, kPath + ".tls");
                reader.checkKeys(tlsMapping, kPath + ".tls.", LISTENER_TLS_KEYS);
                tls = certificateFiles(tlsMapping, kPath + ".tls", false);
            }
            kafka.put(k.key(), new KafkaListeners(k.key(), bootstrap, brokers, advertised, tls));
        }
        if (kafkaEntry != null && kafka.isEmpty()) {
            throw reader.error(kafkaEntry.keyLocation(), path + ".kafka", "must name at least one Kafka cluster");
        }

        Map<String, HttpListener> http = new LinkedHashMap<>();
        for (Entry h : httpEntry == null ? List.<Entry>of() : named(httpEntry, path + ".http").entries().values()) {
            String hPath = path + ".http." + h.key();
            name(h, hPath);
            Mapping listener = reader.mapping(h.value(), hPath);
            reader.checkKeys(listener, hPath + ".", HTTP_KEYS);
            Entry listenEntry = reader.required(listener, hPath + ".listen", "listener host:port");
            Address listen = address(listenEntry, hPath + ".listen", true);
            claim(taken, listen, listenEntry.keyLocation(), hPath + ".listen");
            Address upstream = address(reader.required(listener, hPath + ".upstream", "application host:port"), hPath + ".upstream", false);
            http.put(h.key(), new HttpListener(h.key(), listen, upstream));
        }
        if (httpEntry != null && http.isEmpty()) {
            throw reader.error(httpEntry.keyLocation(), path + ".http", "must name at least one HTTP listener");
        }
        Optional<Transparent> transparent = Optional.empty();
        if (transparentEntry != null) {
            transparent = Optional.of(transparent(transparentEntry, path + ".transparent", clusters, taken));
        }
        return new Sidecar(s.key(), filterServices, kafka, http, transparent);
    }

    /**
     * {@code transparent: {listen, kafka: [cluster names]}}. Envoy tells the intercepted connections apart by the
     * address the application dialled (filter_chain_match on destination IP prefix and port), so every broker of the
     * named clusters needs an IP literal address, and no two of them (nor the listener itself) may share one.
     */
    private Transparent transparent(Entry entry, String path, Map<String, KafkaCluster> clusters, Map<Address, String> taken)
            throws ConfigException {
        Mapping mapping = named(entry, path);
        reader.checkKeys(mapping, path + ".", TRANSPARENT_KEYS);
        Entry listenEntry = reader.required(mapping, path + ".listen", "listener host:port the iptables REDIRECT rule targets");
        Address listen = address(listenEntry, path + ".listen", true);
        claim(taken, listen, listenEntry.keyLocation(), path + ".listen");

        Entry kafkaEntry = reader.required(mapping, path + ".kafka", "list of Kafka cluster names whose brokers are intercepted");
        if (!(kafkaEntry.value() instanceof Sequence list)) {
            throw reader.error(kafkaEntry.keyLocation(), path + ".kafka", "must be a list of Kafka cluster names (got "
                    + ConfigFields.describe(kafkaEntry.value()) + ")");
        }
        if (list.items().isEmpty()) {
            throw reader.error(kafkaEntry.keyLocation(), path + ".kafka", "must name at least one Kafka cluster");
        }
        List<String> names = new ArrayList<>();
        // canonical broker address -> its field path: one destination can only have one filter chain
        Map<String, String> destinations = new HashMap<>();
        destinations.put(canonical(listen).orElse(listen.toString()), path + ".listen");
        for (int i = 0; i < list.items().size(); i++) {
            Node item = list.items().get(i);
            String iPath = path + ".kafka[" + i + "]";
            if (!(item instanceof Scalar sc) || sc.token() != JsonToken.VALUE_STRING) {
                throw reader.error(item.location(), iPath, "must be a Kafka cluster name (got " + ConfigFields.describe(item) + ")");
            }
            String name = (String) sc.value();
            KafkaCluster cluster = clusters.get(name);
            if (cluster == null) {
                throw reader.error(item.location(), iPath, "no such Kafka cluster " + ConfigFields.echo(name) + " (kafkaClusters has: "
                        + String.join(", ", new TreeSet<>(clusters.keySet())) + ")");
            }
            if (names.contains(name)) {
                throw reader.error(item.location(), iPath, "Kafka cluster " + name + " is listed twice");
            }
            names.add(name);
            for (Map.Entry<Integer, Address> b : new TreeMap<>(cluster.brokers()).entrySet()) {
                String bPath = "kafkaClusters." + name + ".brokers." + b.getKey();
                Location bLocation = brokerLocations.getOrDefault(bPath, TOP);
                Address broker = b.getValue();
                Optional<String> destination = isIpLiteral(broker.host()) ? canonical(broker) : Optional.empty();
                if (destination.isEmpty()) {
                    throw reader.error(bLocation, bPath, "needs an IP literal host, since " + path + ".kafka intercepts "
                            + name + " by destination address (got " + ConfigFields.echo(broker.host()) + ")");
                }
                if (isLoopback(broker.host())) {
                    // interception (iptables REDIRECT, Istio's init) exempts loopback: the app would reach it directly
                    throw reader.error(bLocation, bPath, "is a loopback address, which transparent interception never"
                            + " redirects; " + path + ".kafka needs brokers the app reaches over the network (got " + broker + ")");
                }
                String previous = destinations.putIfAbsent(destination.get(), bPath);
                if (previous != null && previous.equals(path + ".listen")) {
                    throw reader.error(bLocation, bPath, "address " + broker + " is " + previous
                            + " itself; a connection to the listener would match its own filter chain and loop");
                }
                if (previous != null) {
                    throw reader.error(bLocation, bPath, "address " + broker + " is also " + previous + "; " + path
                            + " needs a distinct address per broker to tell their connections apart");
                }
            }
        }
        return new Transparent(listen, names);
    }

    private static boolean isLoopback(String host) {
        try {
            return InetAddress.getByName(host.indexOf(':') >= 0 ? "[" + host + "]" : host).isLoopbackAddress();
        } catch (UnknownHostException e) {
            return false;
        }
    }

    private static boolean isWildcard(String host) {
        try {
            return InetAddress.getByName(host.indexOf(':') >= 0 ? "[" + host + "]" : host).isAnyLocalAddress();
        } catch (UnknownHostException e) {
            return false;
        }
    }

    private static boolean isIpLiteral(String host) {
        return IPV4.matcher(host).matches() || IPV6.matcher(host).matches();
    }

    /**
     * One spelling per IP address and port (IPv6 has several), so that duplicates are found; empty for a malformed
     * IPv6 literal. No DNS lookup: the caller has matched the host against the IP literal patterns.
     */
    private static Optional<String> canonical(Address address) {
        String host = address.host();
        if (host.indexOf(':') >= 0) {
            try {
                // brackets make InetAddress parse an IPv6 literal or fail, never resolve a name
                host = InetAddress.getByName("[" + host + "]").getHostAddress();
            } catch (UnknownHostException e) {
                return Optional.empty();
            }
        }
        return Optional.of(host + " port " + address.port());
    }

    private void claim(Map<Address, String> taken, Address address, Location location, String path) throws ConfigException {
        String previous = taken.putIfAbsent(address, path);
        if (previous != null) {
            throw reader.error(location, path, "listener address " + address + " is already used by " + previous);
        }
    }

    private Map<Integer, Address> brokers(Entry entry, String path, boolean listener) throws ConfigException {
        Mapping mapping = reader.mapping(entry.value(), path);
        if (mapping.entries().isEmpty()) {
            throw reader.error(entry.keyLocation(), path, "must list at least one broker");
        }
        Map<Integer, Address> brokers = new LinkedHashMap<>();
        for (Entry b : mapping.entries().values()) {
            String bPath = path + "." + b.key();
            int id = reader.nodeId(b, bPath);
            // a broker listener may be {listen, advertise}: bound to one address, handed to clients as another
            Address address;
            if (listener && b.value() instanceof Mapping m) {
                reader.checkKeys(m, bPath + ".", List.of("listen", "advertise"));
                address = address(reader.required(m, bPath + ".listen", "listener host:port"), bPath + ".listen", true);
            } else {
                address = address(b, bPath, listener);
            }
            if (brokers.put(id, address) != null) {
                throw reader.error(b.keyLocation(), bPath, "duplicate broker node id " + id);
            }
            brokerLocations.put(bPath, b.keyLocation());
        }
        return brokers;
    }

    /**
     * {@code filterService}: one gRPC host:port or {@code unix:<absolute path>}, or a non-empty list of distinct ones
     * (replicas; the sidecar spreads its ext_proc streams over them and stops using one that fails its gRPC health
     * check). A list is all host:port or all Unix sockets: the sidecar's one filter_service cluster has one transport
     * (mutual TLS or none).
     */
    private List<FilterServiceAddress> filterServices(Entry entry, String path) throws ConfigException {
        if (!(entry.value() instanceof Sequence list)) {
            if (!(entry.value() instanceof Scalar sc) || sc.token() != JsonToken.VALUE_STRING) {
                throw reader.error(entry.keyLocation(), path, "must be a gRPC host:port or unix:<absolute path>, or a list of them (got "
                        + ConfigFields.describe(entry.value()) + ")");
            }
            return List.of(filterService(entry.keyLocation(), path, (String) sc.value()));
        }
        if (list.items().isEmpty()) {
            throw reader.error(entry.keyLocation(), path, "must list at least one filter-service host:port or unix:<absolute path>");
        }
        List<FilterServiceAddress> addresses = new ArrayList<>();
        for (int i = 0; i < list.items().size(); i++) {
            Node item = list.items().get(i);
            String iPath = path + "[" + i + "]";
            if (!(item instanceof Scalar sc) || sc.token() != JsonToken.VALUE_STRING) {
                throw reader.error(item.location(), iPath, "must be a gRPC host:port or unix:<absolute path> (got "
                        + ConfigFields.describe(item) + ")");
            }
            FilterServiceAddress address = filterService(item.location(), iPath, (String) sc.value());
            int previous = addresses.indexOf(address);
            if (previous >= 0) {
                // one endpoint listed twice would get twice the streams, silently
                throw reader.error(item.location(), iPath, address + " is also " + path + "[" + previous + "]");
            }
            if (!addresses.isEmpty() && addresses.getFirst().getClass() != address.getClass()) {
                // one cluster, one transport socket: TLS to the host:port replicas, none to the sockets
                throw reader.error(item.location(), iPath, "mixes a Unix socket and host:port replicas (" + path
                        + "[0] is " + addresses.getFirst() + "); list only one kind");
            }
            addresses.add(address);
        }
        return addresses;
    }

    /** One {@code filterService} entry: {@code unix:<absolute path>} or a gRPC host:port. */
    private FilterServiceAddress filterService(Location location, String path, String value) throws ConfigException {
        if (!value.startsWith(UnixSocket.SCHEME)) {
            HostPort hp = reader.hostPort(location, path, value, 1);
            return new Address(hp.host(), hp.port());
        }
        String socket = value.substring(UnixSocket.SCHEME.length());
        if (!socket.startsWith("/")) {
            // Envoy would resolve a relative path against its own working directory; '@' is Linux's abstract namespace,
            // which file permissions do not protect
            throw reader.error(location, path, "needs an absolute socket path after unix: (got " + ConfigFields.echo(value) + ")");
        }
        if (socket.indexOf('\0') >= 0 || !Path.of(socket).normalize().toString().equals(socket)) {
            throw reader.error(location, path, "needs a plain absolute path, without . or .. parts, double or trailing slashes (got "
                    + ConfigFields.echo(value) + ")");
        }
        int bytes = socket.getBytes(StandardCharsets.UTF_8).length;
        if (bytes > UnixSocket.MAX_PATH_BYTES) {
            throw reader.error(location, path, "socket path is " + bytes + " bytes; Linux allows at most " + UnixSocket.MAX_PATH_BYTES
                    + " (sun_path), pick a shorter folder");
        }
        return new UnixSocket(Path.of(socket));
    }

    /** @param listener Envoy binds it, so the host must be an IP literal */
    private Address address(Entry entry, String path, boolean listener) throws ConfigException {
        HostPort hp = reader.hostPort(entry.keyLocation(), path, reader.string(entry, path), 1);
        if (listener && !isIpLiteral(hp.host())) {
            throw reader.error(entry.keyLocation(), path, "a listener address needs an IP literal host (got " + ConfigFields.echo(hp.host()) + ")");
        }
        return new Address(hp.host(), hp.port());
    }

    private Mapping named(Entry entry, String path) throws ConfigException {
        if (entry.value() instanceof Scalar s && s.token() == JsonToken.VALUE_NULL) {
            throw reader.error(entry.keyLocation(), path, "must be a mapping (got nothing)");
        }
        return reader.mapping(entry.value(), path);
    }

    private void name(Entry entry, String path) throws ConfigException {
        if (!NAME.matcher(entry.key()).matches()) {
            throw reader.error(entry.keyLocation(), path, "name must match " + NAME.pattern() + " (it becomes part of Envoy resource names)");
        }
    }
}
