package io.meshcrypt.meshconfig.mesh;

import io.meshcrypt.meshconfig.http.HttpConfigReader;
import io.meshcrypt.meshconfig.http.HttpRules;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.PolicyReader;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import io.meshcrypt.meshconfig.yaml.ConfigFields;
import io.meshcrypt.meshconfig.yaml.YamlTree;
import io.meshcrypt.meshconfig.yaml.YamlTree.Entry;
import io.meshcrypt.meshconfig.yaml.YamlTree.Mapping;
import io.meshcrypt.meshconfig.yaml.YamlTree.Node;
import java.nio.file.Path;
import java.util.Objects;

/**
 * What the filter-service applies to traffic, and reloads while running: the Kafka encryption policy and the HTTP
 * rewrite rules. Both come from one file, the config file itself or its {@code policyFrom} mesh file.
 */
public record Policies(EncryptionPolicy encryption, HttpRules http) {
    public Policies {
        Objects.requireNonNull(encryption, "encryption");
        Objects.requireNonNull(http, "http");
    }

    /**
     * The required {@code policy:} and the optional {@code http:} section of a file whose other keys belong to someone
     * else (a mesh file, or the section the xDS server delivers).
     */
    public static Policies parse(Path file, byte[] yaml) throws ConfigException {
        return read(new ConfigFields(file), YamlTree.parse(file.toString(), yaml));
    }

    /** @see #parse */
    public static Policies read(ConfigFields config, Node root) throws ConfigException {
        if (root == null) {
            throw config.error(ConfigFields.TOP, "policy", "the file is empty; a policy: section is required");
        }
        Mapping mapping = config.mapping(root, "");
        Entry entry = mapping.entries().get("policy");
        if (entry == null) {
            throw config.error(root.location(), "policy", "required field is missing");
        }
        Entry httpEntry = mapping.entries().get("http");
        return new Policies(new PolicyReader(config).policy(entry), httpEntry == null ? HttpRules.NONE : new HttpConfigReader(config).http(httpEntry));
    }
}
