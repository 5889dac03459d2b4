package io.meshcrypt.filter.config;

import com.fasterxml.jackson.core.JsonToken;
import io.meshcrypt.filter.config.YamlTree.Entry;
import io.meshcrypt.filter.config.YamlTree.Location;
import io.meshcrypt.filter.config.YamlTree.Mapping;
import io.meshcrypt.filter.config.YamlTree.Node;
import io.meshcrypt.filter.config.YamlTree.Scalar;
import io.meshcrypt.filter.config.YamlTree.Sequence;
import io.meshcrypt.filter.crypto.DekManager;
import io.meshcrypt.filter.http.HttpRules;
import io.meshcrypt.filter.policy.EncryptionPolicy;
import io.meshcrypt.filter.policy.TopicRule;
import io.meshcrypt.filter.transform.JsonPointer;
import java.math.BigInteger;
import java.net.URI;
import java.net.URISyntaxException;
import java.time.Duration;
import java.net.InetSocketAddress;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Validates the YAML tree of one config file into a {@link FilterConfig}; see its javadoc for the schema. The typed
 * accessors are public so other config files of the project (the xDS server's mesh file) validate and report errors
 * the same way: {@code file:line:column: field.path: problem}.
 */
public final class ConfigReader {

    private static final List<String> ROOT_KEYS = List.of("listen", "maxFrameBytes", "keyset", "brokers", "policy", "policyFrom", "http", "keys", "sivKeyset", "limits");
    private static final List<String> POLICY_KEYS = List.of("encrypt", "decryptOnly", "unmatched");
    private static final List<String> ENCRYPT_ENTRY_KEYS = List.of("topic", "fields", "keys");
    /** Default file name of the AES-SIV record-key keyset, next to the top-level keyset (or this config file). */
    static final String DEFAULT_SIV_KEYSET = "siv-keyset.json";
    /** host:port, with IPv6 literals in brackets. */
    private static final Pattern HOST_PORT = Pattern.compile("(\\[[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?]|[A-Za-z0-9_.-]+):([0-9]{1,5})");
    private static final int MAX_ECHO = 60;
    private static final Location TOP = new Location(1, 1);

    private final Path file;

    public ConfigReader(Path file) {
        this.file = file;
    }

    FilterConfig read(Node root) throws ConfigException {
        if (root == null) {
            throw error(TOP, "", "the file is empty; at least keyset is required");
        }
        Mapping mapping = mapping(root, "");
        checkKeys(mapping, "", ROOT_KEYS);

        Entry listenEntry = mapping.entries().get("listen");
        InetSocketAddress listen = listenEntry == null
                ? bindAddress(TOP, "listen", FilterConfig.DEFAULT_LISTEN)
                : bindAddress(listenEntry.keyLocation(), "listen", string(listenEntry, "listen"));

        Limits limits = new LimitsReader(this).limits(mapping.entries().get("limits"), mapping.entries().get("maxFrameBytes"));

        Entry keysetEntry = mapping.entries().get("keyset");
        Entry keysEntry = mapping.entries().get("keys");
        if (keysetEntry == null && keysEntry == null) {
            throw error(mapping.location(), "keyset", "required field is missing (path of the Tink JSON keyset)");
        }
        Path keyset = keysetEntry == null ? null : keysetPath(keysetEntry);
        KeysConfig keys = keysEntry == null ? null : keys(keysEntry, keyset);

        Entry brokersEntry = mapping.entries().get("brokers");
        Map<Integer, InetSocketAddress> brokers = brokersEntry == null ? Map.of() : brokers(brokersEntry);

        Entry policyEntry = mapping.entries().get("policy");
        Entry policyFromEntry = mapping.entries().get("policyFrom");
        if (policyEntry != null && policyFromEntry != null) {
            throw error(policyFromEntry.keyLocation(), "policyFrom", "cannot be combined with policy: (one source of truth)");
        }
        Entry httpEntry = mapping.entries().get("http");
        if (httpEntry != null && policyFromEntry != null) {
            throw error(httpEntry.keyLocation(), "http", "cannot be combined with policyFrom: (the HTTP rules are the http: section"
                    + " of " + echo(string(policyFromEntry, "policyFrom")) + ", one source of truth)");
        }
        Path policyFrom = null;
        EncryptionPolicy policy;
        HttpRules http;
        if (policyFromEntry != null) {
            policyFrom = relativePath(policyFromEntry, "policyFrom");
            Policies shared = FilterConfig.readPolicies(policyFrom);
            policy = shared.encryption();
            http = shared.http();
        } else {
            policy = policyEntry == null ? EncryptionPolicy.encryptAll() : policy(policyEntry);
            http = httpEntry == null ? HttpRules.NONE : http(httpEntry);
        }

        // Set explicitly, the record-key keyset is opened at start even when no entry uses it yet, so that a reloaded
        // policy may turn keys: deterministic on; otherwise it exists only for a policy that needs it at start.
        Entry sivEntry = mapping.entries().get("sivKeyset");
        Path sivKeyset = null;
        if (sivEntry != null) {
            sivKeyset = relativePath(sivEntry, "sivKeyset");
        } else if (policy.anyDeterministicKeys()) {
            Path dir = keyset != null ? keyset.getParent() : file.toAbsolutePath().getParent();
            sivKeyset = dir.resolve(DEFAULT_SIV_KEYSET);
        }

        return new FilterConfig(listen, limits.maxFrameBytes(), keyset, brokers, policy, http, keys, policyFrom, sivKeyset,
                limits);
    }

    /**
     * The required {@code policy:} and the optional {@code http:} section of a file whose other keys belong to someone
     * else (a mesh file).
     */
    Policies policiesOf(Node root) throws ConfigException {
        if (root == null) {
            throw error(TOP, "policy", "the file is empty; a policy: section is required");
        }
        Mapping mapping = mapping(root, "");
        Entry entry = mapping.entries().get("policy");
        if (entry == null) {
            throw error(root.location(), "policy", "required field is missing");
        }
        Entry httpEntry = mapping.entries().get("http");
        return new Policies(policy(entry), httpEntry == null ? HttpRules.NONE : http(httpEntry));
    }

    /** The {@code http:} section: HTTP rewrite rules (docs/configuration.md). */
    public HttpRules http(Entry entry) throws ConfigException {
        return new HttpConfigReader(this).http(entry);
    }

    private Path keysetPath(Entry entry) throws ConfigException {
        return relativePath(entry, "keyset");
    }

    /** A path, relative ones resolved against this file's folder. */
    private Path relativePath(Entry entry, String path) throws ConfigException {
        String value = string(entry, path);
        if (value.isBlank()) {
            throw error(entry.keyLocation(), path, "must not be empty");
        }
        try {
            Path base = file.toAbsolutePath().getParent();
            return base.resolve(value).normalize();
        } catch (InvalidPathException e) {
            throw error(entry.keyLocation(), path, "is not a valid path (got " + echo(value) + ")");
        }
    }

    private Map<Integer, InetSocketAddress> brokers(Entry entry) throws ConfigException {
        Mapping mapping = mapping(entry.value(), "brokers");
        Map<Integer, InetSocketAddress> brokers = new LinkedHashMap<>();
        for (Entry broker : mapping.entries().values()) {
            String path = "brokers." + broker.key();
            int nodeId;
            try {
                nodeId = Integer.parseInt(broker.key());
            } catch (NumberFormatException e) {
                nodeId = -1;
            }
            if (nodeId < 0) {
                throw error(broker.keyLocation(), path, "broker node id must be a non-negative integer (got " + echo(broker.key()) + ")");
            }
            HostPort hp = hostPort(broker.keyLocation(), path, string(broker, path), 1);
            if (brokers.put(nodeId, InetSocketAddress.createUnresolved(hp.host(), hp.port())) != null) {
                throw error(broker.keyLocation(), path, "duplicate broker node id " + nodeId);
            }
        }
        return brokers;
    }

    /**
     * The {@code policy:} section: {@code encrypt} globs, {@code decryptOnly} globs (topics no longer encrypted whose
     * old envelopes are still decrypted on fetch; any other unencrypted topic passes byte for byte) and
     * {@code unmatched}.
     */
    public EncryptionPolicy policy(Entry entry) throws ConfigException {
        Mapping mapping = mapping(entry.value(), "policy");
        checkKeys(mapping, "policy.", POLICY_KEYS);

        List<TopicRule> rules = List.of(TopicRule.wholeValue("*"));
        Entry encrypt = mapping.entries().get("encrypt");
        if (encrypt != null) {
            if (!(encrypt.value() instanceof Sequence list)) {
                throw error(encrypt.keyLocation(), "policy.encrypt", "must be a list of topic patterns (got " + describe(encrypt.value()) + ")");
            }
            if (list.items().isEmpty()) {
                throw error(encrypt.keyLocation(), "policy.encrypt", "must list at least one topic pattern");
            }
            rules = new ArrayList<>();
            for (int i = 0; i < list.items().size(); i++) {
                rules.add(encryptEntry(list.items().get(i), "policy.encrypt[" + i + "]"));
            }
        }

        EncryptionPolicy.Unmatched unmatched = EncryptionPolicy.Unmatched.PASSTHROUGH;
        Entry unmatchedEntry = mapping.entries().get("unmatched");
        if (unmatchedEntry != null) {
            String value = unmatchedEntry.value() instanceof Scalar s && s.token() == JsonToken.VALUE_STRING ? (String) s.value() : null;
            unmatched = switch (value == null ? "" : value) {
                case "passthrough" -> EncryptionPolicy.Unmatched.PASSTHROUGH;
                case "reject" -> EncryptionPolicy.Unmatched.REJECT;
                default -> throw error(unmatchedEntry.keyLocation(), "policy.unmatched",
                        "must be one of passthrough, reject (got " + describe(unmatchedEntry.value()) + ")");
            };
        }
        return EncryptionPolicy.ofRules(rules, decryptOnly(mapping.entries().get("decryptOnly")), unmatched);
    }

    /** {@code policy.decryptOnly}: a list, possibly empty, of non-empty topic globs. */
    private List<String> decryptOnly(Entry entry) throws ConfigException {
        if (entry == null) {
            return List.of();
        }
        if (!(entry.value() instanceof Sequence list)) {
            throw error(entry.keyLocation(), "policy.decryptOnly", "must be a list of topic patterns whose old envelopes"
                    + " are still decrypted on fetch (got " + describe(entry.value()) + ")");
        }
        List<String> globs = new ArrayList<>();
        for (int i = 0; i < list.items().size(); i++) {
            Node item = list.items().get(i);
            if (!(item instanceof Scalar s) || s.token() != JsonToken.VALUE_STRING) {
                throw error(item.location(), "policy.decryptOnly[" + i + "]", "must be a topic pattern string (got "
                        + describe(item) + ")");
            }
            String glob = (String) s.value();
            if (glob.isEmpty()) {
                throw error(item.location(), "policy.decryptOnly[" + i + "]", "must not be empty");
            }
            globs.add(glob);
        }
        return globs;
    }

    /**
     * A topic glob, or {@code {topic: glob, fields: [json pointers], keys: deterministic}} with at least one of
     * {@code fields} (encrypt only those fields of JSON values) and {@code keys} (encrypt record keys with AES-SIV).
     */
    private TopicRule encryptEntry(Node item, String path) throws ConfigException {
        if (item instanceof Mapping entry) {
            checkKeys(entry, path + ".", ENCRYPT_ENTRY_KEYS);
            Entry topic = entry.entries().get("topic");
            if (topic == null) {
                throw error(entry.location(), path + ".topic", "required field is missing (topic pattern)");
            }
            String pattern = string(topic, path + ".topic");
            if (pattern.isEmpty()) {
                throw error(topic.keyLocation(), path + ".topic", "must not be empty");
            }
            Entry fields = entry.entries().get("fields");
            Entry keys = entry.entries().get("keys");
            boolean deterministicKeys = false;
            if (keys != null) {
                String mode = keys.value() instanceof Scalar k && k.token() == JsonToken.VALUE_STRING ? (String) k.value() : "";
                deterministicKeys = switch (mode) {
                    case "deterministic" -> true;
                    case "plaintext" -> false;
                    default -> throw error(keys.keyLocation(), path + ".keys",
                            "must be one of plaintext, deterministic (got " + describe(keys.value()) + ")");
                };
            }
            if (fields == null) {
                if (keys != null) {
                    return new TopicRule(pattern, List.of(), deterministicKeys);
                }
                throw error(entry.location(), path + ".fields", "required field is missing (JSON Pointers of the fields to encrypt;"
                        + " list the topic as a plain string to encrypt whole values, or add keys: deterministic)");
            }
            if (!(fields.value() instanceof Sequence pointers) || pointers.items().isEmpty()) {
                throw error(fields.keyLocation(), path + ".fields", "must be a non-empty list of JSON Pointers (got "
                        + describe(fields.value()) + ")");
            }
            List<JsonPointer> parsed = new ArrayList<>();
            for (int i = 0; i < pointers.items().size(); i++) {
                parsed.add(pointer(pointers.items().get(i), path + ".fields[" + i + "]"));
            }
            return new TopicRule(pattern, parsed, deterministicKeys);
        }
        if (!(item instanceof Scalar s) || s.token() != JsonToken.VALUE_STRING) {
            throw error(item.location(), path, "must be a topic pattern string (got " + describe(item) + ")");
        }
        String pattern = (String) s.value();
        if (pattern.isEmpty()) {
            throw error(item.location(), path, "must not be empty");
        }
        return TopicRule.wholeValue(pattern);
    }

    /** A JSON Pointer that addresses a field (the root pointer "" would be the whole value). */
    JsonPointer pointer(Node node, String path) throws ConfigException {
        if (!(node instanceof Scalar s) || s.token() != JsonToken.VALUE_STRING) {
            throw error(node.location(), path, "must be a JSON Pointer string such as \"/card/number\" (got " + describe(node) + ")");
        }
        try {
            JsonPointer pointer = JsonPointer.parse((String) s.value());
            if (pointer.isRoot()) {
                throw error(node.location(), path, "must address a field, not the whole document (got \"\")");
            }
            return pointer;
        } catch (IllegalArgumentException e) {
            throw error(node.location(), path, e.getMessage());
        }
    }

    private static final List<String> KEYS_KEYS = List.of("provider", "local", "pkcs11", "awsKms", "dek", "cache",
            "kmsTimeoutMillis", "kekCheckSeconds", "unwrap");
    private static final Map<String, String> PROVIDER_SECTIONS = Map.of(
            KeysConfig.LOCAL, "local", KeysConfig.PKCS11, "pkcs11", KeysConfig.AWS_KMS, "awsKms");

    private KeysConfig keys(Entry entry, Path topKeyset) throws ConfigException {
        Mapping mapping = mapping(entry.value(), "keys");
        checkKeys(mapping, "keys.", KEYS_KEYS);
        Entry providerEntry = mapping.entries().get("provider");
        if (providerEntry == null) {
            throw error(mapping.location(), "keys.provider", "required field is missing (local, pkcs11 or aws-kms)");
        }
        String provider = providerEntry.value() instanceof Scalar s && s.token() == JsonToken.VALUE_STRING ? (String) s.value() : "";
        if (!PROVIDER_SECTIONS.containsKey(provider)) {
            throw error(providerEntry.keyLocation(), "keys.provider",
                    "must be one of local, pkcs11, aws-kms (got " + describe(providerEntry.value()) + ")");
        }
        for (Map.Entry<String, String> section : PROVIDER_SECTIONS.entrySet()) {
            Entry present = mapping.entries().get(section.getValue());
            if (present != null && !section.getKey().equals(provider)) {
                throw error(present.keyLocation(), "keys." + section.getValue(),
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
                Mapping local = section == null ? null : mapping(section.value(), prefix);
                if (local != null) {
                    checkKeys(local, prefix + ".", List.of("keyset"));
                }
                Entry keysetEntry = local == null ? null : local.entries().get("keyset");
                localKeyset = keysetEntry == null ? topKeyset : path(keysetEntry, prefix + ".keyset");
                if (localKeyset == null) {
                    throw error(providerEntry.keyLocation(), prefix + ".keyset",
                            "required with provider local when the top-level keyset is not set");
                }
            }
            case KeysConfig.PKCS11 -> {
                if (section == null) {
                    throw error(providerEntry.keyLocation(), prefix, "required with provider pkcs11 (library, slot, pinFile or pinEnv, label)");
                }
                Mapping m = mapping(section.value(), prefix);
                checkKeys(m, prefix + ".", List.of("library", "slot", "pinFile", "pinEnv", "label"));
                Path library = path(required(m, prefix, "library"), prefix + ".library");
                Entry slotEntry = required(m, prefix, "slot");
                if (!(slotEntry.value() instanceof Scalar s) || s.token() != JsonToken.VALUE_NUMBER_INT
                        || new BigInteger(s.value().toString()).signum() < 0
                        || new BigInteger(s.value().toString()).bitLength() > 63) {
                    throw error(slotEntry.keyLocation(), prefix + ".slot", "must be a non-negative integer slot id (got "
                            + describe(slotEntry.value()) + ")");
                }
                long slot = new BigInteger(((Scalar) slotEntry.value()).value().toString()).longValueExact();
                Entry pinFile = m.entries().get("pinFile");
                Entry pinEnv = m.entries().get("pinEnv");
                if ((pinFile == null) == (pinEnv == null)) {
                    throw error(m.location(), prefix, "set exactly one of pinFile, pinEnv (the PIN itself never goes in this file)");
                }
                Entry labelEntry = m.entries().get("label");
                String label = labelEntry == null ? "meshcrypt-kek" : string(labelEntry, prefix + ".label");
                if (!label.matches("[A-Za-z0-9_-]{1,64}")) {
                    throw error(labelEntry.keyLocation(), prefix + ".label", "must be 1-64 of A-Z a-z 0-9 _ - (got " + echo(label) + ")");
                }
                pkcs11 = new KeysConfig.Pkcs11(library, slot,
                        pinFile == null ? null : path(pinFile, prefix + ".pinFile"),
                        pinEnv == null ? null : nonEmpty(pinEnv, prefix + ".pinEnv"), label);
            }
            default -> {
                if (section == null) {
                    throw error(providerEntry.keyLocation(), prefix, "required with provider aws-kms (keyId, region)");
                }
                Mapping m = mapping(section.value(), prefix);
                checkKeys(m, prefix + ".", List.of("keyId", "region", "endpoint"));
                String keyId = nonEmpty(required(m, prefix, "keyId"), prefix + ".keyId");
                String region = nonEmpty(required(m, prefix, "region"), prefix + ".region");
                Entry endpointEntry = m.entries().get("endpoint");
                URI endpoint = null;
                if (endpointEntry != null) {
                    String value = string(endpointEntry, prefix + ".endpoint");
                    try {
                        endpoint = new URI(value);
                    } catch (URISyntaxException e) {
                        endpoint = null;
                    }
                    if (endpoint == null || endpoint.getHost() == null
                            || !("https".equals(endpoint.getScheme()) || "http".equals(endpoint.getScheme()))) {
                        throw error(endpointEntry.keyLocation(), prefix + ".endpoint", "must be an http(s) URL (got " + echo(value) + ")");
                    }
                }
                awsKms = new KeysConfig.AwsKms(keyId, region, endpoint);
            }
        }

        long maxRecords = DEFAULT_DEK_MAX_RECORDS;
        long maxAgeSeconds = 3600;
        Entry dek = mapping.entries().get("dek");
        if (dek != null) {
            Mapping m = mapping(dek.value(), "keys.dek");
            checkKeys(m, "keys.dek.", List.of("maxRecords", "maxAgeSeconds"));
            Entry records = m.entries().get("maxRecords");
            if (records != null) {
                maxRecords = positiveLong(records, "keys.dek.maxRecords", 1L << 32);
            }
            Entry age = m.entries().get("maxAgeSeconds");
            if (age != null) {
                maxAgeSeconds = positiveInt(age, "keys.dek.maxAgeSeconds");
            }
        }
        long ttlSeconds = 3600;
        int maxEntries = 10_000;
        Entry cache = mapping.entries().get("cache");
        if (cache != null) {
            Mapping m = mapping(cache.value(), "keys.cache");
            checkKeys(m, "keys.cache.", List.of("ttlSeconds", "maxEntries"));
            Entry ttl = m.entries().get("ttlSeconds");
            if (ttl != null) {
                ttlSeconds = positiveInt(ttl, "keys.cache.ttlSeconds");
            }
            Entry entries = m.entries().get("maxEntries");
            if (entries != null) {
                maxEntries = positiveInt(entries, "keys.cache.maxEntries");
            }
        }
        Entry timeout = mapping.entries().get("kmsTimeoutMillis");
        long timeoutMillis = timeout == null ? 2000 : positiveInt(timeout, "keys.kmsTimeoutMillis");
        Entry check = mapping.entries().get("kekCheckSeconds");
        long checkSeconds = check == null ? 300 : positiveInt(check, "keys.kekCheckSeconds");
        // Unwraps of wrapped DEKs never unwrapped here: what a hostile broker's forged envelopes can make the KMS do.
        int unwrapsPerSecond = (int) DekManager.Settings.DEFAULT_UNWRAPS_PER_SECOND;
        int unwrapsBurst = DekManager.Settings.DEFAULT_UNWRAPS_BURST;
        int maxFailedUnwraps = DekManager.Settings.DEFAULT_MAX_FAILED_UNWRAPS;
        Entry unwrap = mapping.entries().get("unwrap");
        if (unwrap != null) {
            Mapping m = mapping(unwrap.value(), "keys.unwrap");
            checkKeys(m, "keys.unwrap.", List.of("perSecond", "burst", "maxFailed"));
            Entry e = m.entries().get("perSecond");
            if (e != null) {
                unwrapsPerSecond = positiveInt(e, "keys.unwrap.perSecond");
            }
            e = m.entries().get("burst");
            if (e != null) {
                unwrapsBurst = positiveInt(e, "keys.unwrap.burst");
            }
            e = m.entries().get("maxFailed");
            if (e != null) {
                maxFailedUnwraps = positiveInt(e, "keys.unwrap.maxFailed");
            }
        }
        return new KeysConfig(provider, localKeyset, pkcs11, awsKms, maxRecords, Duration.ofSeconds(maxAgeSeconds),
                Duration.ofSeconds(ttlSeconds), maxEntries, Duration.ofMillis(timeoutMillis), Duration.ofSeconds(checkSeconds),
                unwrapsPerSecond, unwrapsBurst, maxFailedUnwraps);
    }

    /** 2^30 records per DEK: random 96-bit nonces stay far below the 2^32 per-key limit of NIST SP 800-38D. */
    private static final long DEFAULT_DEK_MAX_RECORDS = 1L << 30;

    private Entry required(Mapping mapping, String prefix, String key) throws ConfigException {
        Entry e = mapping.entries().get(key);
        if (e == null) {
            throw error(mapping.location(), prefix + "." + key, "required field is missing");
        }
        return e;
    }

    private String nonEmpty(Entry entry, String path) throws ConfigException {
        String value = string(entry, path);
        if (value.isBlank()) {
            throw error(entry.keyLocation(), path, "must not be empty");
        }
        return value;
    }

    private Path path(Entry entry, String path) throws ConfigException {
        String value = nonEmpty(entry, path);
        try {
            return file.toAbsolutePath().getParent().resolve(value).normalize();
        } catch (InvalidPathException e) {
            throw error(entry.keyLocation(), path, "is not a valid path (got " + echo(value) + ")");
        }
    }

    private long positiveLong(Entry entry, String path, long max) throws ConfigException {
        if (!(entry.value() instanceof Scalar s) || s.token() != JsonToken.VALUE_NUMBER_INT) {
            throw error(entry.keyLocation(), path, "must be a positive integer (got " + describe(entry.value()) + ")");
        }
        BigInteger value = new BigInteger(s.value().toString());
        if (value.signum() <= 0 || value.compareTo(BigInteger.valueOf(max)) > 0) {
            throw error(entry.keyLocation(), path, "must be a positive integer at most " + max + " (got " + value + ")");
        }
        return value.longValueExact();
    }

    private InetSocketAddress bindAddress(Location location, String path, String value) throws ConfigException {
        HostPort hp = hostPort(location, path, value, 0);
        InetSocketAddress address = new InetSocketAddress(hp.host(), hp.port());
        if (address.isUnresolved()) {
            throw error(location, path, "cannot resolve host " + echo(hp.host()));
        }
        return address;
    }

    public record HostPort(String host, int port) {
    }

    public HostPort hostPort(Location location, String path, String value, int minPort) throws ConfigException {
        Matcher m = HOST_PORT.matcher(value);
        if (!m.matches()) {
            throw error(location, path, "must be host:port (got " + echo(value) + ")");
        }
        int port = Integer.parseInt(m.group(2));
        if (port < minPort || port > 65535) {
            throw error(location, path, "port must be " + minPort + "-65535 (got " + port + ")");
        }
        String host = m.group(1);
        if (host.startsWith("[")) {
            host = host.substring(1, host.length() - 1);
        }
        return new HostPort(host, port);
    }

    public int positiveInt(Entry entry, String path) throws ConfigException {
        if (!(entry.value() instanceof Scalar s) || s.token() != JsonToken.VALUE_NUMBER_INT) {
            throw error(entry.keyLocation(), path, "must be a positive integer (got " + describe(entry.value()) + ")");
        }
        BigInteger value = new BigInteger(s.value().toString());
        if (value.signum() <= 0 || value.compareTo(BigInteger.valueOf(Integer.MAX_VALUE)) > 0) {
            throw error(entry.keyLocation(), path, "must be a positive integer at most " + Integer.MAX_VALUE + " (got " + value + ")");
        }
        return value.intValueExact();
    }

    public String string(Entry entry, String path) throws ConfigException {
        if (entry.value() instanceof Scalar s && s.token() == JsonToken.VALUE_STRING) {
            return (String) s.value();
        }
        throw error(entry.keyLocation(), path, "must be a string (got " + describe(entry.value()) + ")");
    }

    public Mapping mapping(Node node, String path) throws ConfigException {
        if (node instanceof Mapping m) {
            return m;
        }
        throw error(node.location(), path, "must be a mapping (got " + describe(node) + ")");
    }

    public void checkKeys(Mapping mapping, String prefix, List<String> allowed) throws ConfigException {
        Set<String> known = Set.copyOf(allowed);
        for (Entry entry : mapping.entries().values()) {
            if (!known.contains(entry.key())) {
                throw error(entry.keyLocation(), prefix + entry.key(), "unknown field (expected one of " + String.join(", ", allowed) + ")");
            }
        }
    }

    public static String describe(Node node) {
        return switch (node) {
            case Mapping m -> "a mapping";
            case Sequence s -> "a list";
            case Scalar s when s.token() == JsonToken.VALUE_NULL -> "nothing";
            case Scalar s when s.token() == JsonToken.VALUE_STRING -> echo((String) s.value());
            case Scalar s -> String.valueOf(s.value()).toLowerCase(Locale.ROOT);
        };
    }

    /** Quotes a user value for a message, shortened so a stray blob pasted into the file is not repeated in logs. */
    public static String echo(String value) {
        String shown = value.length() > MAX_ECHO ? value.substring(0, MAX_ECHO) + "..." : value;
        return "\"" + shown.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n") + "\"";
    }

    public ConfigException error(Location location, String path, String message) {
        return new ConfigException(file + ":" + location + ": " + (path.isEmpty() ? "" : path + ": ") + message);
    }
}
