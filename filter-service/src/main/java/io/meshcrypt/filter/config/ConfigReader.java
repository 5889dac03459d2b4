package io.meshcrypt.filter.config;

import com.fasterxml.jackson.core.JsonToken;
import io.meshcrypt.filter.crypto.DekManager;
import io.meshcrypt.filter.transport.ConnectionLog;
import io.meshcrypt.filter.transport.StreamIdentity;
import io.meshcrypt.filter.transport.UnixSocket;
import io.meshcrypt.meshconfig.http.HttpConfigReader;
import io.meshcrypt.meshconfig.http.HttpRules;
import io.meshcrypt.meshconfig.mesh.Policies;
import io.meshcrypt.meshconfig.mesh.PolicyDelivery;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.PolicyReader;
import io.meshcrypt.meshconfig.tls.TlsFiles;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import io.meshcrypt.meshconfig.yaml.ConfigFields;
import io.meshcrypt.meshconfig.yaml.ConfigFields.HostPort;
import io.meshcrypt.meshconfig.yaml.YamlTree.Entry;
import io.meshcrypt.meshconfig.yaml.YamlTree.Location;
import io.meshcrypt.meshconfig.yaml.YamlTree.Mapping;
import io.meshcrypt.meshconfig.yaml.YamlTree.Node;
import io.meshcrypt.meshconfig.yaml.YamlTree.Scalar;
import io.meshcrypt.meshconfig.yaml.YamlTree.Sequence;
import io.netty.channel.epoll.Epoll;
import java.math.BigInteger;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Validates the YAML tree of one config file into a {@link FilterConfig}; see its javadoc for the schema. The policy:
 * and http: sections are read by mesh-config's readers, shared with the mesh file; errors read
 * {@code file:line:column: field.path: problem} as there.
 */
public final class ConfigReader {

    /** The value of {@code tls} that leaves mutual TLS to the pod's service-mesh sidecar (Istio). */
    static final String MESH_SIDECAR_TLS = "mesh-sidecar";
    private static final List<String> ROOT_KEYS = List.of("listen", "maxFrameBytes", "keyset", "brokers", "policy", "policyFrom", "http", "keys", "sivKeyset", "limits", "tls", "audit", "observability", "subjectKeys", "admin", "unixSockets");
    /** Default file name of the AES-SIV record-key keyset, next to the top-level keyset (or this config file). */
    static final String DEFAULT_SIV_KEYSET = "siv-keyset.json";

    private final Path file;
    private final ConfigFields fields;
    private final PolicyReader policies;

    public ConfigReader(Path file) {
        this.file = file;
        this.fields = new ConfigFields(file);
        this.policies = new PolicyReader(fields);
    }

    FilterConfig read(Node root) throws ConfigException {
        if (root == null) {
            throw fields.error(ConfigFields.TOP, "", "the file is empty; at least keyset is required");
        }
        Mapping mapping = fields.mapping(root, "");
        fields.checkKeys(mapping, "", ROOT_KEYS);

        Entry listenEntry = mapping.entries().get("listen");
        InetSocketAddress listen = listenEntry == null
                ? bindAddress(ConfigFields.TOP, "listen", FilterConfig.DEFAULT_LISTEN)
                : bindAddress(listenEntry.keyLocation(), "listen", fields.string(listenEntry, "listen"));

        Entry tlsEntry = mapping.entries().get("tls");
        // "tls: mesh-sidecar": the pod's service-mesh sidecar (Istio) terminates mutual TLS in front of this port
        boolean sidecarTls = tlsEntry != null && tlsEntry.value() instanceof Scalar s && MESH_SIDECAR_TLS.equals(s.value());
        TlsFiles tls = tlsEntry == null || sidecarTls ? null : TlsFiles.read(fields, tlsEntry, "tls");
        if (tls == null && !sidecarTls && !listen.getAddress().isLoopbackAddress()) {
            // plaintext gRPC carries keys' results and decrypted values: only where no other host can connect
            throw fields.error(listenEntry.keyLocation(), "tls", "required when listen is not a loopback address (certificate,"
                    + " privateKey, trustedCa; or \"" + MESH_SIDECAR_TLS + "\" when the pod's mesh sidecar terminates mutual TLS)");
        }

        Limits limits = new LimitsReader(fields).limits(mapping.entries().get("limits"), mapping.entries().get("maxFrameBytes"));

        Entry keysetEntry = mapping.entries().get("keyset");
        Entry keysEntry = mapping.entries().get("keys");
        if (keysetEntry == null && keysEntry == null) {
            throw fields.error(mapping.location(), "keyset", "required field is missing (path of the Tink JSON keyset)");
        }
        Path keyset = keysetEntry == null ? null : fields.path(keysetEntry, "keyset");
        KeysConfig keys = keysEntry == null ? null : keys(keysEntry, keyset);

        Entry brokersEntry = mapping.entries().get("brokers");
        Map<Integer, InetSocketAddress> brokers = brokersEntry == null ? Map.of() : brokers(brokersEntry);

        Entry policyEntry = mapping.entries().get("policy");
        Entry policyFromEntry = mapping.entries().get("policyFrom");
        if (policyEntry != null && policyFromEntry != null) {
            throw fields.error(policyFromEntry.keyLocation(), "policyFrom", "cannot be combined with policy: (one source of truth)");
        }
        Entry httpEntry = mapping.entries().get("http");
        if (httpEntry != null && policyFromEntry != null) {
            throw fields.error(httpEntry.keyLocation(), "http", "cannot be combined with policyFrom: (the HTTP rules are the http: section"
                    + " of " + ConfigFields.echo(fields.string(policyFromEntry, "policyFrom")) + ", one source of truth)");
        }
        Path policyFrom = null;
        InetSocketAddress policyServer = null;
        EncryptionPolicy policy;
        HttpRules http;
        String from = policyFromEntry == null ? null : fields.string(policyFromEntry, "policyFrom");
        if (from != null && from.startsWith(PolicyDelivery.SCHEME)) {
            HostPort server = fields.hostPort(policyFromEntry.keyLocation(), "policyFrom",
                    from.substring(PolicyDelivery.SCHEME.length()), 1);
            policyServer = InetSocketAddress.createUnresolved(server.host(), server.port());
            // never served: Main waits for the xDS server's first version and puts it in before it listens; until then
            // the record holds the strictest policy (every topic encrypted, no HTTP rules), not an empty one
            policy = EncryptionPolicy.encryptAll();
            http = HttpRules.NONE;
        } else if (from != null) {
            policyFrom = fields.path(policyFromEntry, "policyFrom");
            Policies shared = FilterConfig.readPolicies(policyFrom);
            policy = shared.encryption();
            http = shared.http();
        } else {
            policy = policyEntry == null ? EncryptionPolicy.encryptAll() : policies.policy(policyEntry);
            http = httpEntry == null ? HttpRules.NONE : new HttpConfigReader(fields).http(httpEntry);
        }

        // Set explicitly, the record-key keyset is opened at start even when no entry uses it yet, so that a reloaded
        // policy may turn keys: deterministic on; otherwise it exists only for a policy that needs it at start.
        Entry sivEntry = mapping.entries().get("sivKeyset");
        Path sivKeyset = null;
        if (sivEntry != null) {
            sivKeyset = fields.path(sivEntry, "sivKeyset");
        } else if (policy.anyDeterministicKeys()) {
            sivKeyset = FilterConfig.defaultSivKeyset(keyset, file);
        }

        Entry auditEntry = mapping.entries().get("audit");
        AuditConfig audit = auditEntry == null ? null : new AuditConfigReader(fields).audit(auditEntry);

        Entry observabilityEntry = mapping.entries().get("observability");
        ObservabilityConfig observability = observabilityEntry == null ? null : observability(observabilityEntry);

        Entry subjectKeysEntry = mapping.entries().get("subjectKeys");
        SubjectKeysConfig subjectKeys = subjectKeysEntry == null ? null : subjectKeys(subjectKeysEntry);
        Entry adminEntry = mapping.entries().get("admin");
        AdminConfig admin = adminEntry == null ? AdminConfig.NOBODY : admin(adminEntry, tls != null || sidecarTls);
        Entry unixSocketsEntry = mapping.entries().get("unixSockets");
        List<UnixSocket> unixSockets = unixSocketsEntry == null ? List.of() : unixSockets(unixSocketsEntry);
        return new FilterConfig(listen, limits.maxFrameBytes(), keyset, brokers, policy, http, keys, policyFrom, sivKeyset,
                limits, policyServer, tls, sidecarTls, audit, observability, subjectKeys, admin, unixSockets);
    }

    private static final List<String> UNIX_SOCKET_KEYS = List.of("path", "identity", "mode");
    /** An octal permission string within 0777, the leading 0 optional. */
    private static final Pattern OCTAL_MODE = Pattern.compile("0?[0-7]{3}");

    /** The {@code unixSockets:} list (see {@link UnixSocket}). */
    private List<UnixSocket> unixSockets(Entry section) throws ConfigException {
        Sequence list = fields.sequence(section, "unixSockets", "a list of sockets ({path, identity, mode})");
        if (!Epoll.isAvailable()) {
            // the sockets are served by Netty's epoll transport: Linux (x86_64, aarch64) only
            throw fields.error(section.keyLocation(), "unixSockets", "Unix domain sockets need Linux (Netty's epoll"
                    + " transport is unavailable here: " + Epoll.unavailabilityCause() + "); use listen: with tls:");
        }
        List<UnixSocket> sockets = new ArrayList<>();
        Map<Path, String> seen = new HashMap<>();
        for (int i = 0; i < list.items().size(); i++) {
            String prefix = "unixSockets[" + i + "]";
            Mapping m = fields.mapping(list.items().get(i), prefix);
            fields.checkKeys(m, prefix + ".", UNIX_SOCKET_KEYS);
            Entry pathEntry = fields.required(m, prefix + ".path", "the socket file, e.g. run/orders.sock");
            Path path = fields.path(pathEntry, prefix + ".path");
            if (UnixSocket.pathBytes(path) > UnixSocket.MAX_PATH_BYTES) {
                throw fields.error(pathEntry.keyLocation(), prefix + ".path", "is " + UnixSocket.pathBytes(path)
                        + " bytes long once resolved, the kernel takes at most " + UnixSocket.MAX_PATH_BYTES
                        + " (got " + ConfigFields.echo(path.toString()) + ")");
            }
            String earlier = seen.putIfAbsent(path, prefix);
            if (earlier != null) {
                throw fields.error(pathEntry.keyLocation(), prefix + ".path", "duplicate socket path, already " + earlier
                        + ".path (" + ConfigFields.echo(path.toString()) + ")");
            }
            Entry identityEntry = m.entries().get("identity");
            String identity = identityEntry == null ? null : socketIdentity(identityEntry, prefix + ".identity");
            Entry modeEntry = m.entries().get("mode");
            Set<PosixFilePermission> mode = modeEntry == null ? octalMode(UnixSocket.DEFAULT_MODE)
                    : mode(modeEntry, prefix + ".mode");
            sockets.add(new UnixSocket(path, identity, mode));
        }
        return List.copyOf(sockets);
    }

    /** An exact SPIFFE id: what a verified client certificate yields on {@code listen}, so readers/writers match alike. */
    private String socketIdentity(Entry entry, String path) throws ConfigException {
        String id = fields.nonEmpty(entry, path);
        if (!id.startsWith("spiffe://") || id.length() <= "spiffe://".length()
                || id.length() > StreamIdentity.MAX_IDENTITY_CHARS
                || id.chars().anyMatch(c -> c < 0x21 || c > 0x7e || c == '*' || c == '?' || c == '{')) {
            throw fields.error(entry.keyLocation(), path, "must be an exact SPIFFE id (printable ASCII, no globs), e.g."
                    + " spiffe://meshcrypt.local/ns/default/sa/orders (got " + ConfigFields.echo(id) + ")");
        }
        try {
            new URI(id);
        } catch (URISyntaxException e) {
            throw fields.error(entry.keyLocation(), path, "is not a valid URI: " + e.getReason() + " (got "
                    + ConfigFields.echo(id) + ")");
        }
        return id;
    }

    private Set<PosixFilePermission> mode(Entry entry, String path) throws ConfigException {
        if (!(entry.value() instanceof Scalar s) || s.token() != JsonToken.VALUE_STRING) {
            throw fields.error(entry.keyLocation(), path, "must be an octal string such as \"0600\" (quote it; got "
                    + ConfigFields.describe(entry.value()) + ")");
        }
        String value = (String) s.value();
        if (!OCTAL_MODE.matcher(value).matches()) {
            throw fields.error(entry.keyLocation(), path, "must be octal permission bits within 0777, e.g. \"0600\" (got "
                    + ConfigFields.echo(value) + ")");
        }
        Set<PosixFilePermission> mode = octalMode(value);
        if (mode.contains(PosixFilePermission.OTHERS_WRITE)) {
            // write permission on a socket is permission to connect: any local user would be this socket's identity
            throw fields.error(entry.keyLocation(), path, "must not let others connect (o+w, got " + ConfigFields.echo(value)
                    + "); grant a group instead, e.g. \"0660\"");
        }
        return mode;
    }

    /** The permissions of a validated octal string: bits 8..0 are rwx of owner, group, others. */
    private static Set<PosixFilePermission> octalMode(String octal) {
        int bits = Integer.parseInt(octal, 8);
        PosixFilePermission[] all = PosixFilePermission.values(); // OWNER_READ .. OTHERS_EXECUTE, bit 8 down to bit 0
        Set<PosixFilePermission> mode = EnumSet.noneOf(PosixFilePermission.class);
        for (int i = 0; i < all.length; i++) {
            if ((bits & (1 << (8 - i))) != 0) {
                mode.add(all[i]);
            }
        }
        return mode;
    }

    /** The {@code admin:} section (see {@link AdminConfig}): exact SPIFFE ids, or plaintext loopback without TLS. */
    private AdminConfig admin(Entry section, boolean tls) throws ConfigException {
        Mapping m = fields.mapping(section.value(), "admin");
        fields.checkKeys(m, "admin.", List.of("identities", "plaintextLoopback"));
        Entry loopbackEntry = m.entries().get("plaintextLoopback");
        boolean plaintextLoopback = false;
        if (loopbackEntry != null) {
            if (!(loopbackEntry.value() instanceof Scalar b) || !(b.value() instanceof Boolean value)) {
                throw fields.error(loopbackEntry.keyLocation(), "admin.plaintextLoopback", "must be true or false (got "
                        + ConfigFields.describe(loopbackEntry.value()) + ")");
            }
            plaintextLoopback = value;
            if (plaintextLoopback && tls) {
                // with TLS every caller has a certificate: list its identity instead of opening the API to all
                throw fields.error(loopbackEntry.keyLocation(), "admin.plaintextLoopback", "only without tls: (list the"
                        + " callers' SPIFFE ids in admin.identities)");
            }
        }
        Entry identitiesEntry = m.entries().get("identities");
        List<String> identities = identitiesEntry == null ? List.of() : fields.identities(identitiesEntry, "admin.identities");
        for (int i = 0; i < identities.size(); i++) {
            String id = identities.get(i);
            if (!id.startsWith("spiffe://") || id.indexOf('*') >= 0 || id.indexOf('?') >= 0 || id.indexOf('{') >= 0) {
                throw fields.error(identitiesEntry.keyLocation(), "admin.identities[" + i + "]", "must be an exact SPIFFE id,"
                        + " e.g. spiffe://meshcrypt.local/admin (got " + ConfigFields.echo(id) + ")");
            }
        }
        if (!identities.isEmpty() && !tls) {
            throw fields.error(identitiesEntry.keyLocation(), "admin.identities", "callers have no identity without tls:"
                    + " (set tls:, or plaintextLoopback: true for a loopback-only dev mesh)");
        }
        if (identities.isEmpty() && !plaintextLoopback) {
            throw fields.error(section.keyLocation(), "admin", "set identities (or, without tls:, plaintextLoopback: true);"
                    + " leave the section out to refuse every admin call");
        }
        return new AdminConfig(identities, plaintextLoopback);
    }

    private static final List<String> SUBJECT_KEYS_KEYS = List.of("bootstrap", "topic", "replicationFactor",
            "maxSubjects", "newSubjectsPerSecond", "newSubjectsBurst", "unknownKeyWaitMillis", "client");

    /** The {@code subjectKeys:} section (see {@link SubjectKeysConfig}). */
    private SubjectKeysConfig subjectKeys(Entry section) throws ConfigException {
        Mapping m = fields.mapping(section.value(), "subjectKeys");
        fields.checkKeys(m, "subjectKeys.", SUBJECT_KEYS_KEYS);
        String bootstrap = fields.nonEmpty(fields.required(m, "subjectKeys.bootstrap",
                "host:port list of the brokers the filter-service reaches directly"), "subjectKeys.bootstrap");
        for (String broker : bootstrap.split(",")) {
            fields.hostPort(m.entries().get("bootstrap").keyLocation(), "subjectKeys.bootstrap", broker.trim(), 1);
        }
        Entry topicEntry = m.entries().get("topic");
        String topic = topicEntry == null ? SubjectKeysConfig.DEFAULT_TOPIC : fields.nonEmpty(topicEntry, "subjectKeys.topic");
        Entry rf = m.entries().get("replicationFactor");
        short replicationFactor = rf == null ? -1 : (short) fields.positiveLong(rf, "subjectKeys.replicationFactor", Short.MAX_VALUE);
        Entry max = m.entries().get("maxSubjects");
        Entry rate = m.entries().get("newSubjectsPerSecond");
        Entry burst = m.entries().get("newSubjectsBurst");
        Entry wait = m.entries().get("unknownKeyWaitMillis");
        Map<String, String> client = new java.util.LinkedHashMap<>();
        Entry clientEntry = m.entries().get("client");
        if (clientEntry != null) {
            Mapping properties = fields.mapping(clientEntry.value(), "subjectKeys.client");
            for (Entry property : properties.entries().values()) {
                String path = "subjectKeys.client." + property.key();
                if (SubjectKeysConfig.RESERVED_CLIENT_PROPERTIES.contains(property.key())) {
                    throw fields.error(property.keyLocation(), path, "is set by the filter-service (use subjectKeys.bootstrap"
                            + " for the brokers)");
                }
                if (!(property.value() instanceof Scalar value) || value.value() == null) {
                    throw fields.error(property.keyLocation(), path, "must be a string, number or boolean (got "
                            + ConfigFields.describe(property.value()) + ")");
                }
                client.put(property.key(), String.valueOf(value.value()));
            }
        }
        return new SubjectKeysConfig(bootstrap, topic, replicationFactor,
                max == null ? io.meshcrypt.filter.subjects.SubjectKeyStore.Settings.DEFAULT_MAX_SUBJECTS
                        : fields.positiveInt(max, "subjectKeys.maxSubjects"),
                rate == null ? io.meshcrypt.filter.subjects.SubjectKeyStore.Settings.DEFAULT_NEW_SUBJECTS_PER_SECOND
                        : fields.positiveInt(rate, "subjectKeys.newSubjectsPerSecond"),
                burst == null ? io.meshcrypt.filter.subjects.SubjectKeyStore.Settings.DEFAULT_NEW_SUBJECTS_BURST
                        : fields.positiveInt(burst, "subjectKeys.newSubjectsBurst"),
                wait == null ? io.meshcrypt.filter.subjects.SubjectKeyStore.Settings.DEFAULT_UNKNOWN_KEY_WAIT
                        : java.time.Duration.ofMillis(fields.positiveLong(wait, "subjectKeys.unknownKeyWaitMillis", 3_600_000)),
                client);
    }

    /** The {@code observability:} section; an empty mapping ({@code observability: {}}) takes the defaults. */
    private ObservabilityConfig observability(Entry section) throws ConfigException {
        Mapping m = fields.mapping(section.value(), "observability");
        fields.checkKeys(m, "observability.", List.of("listen", "maxTopicLabels", "connectionLog"));
        Entry listenEntry = m.entries().get("listen");
        InetSocketAddress listen = listenEntry == null
                ? bindAddress(section.keyLocation(), "observability.listen", ObservabilityConfig.DEFAULT_LISTEN)
                : bindAddress(listenEntry.keyLocation(), "observability.listen",
                        fields.string(listenEntry, "observability.listen"));
        Entry labels = m.entries().get("maxTopicLabels");
        int maxTopicLabels = labels == null ? ObservabilityConfig.DEFAULT_MAX_TOPIC_LABELS
                : (int) fields.positiveLong(labels, "observability.maxTopicLabels", 10_000);
        Entry connectionLog = m.entries().get("connectionLog");
        ConnectionLog.Format format = connectionLog == null ? ConnectionLog.Format.TEXT : ConnectionLog.Format.valueOf(fields.oneOf(
                connectionLog, "observability.connectionLog", List.of("text", "json", "none")).toUpperCase(Locale.ROOT));
        return new ObservabilityConfig(listen, maxTopicLabels, format);
    }

    private Map<Integer, InetSocketAddress> brokers(Entry entry) throws ConfigException {
        Mapping mapping = fields.mapping(entry.value(), "brokers");
        Map<Integer, InetSocketAddress> brokers = new LinkedHashMap<>();
        for (Entry broker : mapping.entries().values()) {
            String path = "brokers." + broker.key();
            int nodeId = fields.nodeId(broker, path);
            HostPort hp = fields.hostPort(broker.keyLocation(), path, fields.string(broker, path), 1);
            if (brokers.put(nodeId, InetSocketAddress.createUnresolved(hp.host(), hp.port())) != null) {
                throw fields.error(broker.keyLocation(), path, "duplicate broker node id " + nodeId);
            }
        }
        return brokers;
    }

    private static final List<String> KEYS_KEYS = List.of("provider", "local", "pkcs11", "awsKms", "dek", "cache",
            "kmsTimeoutMillis", "kekCheckSeconds", "unwrap");
    private static final Map<String, String> PROVIDER_SECTIONS = Map.of(
            KeysConfig.LOCAL, "local", KeysConfig.PKCS11, "pkcs11", KeysConfig.AWS_KMS, "awsKms");

    private KeysConfig keys(Entry entry, Path topKeyset) throws ConfigException {
        Mapping mapping = fields.mapping(entry.value(), "keys");
        fields.checkKeys(mapping, "keys.", KEYS_KEYS);
        Entry providerEntry = mapping.entries().get("provider");
        if (providerEntry == null) {
            throw fields.error(mapping.location(), "keys.provider", "required field is missing (local, pkcs11 or aws-kms)");
        }
        String provider = providerEntry.value() instanceof Scalar s && s.token() == JsonToken.VALUE_STRING ? (String) s.value() : "";
        if (!PROVIDER_SECTIONS.containsKey(provider)) {
            throw fields.error(providerEntry.keyLocation(), "keys.provider",
                    "must be one of local, pkcs11, aws-kms (got " + ConfigFields.describe(providerEntry.value()) + ")");
        }
        for (Map.Entry<String, String> section : PROVIDER_SECTIONS.entrySet()) {
            Entry present = mapping.entries().get(section.getValue());
            if (present != null && !section.getKey().equals(provider)) {
                throw fields.error(present.keyLocation(), "keys." + section.getValue(),
                        "only allowed with provider " + section.getKey() + " (provider is " + provider + ")");
            }
        }
        Path localKeyset = null;
        KeysConfig.Pkcs11 pkcs11 = null;
        KeysConfig.AwsKms awsKms = null;
        Entry section = mapping.entries().get(PROVIDER_SECTIONS.get(provider));
        String prefix = "keys." + PROVIDER_SECTIONS.get(provider);
        switch (provider) {
            case KeysConfig.LOCAL -> {
                Mapping local = section == null ? null : fields.mapping(section.value(), prefix);
                if (local != null) {
                    fields.checkKeys(local, prefix + ".", List.of("keyset"));
                }
                Entry keysetEntry = local == null ? null : local.entries().get("keyset");
                localKeyset = keysetEntry == null ? topKeyset : fields.path(keysetEntry, prefix + ".keyset");
                if (localKeyset == null) {
                    throw fields.error(providerEntry.keyLocation(), prefix + ".keyset",
                            "required with provider local when the top-level keyset is not set");
                }
            }
            case KeysConfig.PKCS11 -> {
                if (section == null) {
                    throw fields.error(providerEntry.keyLocation(), prefix, "required with provider pkcs11 (library, slot, pinFile or pinEnv, label)");
                }
                Mapping m = fields.mapping(section.value(), prefix);
                fields.checkKeys(m, prefix + ".", List.of("library", "slot", "pinFile", "pinEnv", "label"));
                Path library = fields.path(fields.required(m, prefix + ".library"), prefix + ".library");
                Entry slotEntry = fields.required(m, prefix + ".slot");
                if (!(slotEntry.value() instanceof Scalar s) || s.token() != JsonToken.VALUE_NUMBER_INT
                        || new BigInteger(s.value().toString()).signum() < 0
                        || new BigInteger(s.value().toString()).bitLength() > 63) {
                    throw fields.error(slotEntry.keyLocation(), prefix + ".slot", "must be a non-negative integer slot id (got "
                            + ConfigFields.describe(slotEntry.value()) + ")");
                }
                long slot = new BigInteger(((Scalar) slotEntry.value()).value().toString()).longValueExact();
                Entry pinFile = m.entries().get("pinFile");
                Entry pinEnv = m.entries().get("pinEnv");
                if ((pinFile == null) == (pinEnv == null)) {
                    throw fields.error(m.location(), prefix, "set exactly one of pinFile, pinEnv (the PIN itself never goes in this file)");
                }
                Entry labelEntry = m.entries().get("label");
                String label = labelEntry == null ? "meshcrypt-kek" : fields.string(labelEntry, prefix + ".label");
                if (!label.matches("[A-Za-z0-9_-]{1,64}")) {
                    throw fields.error(labelEntry.keyLocation(), prefix + ".label", "must be 1-64 of A-Z a-z 0-9 _ - (got " + ConfigFields.echo(label) + ")");
                }
                pkcs11 = new KeysConfig.Pkcs11(library, slot,
                        pinFile == null ? null : fields.path(pinFile, prefix + ".pinFile"),
                        pinEnv == null ? null : fields.nonEmpty(pinEnv, prefix + ".pinEnv"), label);
            }
            default -> {
                if (section == null) {
                    throw fields.error(providerEntry.keyLocation(), prefix, "required with provider aws-kms (keyId, region)");
                }
                Mapping m = fields.mapping(section.value(), prefix);
                fields.checkKeys(m, prefix + ".", List.of("keyId", "region", "endpoint"));
                String keyId = fields.nonEmpty(fields.required(m, prefix + ".keyId"), prefix + ".keyId");
                String region = fields.nonEmpty(fields.required(m, prefix + ".region"), prefix + ".region");
                Entry endpointEntry = m.entries().get("endpoint");
                URI endpoint = null;
                if (endpointEntry != null) {
                    String value = fields.string(endpointEntry, prefix + ".endpoint");
                    try {
                        endpoint = new URI(value);
                    } catch (URISyntaxException e) {
                        endpoint = null;
                    }
                    if (endpoint == null || endpoint.getHost() == null
                            || !("https".equals(endpoint.getScheme()) || "http".equals(endpoint.getScheme()))) {
                        throw fields.error(endpointEntry.keyLocation(), prefix + ".endpoint", "must be an http(s) URL (got " + ConfigFields.echo(value) + ")");
                    }
                }
                awsKms = new KeysConfig.AwsKms(keyId, region, endpoint);
            }
        }

        long maxRecords = DEFAULT_DEK_MAX_RECORDS;
        long maxAgeSeconds = 3600;
        Entry dek = mapping.entries().get("dek");
        if (dek != null) {
            Mapping m = fields.mapping(dek.value(), "keys.dek");
            fields.checkKeys(m, "keys.dek.", List.of("maxRecords", "maxAgeSeconds"));
            Entry records = m.entries().get("maxRecords");
            if (records != null) {
                maxRecords = fields.positiveLong(records, "keys.dek.maxRecords", 1L << 32);
            }
            Entry age = m.entries().get("maxAgeSeconds");
            if (age != null) {
                maxAgeSeconds = fields.positiveInt(age, "keys.dek.maxAgeSeconds");
            }
        }
        long ttlSeconds = 3600;
        int maxEntries = 10_000;
        Entry cache = mapping.entries().get("cache");
        if (cache != null) {
            Mapping m = fields.mapping(cache.value(), "keys.cache");
            fields.checkKeys(m, "keys.cache.", List.of("ttlSeconds", "maxEntries"));
            Entry ttl = m.entries().get("ttlSeconds");
            if (ttl != null) {
                ttlSeconds = fields.positiveInt(ttl, "keys.cache.ttlSeconds");
            }
            Entry entries = m.entries().get("maxEntries");
            if (entries != null) {
                maxEntries = fields.positiveInt(entries, "keys.cache.maxEntries");
            }
        }
        Entry timeout = mapping.entries().get("kmsTimeoutMillis");
        long timeoutMillis = timeout == null ? 2000 : fields.positiveInt(timeout, "keys.kmsTimeoutMillis");
        Entry check = mapping.entries().get("kekCheckSeconds");
        long checkSeconds = check == null ? 300 : fields.positiveInt(check, "keys.kekCheckSeconds");
        // Unwraps of wrapped DEKs never unwrapped here: what a hostile broker's forged envelopes can make the KMS do.
        int unwrapsPerSecond = (int) DekManager.Settings.DEFAULT_UNWRAPS_PER_SECOND;
        int unwrapsBurst = DekManager.Settings.DEFAULT_UNWRAPS_BURST;
        int maxFailedUnwraps = DekManager.Settings.DEFAULT_MAX_FAILED_UNWRAPS;
        Entry unwrap = mapping.entries().get("unwrap");
        if (unwrap != null) {
            Mapping m = fields.mapping(unwrap.value(), "keys.unwrap");
            fields.checkKeys(m, "keys.unwrap.", List.of("perSecond", "burst", "maxFailed"));
            Entry e = m.entries().get("perSecond");
            if (e != null) {
                unwrapsPerSecond = fields.positiveInt(e, "keys.unwrap.perSecond");
            }
            e = m.entries().get("burst");
            if (e != null) {
                unwrapsBurst = fields.positiveInt(e, "keys.unwrap.burst");
            }
            e = m.entries().get("maxFailed");
            if (e != null) {
                maxFailedUnwraps = fields.positiveInt(e, "keys.unwrap.maxFailed");
            }
        }
        return new KeysConfig(provider, localKeyset, pkcs11, awsKms, maxRecords, Duration.ofSeconds(maxAgeSeconds),
                Duration.ofSeconds(ttlSeconds), maxEntries, Duration.ofMillis(timeoutMillis), Duration.ofSeconds(checkSeconds),
                unwrapsPerSecond, unwrapsBurst, maxFailedUnwraps);
    }

    /** 2^30 records per DEK: random 96-bit nonces stay far below the 2^32 per-key limit of NIST SP 800-38D. */
    private static final long DEFAULT_DEK_MAX_RECORDS = 1L << 30;

    private InetSocketAddress bindAddress(Location location, String path, String value) throws ConfigException {
        HostPort hp = fields.hostPort(location, path, value, 0);
        InetSocketAddress address = new InetSocketAddress(hp.host(), hp.port());
        if (address.isUnresolved()) {
            throw fields.error(location, path, "cannot resolve host " + ConfigFields.echo(hp.host()));
        }
        return address;
    }

}
