package io.meshcrypt.meshconfig.yaml;

import com.fasterxml.jackson.core.JsonToken;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import io.meshcrypt.meshconfig.yaml.YamlTree.Entry;
import io.meshcrypt.meshconfig.yaml.YamlTree.Location;
import io.meshcrypt.meshconfig.yaml.YamlTree.Mapping;
import io.meshcrypt.meshconfig.yaml.YamlTree.Node;
import io.meshcrypt.meshconfig.yaml.YamlTree.Scalar;
import io.meshcrypt.meshconfig.yaml.YamlTree.Sequence;
import java.math.BigInteger;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * The typed accessors every config file of the project (filter.yaml, the mesh file, the policy section the xDS server
 * delivers) validates its YAML tree with, so that all report errors the same way:
 * {@code file:line:column: field.path: problem}. Argument order throughout: the node or entry, then its field path.
 */
public final class ConfigFields {

    /** host:port, with IPv6 literals in brackets. */
    private static final Pattern HOST_PORT = Pattern.compile("(\\[[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?]|[A-Za-z0-9_.-]+):([0-9]{1,5})");
    private static final int MAX_ECHO = 60;
    /** Where errors about the file as a whole point. */
    public static final Location TOP = new Location(1, 1);

    private final Path file;

    /** @param file the file the tree was read from: named in errors, and the base of relative paths */
    public ConfigFields(Path file) {
        this.file = file;
    }

    public Path file() {
        return file;
    }

    public record HostPort(String host, int port) {
    }

    public ConfigException error(Location location, String path, String message) {
        return new ConfigException(file + ":" + location + ": " + (path.isEmpty() ? "" : path + ": ") + message);
    }

    public Mapping mapping(Node node, String path) throws ConfigException {
        if (node instanceof Mapping m) {
            return m;
        }
        throw error(node.location(), path, "must be a mapping (got " + describe(node) + ")");
    }

    /** @param prefix the field path of the mapping followed by a dot, or "" at the top level */
    public void checkKeys(Mapping mapping, String prefix, List<String> allowed) throws ConfigException {
        Set<String> known = Set.copyOf(allowed);
        for (Entry entry : mapping.entries().values()) {
            if (!known.contains(entry.key())) {
                throw error(entry.keyLocation(), prefix + entry.key(), "unknown field (expected one of " + String.join(", ", allowed) + ")");
            }
        }
    }

    /** The entry of the field {@code path} (its last segment is the key in {@code mapping}); an error when absent. */
    public Entry required(Mapping mapping, String path) throws ConfigException {
        return required(mapping, path, null);
    }

    /** @param hint what the field holds, shown in the error, or null */
    public Entry required(Mapping mapping, String path, String hint) throws ConfigException {
        Entry entry = mapping.entries().get(path.substring(path.lastIndexOf('.') + 1));
        if (entry == null) {
            throw error(mapping.location(), path, "required field is missing" + (hint == null ? "" : " (" + hint + ")"));
        }
        return entry;
    }

    public String string(Entry entry, String path) throws ConfigException {
        if (entry.value() instanceof Scalar s && s.token() == JsonToken.VALUE_STRING) {
            return (String) s.value();
        }
        throw error(entry.keyLocation(), path, "must be a string (got " + describe(entry.value()) + ")");
    }

    public String nonEmpty(Entry entry, String path) throws ConfigException {
        String value = string(entry, path);
        if (value.isBlank()) {
            throw error(entry.keyLocation(), path, "must not be empty");
        }
        return value;
    }

    /** A string or a non-empty list of strings. */
    public List<String> strings(Entry entry, String path) throws ConfigException {
        if (entry.value() instanceof Scalar s && s.token() == JsonToken.VALUE_STRING) {
            return List.of((String) s.value());
        }
        if (entry.value() instanceof Sequence list && !list.items().isEmpty()) {
            List<String> out = new ArrayList<>();
            for (int i = 0; i < list.items().size(); i++) {
                Node item = list.items().get(i);
                if (!(item instanceof Scalar s) || s.token() != JsonToken.VALUE_STRING) {
                    throw error(item.location(), path + "[" + i + "]", "must be a string (got " + describe(item) + ")");
                }
                out.add((String) s.value());
            }
            return out;
        }
        throw error(entry.keyLocation(), path, "must be a string or a non-empty list of strings (got " + describe(entry.value()) + ")");
    }

    /** @param what the expected content, for the error, e.g. "a list of rules" */
    public Sequence sequence(Entry entry, String path, String what) throws ConfigException {
        if (entry.value() instanceof Sequence list) {
            return list;
        }
        throw error(entry.keyLocation(), path, "must be " + what + " (got " + describe(entry.value()) + ")");
    }

    public Pattern regex(Entry entry, String path) throws ConfigException {
        String value = string(entry, path);
        try {
            return Pattern.compile(value);
        } catch (PatternSyntaxException e) {
            throw error(entry.keyLocation(), path, "invalid regular expression: " + e.getDescription() + " near index " + e.getIndex());
        }
    }

    /** A non-empty path, a relative one resolved against the folder of this file. */
    public Path path(Entry entry, String path) throws ConfigException {
        String value = nonEmpty(entry, path);
        try {
            return file.toAbsolutePath().getParent().resolve(value).normalize();
        } catch (InvalidPathException e) {
            throw error(entry.keyLocation(), path, "is not a valid path (got " + echo(value) + ")");
        }
    }

    public int positiveInt(Entry entry, String path) throws ConfigException {
        return (int) positiveLong(entry, path, Integer.MAX_VALUE);
    }

    public long positiveLong(Entry entry, String path, long max) throws ConfigException {
        if (!(entry.value() instanceof Scalar s) || s.token() != JsonToken.VALUE_NUMBER_INT) {
            throw error(entry.keyLocation(), path, "must be a positive integer (got " + describe(entry.value()) + ")");
        }
        BigInteger value = new BigInteger(s.value().toString());
        if (value.signum() <= 0 || value.compareTo(BigInteger.valueOf(max)) > 0) {
            throw error(entry.keyLocation(), path, "must be a positive integer at most " + max + " (got " + value + ")");
        }
        return value.longValueExact();
    }

    /** {@code host:port} with the port in {@code minPort}-65535; IPv6 hosts in brackets, returned without them. */
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

    /** A broker node id key: a non-negative integer. */
    public int nodeId(Entry entry, String path) throws ConfigException {
        int id;
        try {
            id = Integer.parseInt(entry.key());
        } catch (NumberFormatException e) {
            id = -1;
        }
        if (id < 0) {
            throw error(entry.keyLocation(), path, "broker node id must be a non-negative integer (got " + echo(entry.key()) + ")");
        }
        return id;
    }

    /** A list of workload identities ({@code readers}, {@code writers}): non-empty, of printable strings (SPIFFE ids or globs). */
    public List<String> identities(Entry entry, String path) throws ConfigException {
        if (!(entry.value() instanceof Sequence list) || list.items().isEmpty()) {
            throw error(entry.keyLocation(), path, "must be a non-empty list of workload identities, e.g."
                    + " spiffe://cluster.local/ns/apps/sa/billing (got " + (entry.value() instanceof Sequence
                    ? "an empty list" : ConfigFields.describe(entry.value())) + ")");
        }
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < list.items().size(); i++) {
            Node item = list.items().get(i);
            if (!(item instanceof Scalar s) || s.token() != JsonToken.VALUE_STRING || ((String) s.value()).isBlank()) {
                throw error(item.location(), path + "[" + i + "]", "must be a workload identity string (got "
                        + ConfigFields.describe(item) + ")");
            }
            String id = (String) s.value();
            if (!id.strip().equals(id) || id.chars().anyMatch(c -> c < 0x21 || c > 0x7e)) {
                throw error(item.location(), path + "[" + i + "]", "must be printable ASCII without spaces (got "
                        + ConfigFields.describe(item) + ")");
            }
            ids.add(id);
        }
        return ids;
    }

    /** The value of a string field that must be one of {@code choices}. */
    public String oneOf(Entry entry, String path, List<String> choices) throws ConfigException {
        if (entry.value() instanceof Scalar s && s.token() == JsonToken.VALUE_STRING && choices.contains((String) s.value())) {
            return (String) s.value();
        }
        throw error(entry.keyLocation(), path, "must be one of " + String.join(", ", choices) + " (got " + describe(entry.value()) + ")");
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

    /** A JSON Pointer that addresses a field (the root pointer "" would be the whole value). */
    public JsonPointer jsonPointer(Node node, String path) throws ConfigException {
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
}
