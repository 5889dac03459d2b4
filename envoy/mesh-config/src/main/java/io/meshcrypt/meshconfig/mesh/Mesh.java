package io.meshcrypt.meshconfig.mesh;

import io.meshcrypt.meshconfig.http.HttpRules;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * The validated mesh file: which Kafka clusters exist, which sidecar (Envoy node id) fronts which of them on which
 * listeners, where each sidecar's filter-service runs, and what the filter-services apply: the encryption policy and
 * the HTTP rewrite rules (they read both from this file themselves, with {@code policyFrom}). See docs/xds.md for the
 * file format.
 *
 * @param kafkaClusters by name, in file order
 * @param sidecars by Envoy node id, in file order
 * @param http the HTTP rewrite rules, in order (the first that matches a request applies)
 * @param tls mutual TLS between the sidecars and their filter-service, if the mesh uses it
 */
public record Mesh(Map<String, KafkaCluster> kafkaClusters, Map<String, Sidecar> sidecars, EncryptionPolicy policy,
                   HttpRules http, Optional<Tls> tls) {

    public Mesh {
        kafkaClusters = Map.copyOf(kafkaClusters);
        sidecars = Map.copyOf(sidecars);
        Objects.requireNonNull(policy, "policy");
        Objects.requireNonNull(http, "http");
        Objects.requireNonNull(tls, "tls");
    }

    /** A mesh without TLS: plaintext gRPC between the sidecars and their filter-service. */
    public Mesh(Map<String, KafkaCluster> kafkaClusters, Map<String, Sidecar> sidecars, EncryptionPolicy policy, HttpRules http) {
        this(kafkaClusters, sidecars, policy, http, Optional.empty());
    }

    public Mesh withTls(Tls tls) {
        return new Mesh(kafkaClusters, sidecars, policy, http, Optional.of(tls));
    }

    /**
     * Mutual TLS on the sidecars' filter_service clusters.
     *
     * @param trustedCa absolute path of the mesh CA certificate the filter-service's certificate must chain to
     * @param certificates absolute path of the folder holding each sidecar's client certificate, in
     *     {@code sidecar-<node id>/cert.pem} and {@code key.pem}
     * @param filterService the URI SAN (SPIFFE id) every sidecar requires of the filter-service's certificate
     */
    public record Tls(Path trustedCa, Path certificates, URI filterService) {
        public Tls {
            Objects.requireNonNull(trustedCa, "trustedCa");
            Objects.requireNonNull(certificates, "certificates");
            Objects.requireNonNull(filterService, "filterService");
        }

        /** The folder of one sidecar's certificate and key. */
        public Path sidecarFolder(String nodeId) {
            return certificates.resolve("sidecar-" + nodeId);
        }

        public Path sidecarCertificate(String nodeId) {
            return sidecarFolder(nodeId).resolve("cert.pem");
        }

        public Path sidecarPrivateKey(String nodeId) {
            return sidecarFolder(nodeId).resolve("key.pem");
        }
    }

    /**
     * Where a filter-service serves gRPC for a sidecar: a host:port ({@link Address}), or a Unix domain socket on the
     * sidecar's own host ({@link UnixSocket}).
     */
    public sealed interface FilterServiceAddress permits Address, UnixSocket {
    }

    /** A host:port; listener hosts are IP literals, upstream hosts may be DNS names. */
    public record Address(String host, int port) implements FilterServiceAddress {
        @Override
        public String toString() {
            return host.indexOf(':') >= 0 ? "[" + host + "]:" + port : host + ":" + port;
        }
    }

    /**
     * A filter-service's Unix domain socket ({@code unix:<absolute path>} in the mesh file): the sidecar and the
     * filter-service share a host (or a pod's volume), and the socket file's permissions decide who may connect, so
     * the hop runs without TLS.
     *
     * @param path absolute, at most {@link #MAX_PATH_BYTES} bytes (Linux's sockaddr_un.sun_path, less its NUL)
     */
    public record UnixSocket(Path path) implements FilterServiceAddress {
        public static final int MAX_PATH_BYTES = 107;
        public static final String SCHEME = "unix:";

        public UnixSocket {
            if (!path.isAbsolute() || path.toString().getBytes(StandardCharsets.UTF_8).length > MAX_PATH_BYTES) {
                throw new IllegalArgumentException("a Unix socket path must be absolute and at most " + MAX_PATH_BYTES + " bytes: " + path);
            }
        }

        /** As the mesh file spells it. */
        @Override
        public String toString() {
            return SCHEME + path;
        }
    }

    /**
     * @param brokers Kafka node id -> the broker's own address
     * @param tls TLS the sidecars originate to every broker of the cluster, if the brokers require it
     */
    public record KafkaCluster(String name, Map<Integer, Address> brokers, Optional<BrokerTls> tls) {
        public KafkaCluster {
            brokers = Map.copyOf(brokers);
            Objects.requireNonNull(tls, "tls");
        }

        /** A plaintext cluster. */
        public KafkaCluster(String name, Map<Integer, Address> brokers) {
            this(name, brokers, Optional.empty());
        }
    }

    /** The TLS versions a sidecar may be limited to towards brokers; {@code text} is how the mesh file spells it. */
    public enum TlsVersion {
        TLS_1_2("1.2"), TLS_1_3("1.3");

        private final String text;

        TlsVersion(String text) {
            this.text = text;
        }

        public String text() {
            return text;
        }
    }

    /** A certificate and its private key (PEM files Envoy reads; absolute paths). */
    public record CertificateFiles(Path certificate, Path privateKey) {
        public CertificateFiles {
            Objects.requireNonNull(certificate, "certificate");
            Objects.requireNonNull(privateKey, "privateKey");
        }
    }

    /**
     * TLS from the sidecars to the brokers of one Kafka cluster. Each broker's certificate must chain to
     * {@code trustedCa} (no system roots) and name the broker: its {@code sni} name when set, else its host.
     *
     * @param trustedCa absolute path of the PEM bundle the broker certificates must chain to
     * @param clientCertificate the sidecars' client certificate, for brokers that require mutual TLS
     * @param sni Kafka node id -> the server name sent to (and required of) that broker, instead of its host
     * @param minVersion the lowest TLS version the sidecars accept
     */
    public record BrokerTls(Path trustedCa, Optional<CertificateFiles> clientCertificate, Map<Integer, String> sni,
                            TlsVersion minVersion) {
        public BrokerTls {
            Objects.requireNonNull(trustedCa, "trustedCa");
            Objects.requireNonNull(clientCertificate, "clientCertificate");
            sni = Map.copyOf(sni);
            Objects.requireNonNull(minVersion, "minVersion");
        }
    }

    /**
     * The listeners one sidecar opens for one Kafka cluster: the address clients bootstrap against, and one per
     * broker, with the address the filter-service hands out for it in Metadata responses.
     *
     * @param brokers Kafka node id -> listener address (what Envoy binds); covers every broker of the cluster
     * @param advertised Kafka node id -> the address clients are told to use for that listener: the listener
     *     address itself, unless the mesh file sets {@code advertise} (a listener bound to a wildcard in a container)
     * @param tls the certificate with which every one of these listeners terminates TLS from the application, if set
     */
    public record KafkaListeners(String cluster, Address bootstrap, Map<Integer, Address> brokers, Map<Integer, Address> advertised,
                                 Optional<CertificateFiles> tls) {
        public KafkaListeners {
            brokers = Map.copyOf(brokers);
            advertised = Map.copyOf(advertised);
            Objects.requireNonNull(tls, "tls");
            if (!advertised.keySet().equals(brokers.keySet())) {
                throw new IllegalArgumentException("advertised addresses must cover exactly the broker listeners");
            }
        }

        /** Plaintext listeners. */
        public KafkaListeners(String cluster, Address bootstrap, Map<Integer, Address> brokers, Map<Integer, Address> advertised) {
            this(cluster, bootstrap, brokers, advertised, Optional.empty());
        }
    }

    /**
     * An inbound HTTP listener: requests to {@code listen} pass the filter-service's HTTP rules on their way to the
     * application at {@code upstream}, responses on their way back.
     *
     * @param name unique within the sidecar; part of the listener and cluster names
     */
    public record HttpListener(String name, Address listen, Address upstream) {
    }

    /**
     * Transparent interception (iptables REDIRECT to {@code listen}, original_dst): connections the application opens
     * to any broker of the listed Kafka clusters pass network ext_proc on their way to the address it dialled; any
     * other destination has no filter chain and is refused.
     *
     * @param listen where the REDIRECT rule sends the application's connections (IP literal)
     * @param kafkaClusters names under kafkaClusters, in file order; each has only IP literal broker addresses
     */
    public record Transparent(Address listen, List<String> kafkaClusters) {
        public Transparent {
            Objects.requireNonNull(listen, "listen");
            kafkaClusters = List.copyOf(kafkaClusters);
        }
    }

    /**
     * @param nodeId the Envoy node id (its bootstrap's node.id)
     * @param filterServices the gRPC addresses of the filter-service replicas this sidecar's ext_proc filters stream
     *     to, in file order, distinct, at least one, all host:port or all Unix sockets (one cluster, one transport):
     *     each new ext_proc stream (one per Kafka connection, one per HTTP request) goes to one of them; the replicas
     *     share nothing but the KMS and the policy source
     * @param kafka by Kafka cluster name
     * @param http by listener name
     * @param transparent the transparent (original_dst) Kafka listener, if the sidecar has one
     */
    public record Sidecar(String nodeId, List<FilterServiceAddress> filterServices, Map<String, KafkaListeners> kafka,
                          Map<String, HttpListener> http, Optional<Transparent> transparent) {
        public Sidecar {
            filterServices = List.copyOf(filterServices);
            if (filterServices.isEmpty() || Set.copyOf(filterServices).size() != filterServices.size()) {
                throw new IllegalArgumentException("filterServices must be one or more distinct addresses: " + filterServices);
            }
            if (filterServices.stream().map(FilterServiceAddress::getClass).distinct().count() > 1) {
                throw new IllegalArgumentException("filterServices must be all host:port or all Unix sockets: " + filterServices);
            }
            kafka = Map.copyOf(kafka);
            http = Map.copyOf(http);
            Objects.requireNonNull(transparent, "transparent");
        }

        /** A sidecar with a single filter-service. */
        public Sidecar(String nodeId, FilterServiceAddress filterService, Map<String, KafkaListeners> kafka, Map<String, HttpListener> http,
                       Optional<Transparent> transparent) {
            this(nodeId, List.of(filterService), kafka, http, transparent);
        }

        /** Whether this sidecar reaches its filter-service over Unix domain sockets (then without TLS). */
        public boolean onUnixSockets() {
            return filterServices.getFirst() instanceof UnixSocket;
        }

        /** This sidecar with {@code filterServices} instead of its own. */
        public Sidecar withFilterServices(List<? extends FilterServiceAddress> filterServices) {
            return new Sidecar(nodeId, List.copyOf(filterServices), kafka, http, transparent);
        }
    }
}
