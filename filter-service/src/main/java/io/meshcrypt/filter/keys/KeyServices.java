package io.meshcrypt.filter.keys;

import io.meshcrypt.filter.config.FilterConfig;
import io.meshcrypt.filter.config.KeysConfig;
import io.meshcrypt.filter.crypto.DekManager;
import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.crypto.ValueCipherV2;
import io.meshcrypt.filter.kms.KekProvider;
import io.meshcrypt.filter.kms.KekRefusedException;
import io.meshcrypt.filter.kms.KeyAudit;
import java.io.IOException;
import java.security.GeneralSecurityException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The composition root of the key services: builds the KEK provider, the DEK caches and the value cipher a
 * configuration asks for. Apart from crypto/ and kms/, so that neither needs the configuration or the other's wiring.
 */
public final class KeyServices {
    private static final Logger log = LoggerFactory.getLogger(KeyServices.class);

    private KeyServices() {
    }

    /**
     * @return envelope version 2 with the configured KEK provider when {@code keys} is set (the top-level keyset, if
     *     any, still decrypts version 1), else version 1 with the keyset
     */
    public static ValueCipher cipher(FilterConfig config) throws IOException, GeneralSecurityException {
        return cipher(config, KeyAudit.NONE);
    }

    /** As {@link #cipher(FilterConfig)}, reporting key operations to {@code audit} (the audit trail). */
    public static ValueCipher cipher(FilterConfig config, KeyAudit audit) throws IOException, GeneralSecurityException {
        if (config.keys() == null) {
            return ValueCipherV1.fromKeysetFile(config.keyset());
        }
        KeysConfig keys = config.keys();
        ValueCipherV1 v1 = config.keyset() == null ? null : ValueCipherV1.fromKeysetFile(config.keyset());
        KekProvider provider = KekProviders.open(keys);
        try {
            log.info("KEK provider {}: current KEK {}", provider.name(), provider.currentKekId());
        } catch (KekRefusedException e) {
            provider.close();
            throw new GeneralSecurityException("KEK provider " + provider.name() + " has no usable KEK (run keys create): " + e.getMessage(), e);
        } catch (GeneralSecurityException e) {
            // An unreachable KMS must not stop the service from starting: cached-free traffic fails closed until it returns.
            log.warn("KEK provider {} is not reachable at startup: {}", provider.name(), e.getMessage());
        }
        DekManager.Settings defaults = DekManager.Settings.defaults();
        DekManager deks = new DekManager(provider, new DekManager.Settings(keys.maxRecordsPerDek(), keys.maxDekAge(),
                keys.cacheTtl(), keys.cacheMaxEntries(), keys.kmsTimeout(), defaults.backoffMin(), defaults.backoffMax(),
                keys.kekCheckInterval()).withNewDataKeyRate(config.limits().newDataKeysPerSecond(),
                config.limits().newDataKeysBurst())
                .withUnwrapRate(keys.unwrapsPerSecond(), keys.unwrapsBurst())
                .withMaxFailedUnwraps(keys.maxFailedUnwraps()), audit);
        return new ValueCipherV2(deks, v1);
    }

}
