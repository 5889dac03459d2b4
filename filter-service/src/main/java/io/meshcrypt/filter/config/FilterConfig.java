package io.meshcrypt.filter.config;

import io.meshcrypt.filter.transport.UnixSocket;
import io.meshcrypt.meshconfig.http.HttpRules;
import io.meshcrypt.meshconfig.mesh.Policies;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.tls.TlsFiles;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import io.meshcrypt.meshconfig.yaml.YamlTree;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The filter-service configuration, loaded from one YAML file and validated on load.
 *
 * <pre>
 * listen: 127.0.0.1:50051            # gRPC address Envoy's ext_proc connects to
 * maxFrameBytes: 104857600           # largest Kafka frame held for rewriting
 * keyset: keyset.json                # Tink keyset (JSON); relative paths resolve against this file's folder
 * keys:                              # optional: KEK provider and DEK limits, envelope version 2 (see KeysConfig)
 *   provider: local
 * brokers:                           # explicit-proxy mode: broker node id -> address clients reach it through (its Envoy listener)
 *   1: 127.0.0.1:19093
 * policy:
 *   encrypt:                         # topic globs whose values are encrypted; the first entry a topic matches applies
 *     - "audit*"
 *     - {topic: "orders*", fields: ["/card/number"]}   # JSON values: only these fields
 *     - {topic: "users*", keys: deterministic}          # record keys too, with AES-SIV (opt-in, see docs/security.md)
 *   unmatched: passthrough           # or reject
 * sivKeyset: siv-keyset.json        # AES-SIV keyset for record keys; default: siv-keyset.json next to keyset, created if missing
 * http:                              # HTTP ext_proc rules, see docs/configuration.md
 *   rules: [...]
 * policyFrom: mesh.yaml              # instead of policy: and http: take those sections of this file (the xDS mesh file)
 *                                    # or xds://host:port: the xDS server delivers them (see XdsPolicySource)
 * tls:                               # optional (required unless listen is loopback): mutual TLS, clients need a
 *   certificate: pki/filter-service/cert.pem   # certificate from trustedCa; files are re-read when they change
 *   privateKey: pki/filter-service/key.pem     # owner-only (0600)
 *   trustedCa: pki/ca.pem
 * limits:                            # optional: resource limits against hostile peers, see Limits and docs/configuration.md
 *   maxHeldBytesPerConnection: 209715208
 *   heldFrameTimeout: 30s
 * audit:                             # optional: JSON-lines audit trail of key operations and topic accesses, see AuditConfig
 *   file: logs/audit.jsonl
 * observability:                     # optional: HTTP /metrics, /healthz, /readyz, see ObservabilityConfig
 *   listen: 127.0.0.1:9464
 * subjectKeys:                       # optional: where per-subject keys live (policy entries with subject:), see SubjectKeysConfig
 *   bootstrap: kafka-1:9093
 * admin:                             # optional: who may call the admin API (forget a subject), see AdminConfig
 *   identities: [spiffe://meshcrypt.local/admin]
 * unixSockets:                       # optional: the same gRPC services on Unix domain sockets, no TLS (Linux only),
 *   - path: run/orders.sock          # see transport.UnixSocket
 *     identity: spiffe://meshcrypt.local/ns/default/sa/orders
 *     mode: "0600"
 * </pre>
 *
 * <p>The file holding the policy and HTTP rules (this one, or {@code policyFrom}) is watched while the service runs: a
 * valid change applies without restart, an invalid one is logged and the last good version stays (see
 * {@link PolicyWatcher}).
 *
 * <p>Only {@code keyset} is required, unless {@code keys} is present: then {@code keyset} is optional and only
 * decrypts version-1 values written before {@code keys} was configured. Defaults: {@code listen} 127.0.0.1:50051, {@code maxFrameBytes} 104857600
 * (100 MiB), {@code brokers} empty, {@code policy.encrypt} ["*"], {@code policy.unmatched} passthrough. Unknown
 * keys, wrong types, malformed host:port values, non-positive sizes and empty patterns are errors. Every error
 * names the file, line:column and field path, e.g.
 * {@code /etc/meshcrypt/filter.yaml:7:3: policy.unmatched: must be one of passthrough, reject (got "drop")}.
 *
 * <p>Host names: {@code listen} is resolved on load (it is bound locally; port 0 picks a free port). Broker
 * addresses stay unresolved: they are only handed to clients. The keyset path is resolved but not opened here.
 *
 * @param listen the address the gRPC server binds
 * @param maxFrameBytes the largest Kafka frame held for rewriting
 * @param keyset absolute path of the Tink JSON keyset; null only when {@code keys} is set
 * @param brokers node id to the advertised (Envoy) address; a broker missing here closes the connection rather than letting a client bypass the proxy
 * @param policy which topics are encrypted
 * @param http the HTTP rules (empty: HTTP traffic passes unchanged)
 * @param keys KEK provider and DEK settings, or null for envelope version 1 with {@code keyset}
 * @param policyFrom absolute path of the file whose {@code policy:} and {@code http:} sections are in force, or null
 *     when they are inline
 * @param sivKeyset absolute path of the AES-SIV keyset that encrypts record keys: set explicitly, or defaulted when the
 *     policy has an entry with {@code keys: deterministic}; null otherwise
 * @param limits resource limits; {@code limits.maxFrameBytes()} equals {@code maxFrameBytes}
 * @param policyServer with {@code policyFrom: xds://host:port}, the xDS server that delivers the policy and HTTP rules
 *     (unresolved), else null; then {@code policy} (every topic encrypted) and {@code http} (none) stand in, never
 *     served, until {@link #withPolicies} puts the first delivered version in before the service listens (Main)
 * @param tls the certificate, key and CA of mutual TLS on the gRPC server (and towards the xDS server), or null for
 *     plaintext, which only a loopback {@code listen} may use
 * @param meshSidecarTls {@code tls: mesh-sidecar}: the pod's mesh sidecar terminates mutual TLS in front of the
 *     gRPC server, and its {@code x-forwarded-client-cert} header says which workload each stream comes from
 * @param audit where the audit trail goes, or null for none ({@code AuditTrail.NONE})
 * @param observability the metrics and health endpoint, or null for none
 * @param subjectKeys where per-subject keys live ({@code subjectKeys:}), or null: a policy entry with {@code subject:}
 *     is then refused
 * @param admin who may call the admin API on the gRPC port ({@link AdminConfig#NOBODY} without {@code admin:})
 * @param unixSockets Unix domain sockets serving what {@code listen} serves, each with its streams' identity (empty:
 *     none)
 */
public record FilterConfig(
        InetSocketAddress listen,
        int maxFrameBytes,
        Path keyset,
        Map<Integer, InetSocketAddress> brokers,
        EncryptionPolicy policy,
        HttpRules http,
        KeysConfig keys,
        Path policyFrom,
        Path sivKeyset,
        Limits limits,
        InetSocketAddress policyServer,
        TlsFiles tls,
        boolean meshSidecarTls,
        AuditConfig audit,
        ObservabilityConfig observability,
        SubjectKeysConfig subjectKeys,
        AdminConfig admin,
        List<UnixSocket> unixSockets) {

    public static final String DEFAULT_LISTEN = "127.0.0.1:50051";
    public static final int DEFAULT_MAX_FRAME_BYTES = Limits.DEFAULT_MAX_FRAME_BYTES;

    public FilterConfig {
        Objects.requireNonNull(listen, "listen");
        if (keyset == null && keys == null) {
            throw new NullPointerException("keyset (required without keys)");
        }
        Objects.requireNonNull(policy, "policy");
        Objects.requireNonNull(http, "http");
        if (sivKeyset == null && policy.anyDeterministicKeys()) {
            throw new IllegalArgumentException("sivKeyset is required when a policy entry has keys: deterministic");
        }
        if (maxFrameBytes <= 0) {
            throw new IllegalArgumentException("maxFrameBytes must be positive");
        }
        Objects.requireNonNull(limits, "limits");
        if (limits.maxFrameBytes() != maxFrameBytes) {
            throw new IllegalArgumentException("maxFrameBytes " + maxFrameBytes + " differs from limits.maxFrameBytes "
                    + limits.maxFrameBytes());
        }
        brokers = Map.copyOf(brokers);
        Objects.requireNonNull(admin, "admin");
        unixSockets = List.copyOf(unixSockets);
    }

    /** Served on {@code listen} only. */
    public FilterConfig(InetSocketAddress listen, int maxFrameBytes, Path keyset, Map<Integer, InetSocketAddress> brokers,
                        EncryptionPolicy policy, HttpRules http, KeysConfig keys, Path policyFrom, Path sivKeyset,
                        Limits limits, InetSocketAddress policyServer, TlsFiles tls, boolean meshSidecarTls,
                        AuditConfig audit, ObservabilityConfig observability, SubjectKeysConfig subjectKeys,
                        AdminConfig admin) {
        this(listen, maxFrameBytes, keyset, brokers, policy, http, keys, policyFrom, sivKeyset, limits, policyServer, tls,
                meshSidecarTls, audit, observability, subjectKeys, admin, List.of());
    }

    /** Nobody may call the admin API. */
    public FilterConfig(InetSocketAddress listen, int maxFrameBytes, Path keyset, Map<Integer, InetSocketAddress> brokers,
                        EncryptionPolicy policy, HttpRules http, KeysConfig keys, Path policyFrom, Path sivKeyset,
                        Limits limits, InetSocketAddress policyServer, TlsFiles tls, boolean meshSidecarTls,
                        AuditConfig audit, ObservabilityConfig observability, SubjectKeysConfig subjectKeys) {
        this(listen, maxFrameBytes, keyset, brokers, policy, http, keys, policyFrom, sivKeyset, limits, policyServer, tls,
                meshSidecarTls, audit, observability, subjectKeys, AdminConfig.NOBODY);
    }

    /** Without subject keys. */
    public FilterConfig(InetSocketAddress listen, int maxFrameBytes, Path keyset, Map<Integer, InetSocketAddress> brokers,
                        EncryptionPolicy policy, HttpRules http, KeysConfig keys, Path policyFrom, Path sivKeyset,
                        Limits limits, InetSocketAddress policyServer, TlsFiles tls, boolean meshSidecarTls,
                        AuditConfig audit, ObservabilityConfig observability) {
        this(listen, maxFrameBytes, keyset, brokers, policy, http, keys, policyFrom, sivKeyset, limits, policyServer, tls,
                meshSidecarTls, audit, observability, null);
    }

    /** Without an audit trail or observability endpoint, and with TLS of the filter-service's own or none. */
    public FilterConfig(InetSocketAddress listen, int maxFrameBytes, Path keyset, Map<Integer, InetSocketAddress> brokers,
                        EncryptionPolicy policy, HttpRules http, KeysConfig keys, Path policyFrom, Path sivKeyset,
                        Limits limits, InetSocketAddress policyServer, TlsFiles tls) {
        this(listen, maxFrameBytes, keyset, brokers, policy, http, keys, policyFrom, sivKeyset, limits, policyServer, tls,
                false, null, null);
    }

    /** Default limits for {@code maxFrameBytes}. */
    public FilterConfig(InetSocketAddress listen, int maxFrameBytes, Path keyset, Map<Integer, InetSocketAddress> brokers,
                        EncryptionPolicy policy, HttpRules http, KeysConfig keys, Path policyFrom, Path sivKeyset) {
        this(listen, maxFrameBytes, keyset, brokers, policy, http, keys, policyFrom, sivKeyset,
                Limits.defaults(maxFrameBytes), null, null);
    }

    /** Record keys are never encrypted. */
    public FilterConfig(InetSocketAddress listen, int maxFrameBytes, Path keyset, Map<Integer, InetSocketAddress> brokers,
                        EncryptionPolicy policy, HttpRules http, KeysConfig keys, Path policyFrom) {
        this(listen, maxFrameBytes, keyset, brokers, policy, http, keys, policyFrom, null);
    }

    /** Without a {@code keys} section (envelope version 1 with {@code keyset}) and with the policy inline. */
    public FilterConfig(InetSocketAddress listen, int maxFrameBytes, Path keyset, Map<Integer, InetSocketAddress> brokers,
                        EncryptionPolicy policy, HttpRules http) {
        this(listen, maxFrameBytes, keyset, brokers, policy, http, null, null, null);
    }

    /** Loads and validates; errors name the file, line and field. */
    public static FilterConfig load(Path file) throws ConfigException {
        return parse(file, read(file));
    }

    static FilterConfig parse(Path file, byte[] yaml) throws ConfigException {
        return new ConfigReader(file).read(YamlTree.parse(file.toString(), yaml));
    }

    /**
     * This config with the policy and HTTP rules the xDS server delivered; a policy that encrypts record keys gets the
     * default record-key keyset when none is set, as when it is read from a file.
     *
     * @param configFile the file this config was loaded from
     */
    public FilterConfig withPolicies(Policies delivered, Path configFile) {
        Path siv = sivKeyset == null && delivered.encryption().anyDeterministicKeys()
                ? defaultSivKeyset(keyset, configFile) : sivKeyset;
        return new FilterConfig(listen, maxFrameBytes, keyset, brokers, delivered.encryption(), delivered.http(), keys,
                policyFrom, siv, limits, policyServer, tls, meshSidecarTls, audit, observability, subjectKeys, admin,
                unixSockets);
    }

    /** {@value ConfigReader#DEFAULT_SIV_KEYSET} next to the top-level keyset, or next to the config file. */
    static Path defaultSivKeyset(Path keyset, Path configFile) {
        Path dir = keyset != null ? keyset.getParent() : configFile.toAbsolutePath().getParent();
        return dir.resolve(ConfigReader.DEFAULT_SIV_KEYSET);
    }

    /** What this service reloads while running: the encryption policy and the HTTP rules. */
    public Policies policies() {
        return new Policies(policy, http);
    }

    /**
     * The required {@code policy:} and optional {@code http:} sections of {@code file} (a mesh file); its other keys
     * are not this service's to validate.
     */
    public static Policies readPolicies(Path file) throws ConfigException {
        return parsePolicies(file, read(file));
    }

    static Policies parsePolicies(Path file, byte[] yaml) throws ConfigException {
        return Policies.parse(file, yaml);
    }

    private static byte[] read(Path file) throws ConfigException {
        try {
            return Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new ConfigException(file + ": config file not found", e);
        } catch (IOException e) {
            throw new ConfigException(file + ": cannot read config file: " + e, e);
        }
    }
}
