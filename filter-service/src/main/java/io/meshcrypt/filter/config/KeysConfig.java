package io.meshcrypt.filter.config;

import io.meshcrypt.filter.crypto.DekManager;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;

/**
 * The {@code keys:} section: where KEKs live and how DEKs are used. With it, the filter-service writes envelope
 * version 2; without it, version 1 with the {@code keyset:} keys directly (see docs/security.md).
 *
 * <pre>
 * keys:
 *   provider: pkcs11                  # local | pkcs11 | aws-kms
 *   local:
 *     keyset: kek.json                # Tink keyset of KEKs; default: the top-level keyset
 *   pkcs11:
 *     library: /usr/lib/softhsm/libsofthsm2.so
 *     slot: 1234                      # token slot id
 *     pinFile: /run/secrets/hsm-pin   # or pinEnv: HSM_PIN (exactly one); the PIN itself is never in this file
 *     label: meshcrypt-kek            # KEK versions are labelled meshcrypt-kek.1, .2, ...
 *   awsKms:
 *     keyId: alias/meshcrypt          # key id, ARN or alias (an alias lets `keys rotate` repoint it)
 *     region: eu-west-1
 *     endpoint: https://kms.example   # optional endpoint override
 *   dek:
 *     maxRecords: 1073741824          # records per DEK (at most 2^32)
 *     maxAgeSeconds: 3600
 *   cache:
 *     ttlSeconds: 3600                # unwrapped DEKs kept for decrypting
 *     maxEntries: 10000
 *   kmsTimeoutMillis: 2000            # longest a connection waits for the KMS
 *   kekCheckSeconds: 300              # how often a KEK rotated elsewhere is noticed
 *   unwrap:                           # unwraps of wrapped DEKs never seen here (forged envelopes cost one each)
 *     perSecond: 100
 *     burst: 200
 *     maxFailed: 1000                 # failed unwraps remembered for their backoff, apart from the DEK cache
 * </pre>
 *
 * Only the subsection of the chosen provider may be present. Credentials for AWS come from the SDK's default chain
 * (environment, profile, instance role), never from this file.
 */
public record KeysConfig(
        String provider,
        Path localKeyset,
        Pkcs11 pkcs11,
        AwsKms awsKms,
        long maxRecordsPerDek,
        Duration maxDekAge,
        Duration cacheTtl,
        int cacheMaxEntries,
        Duration kmsTimeout,
        Duration kekCheckInterval,
        int unwrapsPerSecond,
        int unwrapsBurst,
        int maxFailedUnwraps) {

    public static final String LOCAL = "local";
    public static final String PKCS11 = "pkcs11";
    public static final String AWS_KMS = "aws-kms";

    public KeysConfig {
        Objects.requireNonNull(provider, "provider");
        Objects.requireNonNull(maxDekAge, "maxDekAge");
        Objects.requireNonNull(cacheTtl, "cacheTtl");
        Objects.requireNonNull(kmsTimeout, "kmsTimeout");
        Objects.requireNonNull(kekCheckInterval, "kekCheckInterval");
    }

    /** Without {@code unwrap:}: the unwrap rate limit takes its defaults. */
    public KeysConfig(String provider, Path localKeyset, Pkcs11 pkcs11, AwsKms awsKms, long maxRecordsPerDek,
                      Duration maxDekAge, Duration cacheTtl, int cacheMaxEntries, Duration kmsTimeout,
                      Duration kekCheckInterval) {
        this(provider, localKeyset, pkcs11, awsKms, maxRecordsPerDek, maxDekAge, cacheTtl, cacheMaxEntries, kmsTimeout,
                kekCheckInterval, (int) DekManager.Settings.DEFAULT_UNWRAPS_PER_SECOND,
                DekManager.Settings.DEFAULT_UNWRAPS_BURST, DekManager.Settings.DEFAULT_MAX_FAILED_UNWRAPS);
    }

    /** @param pinFile file holding the user PIN, or null; @param pinEnv environment variable holding it, or null */
    public record Pkcs11(Path library, long slot, Path pinFile, String pinEnv, String label) {
    }

    /** @param endpoint null for the region's public endpoint */
    public record AwsKms(String keyId, String region, URI endpoint) {
    }
}
