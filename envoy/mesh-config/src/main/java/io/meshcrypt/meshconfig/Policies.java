package io.meshcrypt.meshconfig;

import io.meshcrypt.meshconfig.http.HttpRules;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
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
}
