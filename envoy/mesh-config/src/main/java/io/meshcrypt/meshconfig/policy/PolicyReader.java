package io.meshcrypt.meshconfig.policy;

import com.fasterxml.jackson.core.JsonToken;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import io.meshcrypt.meshconfig.yaml.ConfigFields;
import io.meshcrypt.meshconfig.yaml.YamlTree.Entry;
import io.meshcrypt.meshconfig.yaml.YamlTree.Mapping;
import io.meshcrypt.meshconfig.yaml.YamlTree.Node;
import io.meshcrypt.meshconfig.yaml.YamlTree.Scalar;
import io.meshcrypt.meshconfig.yaml.YamlTree.Sequence;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The {@code policy:} section of filter.yaml and of the mesh file into an {@link EncryptionPolicy}. */
public final class PolicyReader {

    private static final List<String> POLICY_KEYS = List.of("encrypt", "decryptOnly", "unmatched");
    private static final List<String> FIELD_ENTRY_KEYS = List.of("field", "readers");
    private static final List<String> ENCRYPT_ENTRY_KEYS = List.of("topic", "fields", "keys", "readers", "writers",
            "others", "headers", "subject", "forgotten");

    private final ConfigFields config;
    private final SubjectReader subjects;

    public PolicyReader(ConfigFields config) {
        this.config = config;
        this.subjects = new SubjectReader(config);
    }


    /**
     * The {@code policy:} section: {@code encrypt} globs, {@code decryptOnly} globs (topics no longer encrypted whose
     * old envelopes are still decrypted on fetch; any other unencrypted topic passes byte for byte) and
     * {@code unmatched}.
     */
    public EncryptionPolicy policy(Entry entry) throws ConfigException {
        Mapping mapping = config.mapping(entry.value(), "policy");
        config.checkKeys(mapping, "policy.", POLICY_KEYS);

        List<TopicRule> rules = List.of(TopicRule.wholeValue("*"));
        Entry encrypt = mapping.entries().get("encrypt");
        if (encrypt != null) {
            if (!(encrypt.value() instanceof Sequence list)) {
                throw config.error(encrypt.keyLocation(), "policy.encrypt", "must be a list of topic patterns (got " + ConfigFields.describe(encrypt.value()) + ")");
            }
            if (list.items().isEmpty()) {
                throw config.error(encrypt.keyLocation(), "policy.encrypt", "must list at least one topic pattern");
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
                default -> throw config.error(unmatchedEntry.keyLocation(), "policy.unmatched",
                        "must be one of passthrough, reject (got " + ConfigFields.describe(unmatchedEntry.value()) + ")");
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
            throw config.error(entry.keyLocation(), "policy.decryptOnly", "must be a list of topic patterns whose old envelopes"
                    + " are still decrypted on fetch (got " + ConfigFields.describe(entry.value()) + ")");
        }
        List<String> globs = new ArrayList<>();
        for (int i = 0; i < list.items().size(); i++) {
            Node item = list.items().get(i);
            if (!(item instanceof Scalar s) || s.token() != JsonToken.VALUE_STRING) {
                throw config.error(item.location(), "policy.decryptOnly[" + i + "]", "must be a topic pattern string (got "
                        + ConfigFields.describe(item) + ")");
            }
            String glob = (String) s.value();
            if (glob.isEmpty()) {
                throw config.error(item.location(), "policy.decryptOnly[" + i + "]", "must not be empty");
            }
            globs.add(glob);
        }
        return globs;
    }

    /**
     * A topic glob, or {@code {topic: glob, fields: [json pointers], keys: deterministic, readers: [ids], writers:
     * [ids], others: ciphertext|deny, headers: [names or globs]}} with at least one of {@code fields} (encrypt only
     * those fields of JSON values), {@code keys} (encrypt record keys with AES-SIV), {@code readers} and {@code writers}
     * (who gets plaintext, who may produce, by workload identity), {@code headers} (encrypt these headers' values too).
     */
    private TopicRule encryptEntry(Node item, String path) throws ConfigException {
        if (item instanceof Mapping entry) {
            config.checkKeys(entry, path + ".", ENCRYPT_ENTRY_KEYS);
            Entry topic = entry.entries().get("topic");
            if (topic == null) {
                throw config.error(entry.location(), path + ".topic", "required field is missing (topic pattern)");
            }
            String pattern = config.string(topic, path + ".topic");
            if (pattern.isEmpty()) {
                throw config.error(topic.keyLocation(), path + ".topic", "must not be empty");
            }
            Entry fields = entry.entries().get("fields");
            Entry keys = entry.entries().get("keys");
            boolean deterministicKeys = false;
            if (keys != null) {
                String mode = keys.value() instanceof Scalar k && k.token() == JsonToken.VALUE_STRING ? (String) k.value() : "";
                deterministicKeys = switch (mode) {
                    case "deterministic" -> true;
                    case "plaintext" -> false;
                    default -> throw config.error(keys.keyLocation(), path + ".keys",
                            "must be one of plaintext, deterministic (got " + ConfigFields.describe(keys.value()) + ")");
                };
            }
            Identities readers = identities(entry.entries().get("readers"), path + ".readers");
            Identities writers = identities(entry.entries().get("writers"), path + ".writers");
            TopicRule.Others others = others(entry.entries().get("others"), readers != null, path + ".others");
            List<JsonPointer> parsed = new ArrayList<>();
            Map<JsonPointer, Identities> fieldReaders = new LinkedHashMap<>();
            List<String> headers = headers(entry.entries().get("headers"), path + ".headers");
            SubjectSource subject = subjects.subject(entry.entries().get("subject"), path + ".subject",
                    SubjectReader.RECORD);
            Forgotten forgotten = subjects.forgotten(entry.entries().get("forgotten"), subject != null,
                    path + ".forgotten");
            if (fields == null) {
                if (keys == null && readers == null && writers == null && headers.isEmpty() && subject == null) {
                    throw config.error(entry.location(), path + ".fields", "required field is missing (JSON Pointers of the"
                            + " fields to encrypt; list the topic as a plain string to encrypt whole values, or add keys:"
                            + " deterministic, readers, writers, headers or subject)");
                }
            } else {
                if (!(fields.value() instanceof Sequence pointers) || pointers.items().isEmpty()) {
                    throw config.error(fields.keyLocation(), path + ".fields", "must be a non-empty list of JSON Pointers (got "
                            + ConfigFields.describe(fields.value()) + ")");
                }
                for (int i = 0; i < pointers.items().size(); i++) {
                    Node fieldNode = pointers.items().get(i);
                    String itemPath = path + ".fields[" + i + "]";
                    if (fieldNode instanceof Mapping field) {
                        // {field: /pointer, readers: [...]}: a field with readers of its own
                        config.checkKeys(field, itemPath + ".", FIELD_ENTRY_KEYS);
                        JsonPointer pointer = config.jsonPointer(config.required(field, itemPath + ".field").value(),
                                itemPath + ".field");
                        parsed.add(pointer);
                        fieldReaders.put(pointer, Identities.of(config.identities(
                                config.required(field, itemPath + ".readers"), itemPath + ".readers")));
                    } else {
                        parsed.add(config.jsonPointer(fieldNode, itemPath));
                    }
                }
            }
            return new TopicRule(pattern, parsed, deterministicKeys, readers, writers, others, fieldReaders, headers,
                    subject, forgotten);
        }
        if (!(item instanceof Scalar s) || s.token() != JsonToken.VALUE_STRING) {
            throw config.error(item.location(), path, "must be a topic pattern string (got " + ConfigFields.describe(item) + ")");
        }
        String pattern = (String) s.value();
        if (pattern.isEmpty()) {
            throw config.error(item.location(), path, "must not be empty");
        }
        return TopicRule.wholeValue(pattern);
    }

    /**
     * {@code headers}: a non-empty list of record header names whose values are encrypted, each exact or a glob (the
     * topic patterns' syntax); no empty names, no repeats. Absent: an empty list.
     */
    private List<String> headers(Entry entry, String path) throws ConfigException {
        if (entry == null) {
            return List.of();
        }
        if (!(entry.value() instanceof Sequence list)) {
            throw config.error(entry.keyLocation(), path, "must be a non-empty list of header names or globs (got "
                    + ConfigFields.describe(entry.value()) + ")");
        }
        if (list.items().isEmpty()) {
            throw config.error(entry.keyLocation(), path, "must list at least one header name or glob (omit it to leave"
                    + " headers as sent)");
        }
        List<String> names = new ArrayList<>();
        for (int i = 0; i < list.items().size(); i++) {
            Node item = list.items().get(i);
            if (!(item instanceof Scalar s) || s.token() != JsonToken.VALUE_STRING) {
                throw config.error(item.location(), path + "[" + i + "]", "must be a header name or glob string (got "
                        + ConfigFields.describe(item) + ")");
            }
            String name = (String) s.value();
            if (name.isEmpty()) {
                throw config.error(item.location(), path + "[" + i + "]", "must not be empty");
            }
            if (names.contains(name)) {
                throw config.error(item.location(), path + "[" + i + "]", "repeats " + ConfigFields.echo(name));
            }
            names.add(name);
        }
        return names;
    }

    private Identities identities(Entry entry, String path) throws ConfigException {
        return entry == null ? null : Identities.of(config.identities(entry, path));
    }

    /** {@code others}: only beside {@code readers}; ciphertext unless it says deny. */
    private TopicRule.Others others(Entry entry, boolean hasReaders, String path) throws ConfigException {
        if (entry == null) {
            return TopicRule.Others.CIPHERTEXT;
        }
        if (!hasReaders) {
            throw config.error(entry.keyLocation(), path, "only applies beside readers (what identities outside them get)");
        }
        String value = entry.value() instanceof Scalar s && s.token() == JsonToken.VALUE_STRING ? (String) s.value() : "";
        return switch (value) {
            case "ciphertext" -> TopicRule.Others.CIPHERTEXT;
            case "deny" -> TopicRule.Others.DENY;
            default -> throw config.error(entry.keyLocation(), path, "must be one of ciphertext, deny (got "
                    + ConfigFields.describe(entry.value()) + ")");
        };
    }
}
