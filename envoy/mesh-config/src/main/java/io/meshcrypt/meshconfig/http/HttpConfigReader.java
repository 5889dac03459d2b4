package io.meshcrypt.meshconfig.http;

import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.meshcrypt.meshconfig.policy.Forgotten;
import io.meshcrypt.meshconfig.policy.Identities;
import io.meshcrypt.meshconfig.policy.SubjectReader;
import io.meshcrypt.meshconfig.policy.SubjectSource;
import io.meshcrypt.meshconfig.transform.BodyReplace;
import io.meshcrypt.meshconfig.transform.FieldOp;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import io.meshcrypt.meshconfig.transform.Replacements;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import io.meshcrypt.meshconfig.yaml.ConfigFields;
import io.meshcrypt.meshconfig.yaml.YamlTree.Entry;
import io.meshcrypt.meshconfig.yaml.YamlTree.Mapping;
import io.meshcrypt.meshconfig.yaml.YamlTree.Node;
import io.meshcrypt.meshconfig.yaml.YamlTree.Scalar;
import io.meshcrypt.meshconfig.yaml.YamlTree.Sequence;
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
import java.util.stream.Stream;

/** The {@code http:} section of filter.yaml and of the mesh file; see docs/configuration.md for the schema. */
public final class HttpConfigReader {

    private static final List<String> HTTP_KEYS = List.of("rules");
    private static final List<String> RULE_KEYS = List.of("name", "match", "binding", "request", "response",
            "readers", "subject", "forgotten");
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

    private final ConfigFields config;
    private final SubjectReader subjects;

    public HttpConfigReader(ConfigFields config) {
        this.config = config;
        this.subjects = new SubjectReader(config);
    }

    public HttpRules http(Entry entry) throws ConfigException {
        Mapping http = config.mapping(entry.value(), "http");
        config.checkKeys(http, "http.", HTTP_KEYS);
        Entry rulesEntry = http.entries().get("rules");
        if (rulesEntry == null) {
            return HttpRules.NONE;
        }
        Sequence list = config.sequence(rulesEntry, "http.rules", "a list of rules");
        List<HttpRule> rules = new ArrayList<>();
        Set<String> names = new HashSet<>();
        for (int i = 0; i < list.items().size(); i++) {
            String path = "http.rules[" + i + "]";
            HttpRule rule = rule(list.items().get(i), path);
            if (!names.add(rule.name())) {
                throw config.error(list.items().get(i).location(), path + ".name", "duplicate rule name " + ConfigFields.echo(rule.name()));
            }
            rules.add(rule);
        }
        return new HttpRules(rules);
    }

    private HttpRule rule(Node node, String path) throws ConfigException {
        Mapping rule = config.mapping(node, path);
        config.checkKeys(rule, path + ".", RULE_KEYS);
        String name = config.nonEmpty(config.required(rule, path + ".name"), path + ".name");
        Entry matchEntry = rule.entries().get("match");
        RouteMatch match = matchEntry == null ? RouteMatch.ANY : match(matchEntry, path + ".match");
        Entry bindingEntry = rule.entries().get("binding");
        String binding = bindingEntry == null ? null : config.nonEmpty(bindingEntry, path + ".binding");
        Entry requestEntry = rule.entries().get("request");
        RuleSide request = requestEntry == null ? RuleSide.NONE : side(requestEntry, path + ".request");
        Entry responseEntry = rule.entries().get("response");
        RuleSide response = responseEntry == null ? RuleSide.NONE : side(responseEntry, path + ".response");
        Entry readersEntry = rule.entries().get("readers");
        Identities readers = readersEntry == null ? null : Identities.of(config.identities(readersEntry, path + ".readers"));
        Entry subjectEntry = rule.entries().get("subject");
        SubjectSource subject = subjects.subject(subjectEntry, path + ".subject", SubjectReader.REQUEST);
        if (subject != null && subject.header() != null) {
            Entry nameEntry = ((Mapping) subjectEntry.value()).entries().get("name");
            if (!HEADER_NAME.matcher(subject.header()).matches()) {
                throw config.error(nameEntry.keyLocation(), path + ".subject.name", "header names must be lower-case"
                        + " HTTP tokens (got " + ConfigFields.echo(subject.header()) + ")");
            }
        }
        Forgotten forgotten = subjects.forgotten(rule.entries().get("forgotten"), subject != null, path + ".forgotten");
        boolean crypto = Stream.concat(request.fields().stream(), response.fields().stream())
                .anyMatch(op -> op instanceof FieldOp.Encrypt || op instanceof FieldOp.Decrypt);
        if (crypto && binding == null) {
            throw config.error(rule.location(), path + ".binding", "required when the rule encrypts or decrypts fields"
                    + " (the name encrypted fields are bound to, like a Kafka topic)");
        }
        if (subject != null && !crypto) {
            throw config.error(subjectEntry.keyLocation(), path + ".subject", "only applies to a rule that encrypts or"
                    + " decrypts fields (their subject's key encrypts them)");
        }
        return new HttpRule(name, match, binding, request, response, readers, subject, forgotten);
    }

    private RouteMatch match(Entry entry, String path) throws ConfigException {
        Mapping match = config.mapping(entry.value(), path);
        config.checkKeys(match, path + ".", MATCH_KEYS);
        Set<String> methods = new LinkedHashSet<>();
        Entry methodsEntry = match.entries().get("methods");
        if (methodsEntry != null) {
            for (String method : config.strings(methodsEntry, path + ".methods")) {
                if (!METHOD.matcher(method).matches()) {
                    throw config.error(methodsEntry.keyLocation(), path + ".methods", "must be upper-case HTTP methods (got "
                            + ConfigFields.echo(method) + ")");
                }
                methods.add(method);
            }
        }
        Entry prefixEntry = match.entries().get("path");
        String prefix = null;
        if (prefixEntry != null) {
            prefix = config.string(prefixEntry, path + ".path");
            if (!prefix.startsWith("/")) {
                throw config.error(prefixEntry.keyLocation(), path + ".path", "must be a path prefix starting with / (got "
                        + ConfigFields.echo(prefix) + ")");
            }
        }
        Entry regexEntry = match.entries().get("pathRegex");
        Pattern pathRegex = regexEntry == null ? null : config.regex(regexEntry, path + ".pathRegex");
        Entry typeEntry = match.entries().get("contentType");
        List<String> types = typeEntry == null ? List.of() : config.strings(typeEntry, path + ".contentType");
        for (String type : types) {
            if (!type.equals("*") && !type.matches("[A-Za-z0-9.+-]+/([A-Za-z0-9.+-]+|\\*)")) {
                throw config.error(typeEntry.keyLocation(), path + ".contentType", "must be media types such as application/json,"
                        + " application/* or * (got " + ConfigFields.echo(type) + ")");
            }
        }
        Entry bodyEntry = match.entries().get("body");
        Pattern body = bodyEntry == null ? null : config.regex(bodyEntry, path + ".body");
        return new RouteMatch(methods, prefix, pathRegex, types, body);
    }

    private RuleSide side(Entry entry, String path) throws ConfigException {
        Mapping side = config.mapping(entry.value(), path);
        config.checkKeys(side, path + ".", SIDE_KEYS);
        List<FieldOp> fields = new ArrayList<>();
        Entry fieldsEntry = side.entries().get("fields");
        if (fieldsEntry != null) {
            Sequence list = config.sequence(fieldsEntry, path + ".fields", "a list of field transforms");
            for (int i = 0; i < list.items().size(); i++) {
                fields.add(fieldOp(list.items().get(i), path + ".fields[" + i + "]"));
            }
        }
        List<BodyReplace> body = new ArrayList<>();
        Entry bodyEntry = side.entries().get("body");
        if (bodyEntry != null) {
            Sequence list = config.sequence(bodyEntry, path + ".body", "a list of {pattern, with} replacements");
            for (int i = 0; i < list.items().size(); i++) {
                String itemPath = path + ".body[" + i + "]";
                Mapping item = config.mapping(list.items().get(i), itemPath);
                config.checkKeys(item, itemPath + ".", BODY_REPLACE_KEYS);
                Pattern pattern = config.regex(config.required(item, itemPath + ".pattern"), itemPath + ".pattern");
                Entry with = config.required(item, itemPath + ".with");
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
                default -> throw config.error(invalidEntry.keyLocation(), path + ".onInvalid", "must be one of reject, pass (got "
                        + ConfigFields.describe(invalidEntry.value()) + ")");
            };
        }
        return new RuleSide(fields, body, headers, onInvalid);
    }

    private FieldOp fieldOp(Node node, String path) throws ConfigException {
        Mapping op = config.mapping(node, path);
        List<String> named = OPS.stream().filter(op.entries()::containsKey).toList();
        if (named.size() != 1) {
            throw config.error(op.location(), path, "must name exactly one of " + String.join(", ", OPS) + " (got "
                    + (named.isEmpty() ? "none" : String.join(", ", named)) + ")");
        }
        String kind = named.getFirst();
        config.checkKeys(op, path + ".", OP_KEYS.get(kind));
        Entry pointerEntry = op.entries().get(kind);
        JsonPointer pointer = config.jsonPointer(pointerEntry.value(), path + "." + kind);
        boolean required = false;
        Entry requiredEntry = op.entries().get("required");
        if (requiredEntry != null) {
            if (!(requiredEntry.value() instanceof Scalar s) || !(s.value() instanceof Boolean b)) {
                throw config.error(requiredEntry.keyLocation(), path + ".required", "must be true or false (got "
                        + ConfigFields.describe(requiredEntry.value()) + ")");
            }
            required = b;
        }
        return switch (kind) {
            case "encrypt" -> new FieldOp.Encrypt(pointer, required);
            case "decrypt" -> new FieldOp.Decrypt(pointer, required);
            case "redact" -> {
                Entry with = op.entries().get("with");
                yield new FieldOp.Redact(pointer, with == null ? FieldOp.Redact.DEFAULT_WITH : config.string(with, path + ".with"), required);
            }
            case "replace" -> {
                Pattern pattern = config.regex(config.required(op, path + ".pattern"), path + ".pattern");
                yield new FieldOp.Replace(pointer, pattern, replacement(config.required(op, path + ".with"), path + ".with", pattern), required);
            }
            case "set" -> new FieldOp.Set(pointer, json(config.required(op, path + ".value").value(), path + ".value"));
            default -> throw new IllegalStateException(kind);
        };
    }

    private HeaderChanges headers(Entry entry, String path) throws ConfigException {
        Mapping headers = config.mapping(entry.value(), path);
        config.checkKeys(headers, path + ".", HEADERS_KEYS);
        Map<String, String> set = new LinkedHashMap<>();
        Entry setEntry = headers.entries().get("set");
        if (setEntry != null) {
            for (Entry header : config.mapping(setEntry.value(), path + ".set").entries().values()) {
                String headerPath = path + ".set." + header.key();
                headerName(header.key(), header, headerPath);
                String value = config.string(header, headerPath);
                if (value.chars().anyMatch(c -> c < 0x20 && c != '\t' || c == 0x7f)) {
                    throw config.error(header.keyLocation(), headerPath, "must not contain control characters");
                }
                set.put(header.key(), value);
            }
        }
        List<String> remove = new ArrayList<>();
        Entry removeEntry = headers.entries().get("remove");
        if (removeEntry != null) {
            for (String name : config.strings(removeEntry, path + ".remove")) {
                headerName(name, removeEntry, path + ".remove");
                remove.add(name);
            }
        }
        return new HeaderChanges(set, remove);
    }

    private void headerName(String name, Entry at, String path) throws ConfigException {
        if (!HEADER_NAME.matcher(name).matches()) {
            throw config.error(at.keyLocation(), path, "header names must be lower-case HTTP tokens (got " + ConfigFields.echo(name) + ")");
        }
        if (RESERVED_HEADERS.contains(name)) {
            throw config.error(at.keyLocation(), path, "header " + name + " is managed by Envoy and meshcrypt, not by rules");
        }
    }

    private String replacement(Entry entry, String path, Pattern pattern) throws ConfigException {
        String with = config.string(entry, path);
        try {
            Replacements.validate(pattern, with);
        } catch (IllegalArgumentException e) {
            throw config.error(entry.keyLocation(), path, "invalid replacement: " + e.getMessage());
        }
        return with;
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
                    throw config.error(s.location(), path, "JSON has no " + d + " (got " + ConfigFields.describe(s) + ")");
                }
                return f.numberNode(s.value() instanceof BigDecimal d ? d : new BigDecimal(s.value().toString()));
            }
        }
    }
}
