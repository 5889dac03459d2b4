package io.meshcrypt.meshconfig.policy;

import com.fasterxml.jackson.core.JsonToken;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import io.meshcrypt.meshconfig.yaml.ConfigFields;
import io.meshcrypt.meshconfig.yaml.YamlTree.Entry;
import io.meshcrypt.meshconfig.yaml.YamlTree.Mapping;
import io.meshcrypt.meshconfig.yaml.YamlTree.Scalar;
import java.util.List;
import java.util.Map;

/**
 * {@code subject:} and {@code forgotten:} as Kafka policy entries and HTTP rules write them: one reader, so both say
 * the same things the same way (the HTTP rules name the value {@code body}, and have no record key).
 */
public final class SubjectReader {
    /** The {@code from:} words of policy entries. */
    public static final Map<String, SubjectSource.From> RECORD = Map.of("key", SubjectSource.From.KEY,
            "value", SubjectSource.From.VALUE, "header", SubjectSource.From.HEADER);
    /** The {@code from:} words of HTTP rules: the request body or a request header. */
    public static final Map<String, SubjectSource.From> REQUEST = Map.of("body", SubjectSource.From.VALUE,
            "header", SubjectSource.From.HEADER);

    private static final List<String> SUBJECT_KEYS = List.of("from", "pointer", "name", "scope");
    private static final List<String> FORGOTTEN_KEYS = List.of("placeholder");

    private final ConfigFields config;

    public SubjectReader(ConfigFields config) {
        this.config = config;
    }

    /**
     * {@code subject}: {@code {from: F}} with {@code pointer: /json/pointer} for the value (body), {@code name:
     * header-name} for a header, and an optional {@code scope: name}; absent: null.
     *
     * @param froms the {@code from:} words allowed here, in the order error messages list them
     */
    public SubjectSource subject(Entry entry, String path, Map<String, SubjectSource.From> froms)
            throws ConfigException {
        if (entry == null) {
            return null;
        }
        List<String> words = froms.keySet().stream().sorted((a, b) -> order(froms, a) - order(froms, b)).toList();
        String valueWord = words.stream().filter(w -> froms.get(w) == SubjectSource.From.VALUE).findFirst().orElseThrow();
        if (!(entry.value() instanceof Mapping mapping)) {
            throw config.error(entry.keyLocation(), path, "must be a mapping such as "
                    + (froms.containsKey("key") ? "{from: key}, " : "") + "{from: " + valueWord + ", pointer:"
                    + " /customer/id} or {from: header, name: user-id} (got " + ConfigFields.describe(entry.value()) + ")");
        }
        config.checkKeys(mapping, path + ".", SUBJECT_KEYS);
        SubjectSource.From from = froms.get(config.oneOf(config.required(mapping, path + ".from"), path + ".from", words));
        Entry pointer = mapping.entries().get("pointer");
        Entry name = mapping.entries().get("name");
        if (pointer != null && from != SubjectSource.From.VALUE) {
            throw config.error(pointer.keyLocation(), path + ".pointer", "only applies with from: " + valueWord);
        }
        if (name != null && from != SubjectSource.From.HEADER) {
            throw config.error(name.keyLocation(), path + ".name", "only applies with from: header");
        }
        SubjectSource source = switch (from) {
            case KEY -> SubjectSource.key();
            case VALUE -> SubjectSource.value(config.jsonPointer(config.required(mapping, path + ".pointer",
                    "the JSON Pointer of the " + valueWord + " field that holds the subject id").value(), path + ".pointer"));
            case HEADER -> SubjectSource.header(config.nonEmpty(config.required(mapping, path + ".name",
                    "the name of the header that holds the subject id"), path + ".name"));
        };
        Entry scope = mapping.entries().get("scope");
        if (scope == null) {
            return source;
        }
        String named = config.string(scope, path + ".scope");
        if (!SubjectSource.SCOPE.matcher(named).matches()) {
            throw config.error(scope.keyLocation(), path + ".scope", "must be 1-249 characters of A-Z a-z 0-9 . _ - * ?"
                    + " (got " + ConfigFields.describe(scope.value()) + ")");
        }
        return source.withScope(named);
    }

    private static int order(Map<String, SubjectSource.From> froms, String word) {
        return froms.get(word).ordinal();
    }

    /**
     * {@code forgotten}: only beside {@code subject}; {@code null} (the default) or {@code {placeholder: text}}.
     * Absent beside a subject: {@link Forgotten#NULL}; absent without one: null.
     */
    public Forgotten forgotten(Entry entry, boolean hasSubject, String path) throws ConfigException {
        if (entry == null) {
            return hasSubject ? Forgotten.NULL : null;
        }
        if (!hasSubject) {
            throw config.error(entry.keyLocation(), path, "only applies beside subject (what readers get for a"
                    + " forgotten subject's records)");
        }
        if (entry.value() instanceof Scalar s && s.token() == JsonToken.VALUE_NULL) {
            return Forgotten.NULL;
        }
        if (!(entry.value() instanceof Mapping mapping)) {
            throw config.error(entry.keyLocation(), path, "must be null or {placeholder: text} (got "
                    + ConfigFields.describe(entry.value()) + ")");
        }
        config.checkKeys(mapping, path + ".", FORGOTTEN_KEYS);
        return new Forgotten(config.string(config.required(mapping, path + ".placeholder"), path + ".placeholder"));
    }
}
