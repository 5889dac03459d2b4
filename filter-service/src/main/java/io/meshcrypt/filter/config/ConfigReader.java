package io.meshcrypt.filter.config;

import com.fasterxml.jackson.core.JsonToken;
import io.meshcrypt.filter.config.YamlTree.Entry;
import io.meshcrypt.filter.config.YamlTree.Location;
import io.meshcrypt.filter.config.YamlTree.Mapping;
import io.meshcrypt.filter.config.YamlTree.Node;
import io.meshcrypt.filter.config.YamlTree.Scalar;
import io.meshcrypt.filter.config.YamlTree.Sequence;
import io.meshcrypt.filter.http.HttpRules;
import io.meshcrypt.filter.policy.EncryptionPolicy;
import io.meshcrypt.filter.policy.TopicRule;
import io.meshcrypt.filter.transform.JsonPointer;
import java.math.BigInteger;
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

/** Validates the YAML tree of one config file into a {@link FilterConfig}; see its javadoc for the schema. */
final class ConfigReader {

    private static final List<String> ROOT_KEYS = List.of("listen", "maxFrameBytes", "keyset", "brokers", "policy", "http");
    private static final List<String> POLICY_KEYS = List.of("encrypt", "unmatched");
    private static final List<String> ENCRYPT_ENTRY_KEYS = List.of("topic", "fields");
    /** host:port, with IPv6 literals in brackets. */
    private static final Pattern HOST_PORT = Pattern.compile("(\\[[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?]|[A-Za-z0-9_.-]+):([0-9]{1,5})");
    private static final int MAX_ECHO = 60;
    private static final Location TOP = new Location(1, 1);

    private final Path file;

    ConfigReader(Path file) {
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

        Entry sizeEntry = mapping.entries().get("maxFrameBytes");
        int maxFrameBytes = sizeEntry == null ? FilterConfig.DEFAULT_MAX_FRAME_BYTES : positiveInt(sizeEntry, "maxFrameBytes");

        Entry keysetEntry = mapping.entries().get("keyset");
        if (keysetEntry == null) {
            throw error(mapping.location(), "keyset", "required field is missing (path of the Tink JSON keyset)");
        }
        Path keyset = keysetPath(keysetEntry);

        Entry brokersEntry = mapping.entries().get("brokers");
        Map<Integer, InetSocketAddress> brokers = brokersEntry == null ? Map.of() : brokers(brokersEntry);

        Entry policyEntry = mapping.entries().get("policy");
        EncryptionPolicy policy = policyEntry == null ? EncryptionPolicy.encryptAll() : policy(policyEntry);

        Entry httpEntry = mapping.entries().get("http");
        HttpRules http = httpEntry == null ? HttpRules.NONE : new HttpConfigReader(this).http(httpEntry);

        return new FilterConfig(listen, maxFrameBytes, keyset, brokers, policy, http);
    }

    private Path keysetPath(Entry entry) throws ConfigException {
        String value = string(entry, "keyset");
        if (value.isBlank()) {
            throw error(entry.keyLocation(), "keyset", "must not be empty");
        }
        try {
            Path base = file.toAbsolutePath().getParent();
            return base.resolve(value).normalize();
        } catch (InvalidPathException e) {
            throw error(entry.keyLocation(), "keyset", "is not a valid path (got " + echo(value) + ")");
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

    private EncryptionPolicy policy(Entry entry) throws ConfigException {
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
        return EncryptionPolicy.ofRules(rules, unmatched);
    }

    /** A topic glob, or {@code {topic: glob, fields: [json pointers]}} to encrypt only those fields of JSON values. */
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
            if (fields == null) {
                throw error(entry.location(), path + ".fields", "required field is missing (JSON Pointers of the fields to encrypt;"
                        + " list the topic as a plain string to encrypt whole values)");
            }
            if (!(fields.value() instanceof Sequence pointers) || pointers.items().isEmpty()) {
                throw error(fields.keyLocation(), path + ".fields", "must be a non-empty list of JSON Pointers (got "
                        + describe(fields.value()) + ")");
            }
            List<JsonPointer> parsed = new ArrayList<>();
            for (int i = 0; i < pointers.items().size(); i++) {
                parsed.add(pointer(pointers.items().get(i), path + ".fields[" + i + "]"));
            }
            return new TopicRule(pattern, parsed);
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

    private InetSocketAddress bindAddress(Location location, String path, String value) throws ConfigException {
        HostPort hp = hostPort(location, path, value, 0);
        InetSocketAddress address = new InetSocketAddress(hp.host(), hp.port());
        if (address.isUnresolved()) {
            throw error(location, path, "cannot resolve host " + echo(hp.host()));
        }
        return address;
    }

    private record HostPort(String host, int port) {
    }

    private HostPort hostPort(Location location, String path, String value, int minPort) throws ConfigException {
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

    private int positiveInt(Entry entry, String path) throws ConfigException {
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
