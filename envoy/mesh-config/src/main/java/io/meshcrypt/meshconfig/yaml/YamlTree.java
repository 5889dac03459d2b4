package io.meshcrypt.meshconfig.yaml;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.exc.StreamReadException;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A YAML document read into a small tree that keeps the line and column of every key and value, so validation
 * errors can point at the exact spot. Jackson's own tree model drops locations. Public so other config files
 * of the project (the xDS server's mesh file) report errors the same way.
 */
public final class YamlTree {

    public record Location(int line, int column) {
        @Override
        public String toString() {
            return line + ":" + column;
        }
    }

    public sealed interface Node permits Scalar, Mapping, Sequence {
        Location location();
    }

    /** @param value String, Number, Boolean, or null (YAML null); {@code token} tells which */
    public record Scalar(JsonToken token, Object value, Location location) implements Node {
    }

    public record Entry(String key, Location keyLocation, Node value) {
    }

    public record Mapping(Map<String, Entry> entries, Location location) implements Node {
    }

    public record Sequence(List<Node> items, Location location) implements Node {
    }

    private static final YAMLFactory FACTORY = YAMLFactory.builder().build();

    private final String file;

    private YamlTree(String file) {
        this.file = file;
    }

    /** @return the root node, or null for an empty document */
    public static Node parse(String file, byte[] yaml) throws ConfigException {
        YamlTree tree = new YamlTree(file);
        try (JsonParser parser = FACTORY.createParser(yaml)) {
            JsonToken first = parser.nextToken();
            if (first == null) {
                return null;
            }
            Node root = tree.read(parser, first);
            if (parser.nextToken() != null) {
                throw tree.error(location(parser.currentTokenLocation()), "only one YAML document is allowed");
            }
            return root;
        } catch (StreamReadException e) {
            // The parser message can quote the offending source line; keep only its first line (the problem itself).
            String message = e.getOriginalMessage() == null ? "invalid YAML" : e.getOriginalMessage().lines()
                    .findFirst().orElse("invalid YAML").strip();
            throw tree.error(location(e.getLocation()), "YAML syntax error: " + message);
        } catch (IOException e) {
            throw new ConfigException(file + ": cannot read: " + e.getMessage(), e);
        }
    }

    private Node read(JsonParser parser, JsonToken token) throws IOException, ConfigException {
        Location location = location(parser.currentTokenLocation());
        return switch (token) {
            case START_OBJECT -> {
                Map<String, Entry> entries = new LinkedHashMap<>();
                for (JsonToken t = parser.nextToken(); t != JsonToken.END_OBJECT; t = parser.nextToken()) {
                    String key = parser.currentName();
                    Location keyLocation = location(parser.currentTokenLocation());
                    if (entries.containsKey(key)) {
                        throw error(keyLocation, "duplicate key \"" + key + "\"");
                    }
                    entries.put(key, new Entry(key, keyLocation, read(parser, parser.nextToken())));
                }
                yield new Mapping(entries, location);
            }
            case START_ARRAY -> {
                List<Node> items = new ArrayList<>();
                for (JsonToken t = parser.nextToken(); t != JsonToken.END_ARRAY; t = parser.nextToken()) {
                    items.add(read(parser, t));
                }
                yield new Sequence(items, location);
            }
            case VALUE_STRING -> new Scalar(token, parser.getText(), location);
            case VALUE_NUMBER_INT, VALUE_NUMBER_FLOAT -> new Scalar(token, parser.getNumberValue(), location);
            case VALUE_TRUE, VALUE_FALSE -> new Scalar(token, token == JsonToken.VALUE_TRUE, location);
            case VALUE_NULL -> new Scalar(token, null, location);
            default -> throw error(location, "unsupported YAML content (" + token + ")");
        };
    }

    private ConfigException error(Location location, String message) {
        return new ConfigException(file + ":" + location + ": " + message);
    }

    private static Location location(JsonLocation l) {
        return l == null ? new Location(1, 1) : new Location(Math.max(l.getLineNr(), 1), Math.max(l.getColumnNr(), 1));
    }
}
