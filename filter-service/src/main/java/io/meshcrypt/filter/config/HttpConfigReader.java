package io.meshcrypt.filter.config;

import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.meshcrypt.filter.config.YamlTree.Entry;
import io.meshcrypt.filter.config.YamlTree.Mapping;
import io.meshcrypt.filter.config.YamlTree.Node;
import io.meshcrypt.filter.config.YamlTree.Scalar;
import io.meshcrypt.filter.config.YamlTree.Sequence;
import io.meshcrypt.filter.http.HeaderChanges;
import io.meshcrypt.filter.http.HttpRule;
import io.meshcrypt.filter.http.HttpRules;
import io.meshcrypt.filter.http.RouteMatch;
import io.meshcrypt.filter.http.RuleSide;
import io.meshcrypt.filter.transform.BodyReplace;
import io.meshcrypt.filter.transform.FieldOp;
import io.meshcrypt.filter.transform.JsonPointer;
import io.meshcrypt.filter.transform.Replacements;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/** The {@code http:} section of the filter config; see docs/configuration.md for the schema. */
final class HttpConfigReader {

    private static final List<String> HTTP_KEYS = List.of("rules");
    private static final List<String> RULE_KEYS = List.of("name", "match", "binding", "request", "response");
    private static final List<String> MATCH_KEYS = List.of("methods", "path", "pathRegex", "contentType", "body");
    private static final List<String> SIDE_KEYS = List.of("fields", "body", "headers", "onInvalid");
    private static final List<String> HEADERS_KEYS = List.of("set", "remove");
    private static final List<String> BODY_REPLACE_KEYS = List.of("pattern", "with");
    private static final List<String> OPS = List.of("encrypt", "decrypt", "redact", "replace", "set");
    private static final Map<String, List<String>> OP_KEYS = Map.of(
            "encrypt", List.of("encrypt", "required"),
            "decrypt", List.of("decrypt", "required"),
            "redact", List.of("redact", "with", "required"),
            "replace", List.of("replace", "pattern", "with", "required"),
            "set", List.of("set", "value"));
    private static final Pattern METHOD = Pattern.compile("[A-Z]+");
    private static final Pattern HEADER_NAME = Pattern.compile("[a-z0-9!#$%&'*+.^_`|~-]+");
    /** Managed by Envoy or by meshcrypt itself (content-length follows the rewritten body). */
    private static final Set<String> RESERVED_HEADERS = Set.of("host", "content-length", "transfer-encoding", "connection");

    private final ConfigReader reader;

    HttpConfigReader(ConfigReader reader) {
        this.reader = reader;
    }

    HttpRules http(Entry entry) throws ConfigException {
        Mapping http = reader.mapping(entry.value(), "http");
        reader.checkKeys(http, "http.", HTTP_KEYS);
        Entry rulesEntry = http.entries().get("rules");
        if (rulesEntry == null) {
            return HttpRules.NONE;
        }
        Sequence list = sequence(rulesEntry, "http.rules", "a list of rules");
        List<HttpRule> rules = new ArrayList<>();
        Set<String> names = new HashSet<>();
        for (int i = 0; i < list.items().size(); i++) {
            String path = "http.rules[" + i + "]";
            HttpRule rule = rule(list.items().get(i), path);
            if (!names.add(rule.name())) {
                throw reader.error(list.items().get(i).location(), path + ".name", "duplicate rule name " + ConfigReader.echo(rule.name()));
            }
            rules.add(rule);
        }
        return new HttpRules(rules);
    }

    private HttpRule rule(Node node, String path) throws ConfigException {
        Mapping rule = reader.mapping(node, path);
        reader.checkKeys(rule, path + ".", RULE_KEYS);
        Entry nameEntry = rule.entries().get("name");
        if (nameEntry == null) {
            throw reader.error(rule.location(), path + ".name", "required field is missing");
        }
        String name = nonEmpty(nameEntry, path + ".name");
        Entry matchEntry = rule.entries().get("match");
        RouteMatch match = matchEntry == null ? RouteMatch.ANY : match(matchEntry, path + ".match");
        Entry bindingEntry = rule.entries().get("binding");
        String binding = bindingEntry == null ? null : nonEmpty(bindingEntry, path + ".binding");
        Entry requestEntry = rule.entries().get("request");
        RuleSide request = requestEntry == null ? RuleSide.NONE : side(requestEntry, path + ".request");
        Entry responseEntry = rule.entries().get("response");
        RuleSide response = responseEntry == null ? RuleSide.NONE : side(responseEntry, path + ".response");
        try {
            return new HttpRule(name, match, binding, request, response);
        } catch (IllegalArgumentException e) {
            throw reader.error(rule.location(), path + ".binding", "required when the rule encrypts or decrypts fields"
                    + " (the name encrypted fields are bound to, like a Kafka topic)");
        }
    }

    private RouteMatch match(Entry entry, String path) throws ConfigException {
        Mapping match = reader.mapping(entry.value(), path);
        reader.checkKeys(match, path + ".", MATCH_KEYS);
        Set<String> methods = new LinkedHashSet<>();
        Entry methodsEntry = match.entries().get("methods");
        if (methodsEntry != null) {
            for (String method : strings(methodsEntry, path + ".methods")) {
                if (!METHOD.matcher(method).matches()) {
                    throw reader.error(methodsEntry.keyLocation(), path + ".methods", "must be upper-case HTTP methods (got "
                            + ConfigReader.echo(method) + ")");
                }
                methods.add(method);
            }
        }
        Entry prefixEntry = match.entries().get("path");
        String prefix = null;
        if (prefixEntry != null) {
            prefix = reader.string(prefixEntry, path + ".path");
            if (!prefix.startsWith("/")) {
                throw reader.error(prefixEntry.keyLocation(), path + ".path", "must be a path prefix starting with / (got "
                        + ConfigReader.echo(prefix) + ")");
            }
        }
        Entry regexEntry = match.entries().get("pathRegex");
        Pattern pathRegex = regexEntry == null ? null : regex(regexEntry, path + ".pathRegex");
        Entry typeEntry = match.entries().get("contentType");
        List<String> types = typeEntry == null ? List.of() : strings(typeEntry, path + ".contentType");
        for (String type : types) {
            if (!type.equals("*") && !type.matches("[A-Za-z0-9.+-]+/([A-Za-z0-9.+-]+|\\*)")) {
                throw reader.error(typeEntry.keyLocation(), path + ".contentType", "must be media types such as application/json,"
                        + " application/* or * (got " + ConfigReader.echo(type) + ")");
            }
        }
        Entry bodyEntry = match.entries().get("body");
        Pattern body = bodyEntry == null ? null : regex(bodyEntry, path + ".body");
        return new RouteMatch(methods, prefix, pathRegex, types, body);
    }

    private RuleSide side(Entry entry, String path) throws ConfigException {
        Mapping side = reader.mapping(entry.value(), path);
        reader.checkKeys(side, path + ".", SIDE_KEYS);
        List<FieldOp> fields = new ArrayList<>();
        Entry fieldsEntry = side.entries().get("fields");
        if (fieldsEntry != null) {
            Sequence list = sequence(fieldsEntry, path + ".fields", "a list of field transforms");
            for (int i = 0; i < list.items().size(); i++) {
                fields.add(fieldOp(list.items().get(i), path + ".fields[" + i + "]"));
            }
        }
        List<BodyReplace> body = new ArrayList<>();
        Entry bodyEntry = side.entries().get("body");
        if (bodyEntry != null) {
            Sequence list = sequence(bodyEntry, path + ".body", "a list of {pattern, with} replacements");
            for (int i = 0; i < list.items().size(); i++) {
                String itemPath = path + ".body[" + i + "]";
                Mapping item = reader.mapping(list.items().get(i), itemPath);
                reader.checkKeys(item, itemPath + ".", BODY_REPLACE_KEYS);
                Pattern pattern = regex(required(item, "pattern", itemPath), itemPath + ".pattern");
                Entry with = required(item, "with", itemPath);
                body.add(new BodyReplace(pattern, replacement(with, itemPath + ".with", pattern)));
            }
        }
        Entry headersEntry = side.entries().get("headers");
        HeaderChanges headers = headersEntry == null ? HeaderChanges.NONE : headers(headersEntry, path + ".headers");
        RuleSide.OnInvalid onInvalid = RuleSide.OnInvalid.REJECT;
        Entry invalidEntry = side.entries().get("onInvalid");
        if (invalidEntry != null) {
            String value = invalidEntry.value() instanceof Scalar s && s.token() == JsonToken.VALUE_STRING ? (String) s.value() : "";
            onInvalid = switch (value) {
                case "reject" -> RuleSide.OnInvalid.REJECT;
                case "pass" -> RuleSide.OnInvalid.PASS;
                default -> throw reader.error(invalidEntry.keyLocation(), path + ".onInvalid", "must be one of reject, pass (got "
                        + ConfigReader.describe(invalidEntry.value()) + ")");
            };
        }
        return new RuleSide(fields, body, headers, onInvalid);
    }

    private FieldOp fieldOp(Node node, String path) throws ConfigException {
        Mapping op = reader.mapping(node, path);
        List<String> named = OPS.stream().filter(op.entries()::containsKey).toList();
        if (named.size() != 1) {
            throw reader.error(op.location(), path, "must name exactly one of " + String.join(", ", OPS) + " (got "
                    + (named.isEmpty() ? "none" : String.join(", ", named)) + ")");
        }
        String kind = named.getFirst();
        reader.checkKeys(op, path + ".", OP_KEYS.get(kind));
        Entry pointerEntry = op.entries().get(kind);
        JsonPointer pointer = reader.pointer(pointerEntry.value(), path + "." + kind);
        boolean required = false;
        Entry requiredEntry = op.entries().get("required");
        if (requiredEntry != null) {
            if (!(requiredEntry.value() instanceof Scalar s) || !(s.value() instanceof Boolean b)) {
                throw reader.error(requiredEntry.keyLocation(), path + ".required", "must be true or false (got "
                        + ConfigReader.describe(requiredEntry.value()) + ")");
            }
            required = b;
        }
        return switch (kind) {
            case "encrypt" -> new FieldOp.Encrypt(pointer, required);
            case "decrypt" -> new FieldOp.Decrypt(pointer, required);
            case "redact" -> {
                Entry with = op.entries().get("with");
                yield new FieldOp.Redact(pointer, with == null ? FieldOp.Redact.DEFAULT_WITH : reader.string(with, path + ".with"), required);
            }
            case "replace" -> {
                Pattern pattern = regex(required(op, "pattern", path), path + ".pattern");
                yield new FieldOp.Replace(pointer, pattern, replacement(required(op, "with", path), path + ".with", pattern), required);
            }
            case "set" -> new FieldOp.Set(pointer, json(required(op, "value", path).value(), path + ".value"));
            default -> throw new IllegalStateException(kind);
        };
    }

    private HeaderChanges headers(Entry entry, String path) throws ConfigException {
        Mapping headers = reader.mapping(entry.value(), path);
        reader.checkKeys(headers, path + ".", HEADERS_KEYS);
        Map<String, String> set = new LinkedHashMap<>();
        Entry setEntry = headers.entries().get("set");
        if (setEntry != null) {
            for (Entry header : reader.mapping(setEntry.value(), path + ".set").entries().values()) {
                String headerPath = path + ".set." + header.key();
                headerName(header.key(), header, headerPath);
                String value = reader.string(header, headerPath);
                if (value.chars().anyMatch(c -> c < 0x20 && c != '\t' || c == 0x7f)) {
                    throw reader.error(header.keyLocation(), headerPath, "must not contain control characters");
                }
                set.put(header.key(), value);
            }
        }
        List<String> remove = new ArrayList<>();
        Entry removeEntry = headers.entries().get("remove");
        if (removeEntry != null) {
            for (String name : strings(removeEntry, path + ".remove")) {
                headerName(name, removeEntry, path + ".remove");
                remove.add(name);
            }
        }
        return new HeaderChanges(set, remove);
    }

    private void headerName(String name, Entry at, String path) throws ConfigException {
        if (!HEADER_NAME.matcher(name).matches()) {
            throw reader.error(at.keyLocation(), path, "header names must be lower-case HTTP tokens (got " + ConfigReader.echo(name) + ")");
        }
        if (RESERVED_HEADERS.contains(name)) {
            throw reader.error(at.keyLocation(), path, "header " + name + " is managed by Envoy and meshcrypt, not by rules");
        }
    }

    private Entry required(Mapping mapping, String key, String path) throws ConfigException {
        Entry entry = mapping.entries().get(key);
        if (entry == null) {
            throw reader.error(mapping.location(), path + "." + key, "required field is missing");
        }
        return entry;
    }

    private Pattern regex(Entry entry, String path) throws ConfigException {
        String value = reader.string(entry, path);
        try {
            return Pattern.compile(value);
        } catch (PatternSyntaxException e) {
            throw reader.error(entry.keyLocation(), path, "invalid regular expression: " + e.getDescription()
                    + " near index " + e.getIndex());
        }
    }

    private String replacement(Entry entry, String path, Pattern pattern) throws ConfigException {
        String with = reader.string(entry, path);
        try {
            Replacements.validate(pattern, with);
        } catch (IllegalArgumentException e) {
            throw reader.error(entry.keyLocation(), path, "invalid replacement: " + e.getMessage());
        }
        return with;
    }

    private String nonEmpty(Entry entry, String path) throws ConfigException {
        String value = reader.string(entry, path);
        if (value.isBlank()) {
            throw reader.error(entry.keyLocation(), path, "must not be empty");
        }
        return value;
    }

    /** A string or a list of strings. */
    private List<String> strings(Entry entry, String path) throws ConfigException {
        if (entry.value() instanceof Scalar s && s.token() == JsonToken.VALUE_STRING) {
            return List.of((String) s.value());
        }
        if (entry.value() instanceof Sequence list && !list.items().isEmpty()) {
            List<String> out = new ArrayList<>();
            for (int i = 0; i < list.items().size(); i++) {
                Node item = list.items().get(i);
                if (!(item instanceof Scalar s) || s.token() != JsonToken.VALUE_STRING) {
                    throw reader.error(item.location(), path + "[" + i + "]", "must be a string (got " + ConfigReader.describe(item) + ")");
                }
                out.add((String) s.value());
            }
            return out;
        }
        throw reader.error(entry.keyLocation(), path, "must be a string or a non-empty list of strings (got "
                + ConfigReader.describe(entry.value()) + ")");
    }

    private Sequence sequence(Entry entry, String path, String what) throws ConfigException {
        if (entry.value() instanceof Sequence list) {
            return list;
        }
        throw reader.error(entry.keyLocation(), path, "must be " + what + " (got " + ConfigReader.describe(entry.value()) + ")");
    }

    /** The YAML value as JSON; numbers keep their exact form. */
    private JsonNode json(Node node, String path) throws ConfigException {
        JsonNodeFactory f = JsonNodeFactory.withExactBigDecimals(true);
        switch (node) {
            case Mapping m -> {
                ObjectNode object = f.objectNode();
                for (Entry e : m.entries().values()) {
                    object.set(e.key(), json(e.value(), path + "." + e.key()));
                }
                return object;
            }
            case Sequence s -> {
                ArrayNode array = f.arrayNode();
                for (int i = 0; i < s.items().size(); i++) {
                    array.add(json(s.items().get(i), path + "[" + i + "]"));
                }
                return array;
            }
            case Scalar s when s.value() == null -> {
                return f.nullNode();
            }
            case Scalar s when s.value() instanceof String text -> {
                return f.textNode(text);
            }
            case Scalar s when s.value() instanceof Boolean b -> {
                return f.booleanNode(b);
            }
            case Scalar s when s.token() == JsonToken.VALUE_NUMBER_INT -> {
                return f.numberNode(new BigInteger(s.value().toString()));
            }
            case Scalar s -> {
                if (s.value() instanceof Double d && !Double.isFinite(d)) {
                    throw reader.error(s.location(), path, "JSON has no " + d + " (got " + ConfigReader.describe(s) + ")");
                }
                return f.numberNode(s.value() instanceof BigDecimal d ? d : new BigDecimal(s.value().toString()));
            }
        }
    }
}
