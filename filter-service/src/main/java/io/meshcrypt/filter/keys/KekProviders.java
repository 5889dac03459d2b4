package io.meshcrypt.filter.keys;

import io.meshcrypt.filter.config.KeysConfig;
import io.meshcrypt.filter.kms.AwsKmsKekProvider;
import io.meshcrypt.filter.kms.KekProvider;
import io.meshcrypt.filter.kms.LocalKekProvider;
import io.meshcrypt.filter.kms.Pkcs11KekProvider;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.GeneralSecurityException;
import java.util.Arrays;

/** Opens the KEK provider a {@code keys:} section names. */
public final class KekProviders {
    private KekProviders() {
    }

    public static KekProvider open(KeysConfig keys) throws GeneralSecurityException {
        return switch (keys.provider()) {
            case KeysConfig.LOCAL -> new LocalKekProvider(keys.localKeyset());
            case KeysConfig.PKCS11 -> {
                KeysConfig.Pkcs11 c = keys.pkcs11();
                char[] pin = pin(c);
                try {
                    yield new Pkcs11KekProvider(c.library(), c.slot(), pin, c.label());
                } finally {
                    Arrays.fill(pin, '\0');
                }
            }
            case KeysConfig.AWS_KMS -> AwsKmsKekProvider.create(keys.awsKms().keyId(), keys.awsKms().region(),
                    keys.awsKms().endpoint(), null, keys.kmsTimeout());
            default -> throw new GeneralSecurityException("unknown KEK provider " + keys.provider());
        };
    }

    private static char[] pin(KeysConfig.Pkcs11 c) throws GeneralSecurityException {
        if (c.pinEnv() != null) {
            String value = System.getenv(c.pinEnv());
            if (value == null || value.isEmpty()) {
                throw new GeneralSecurityException("environment variable " + c.pinEnv() + " (keys.pkcs11.pinEnv) is not set");
            }
            return value.toCharArray();
        }
        try {
            byte[] bytes = Files.readAllBytes(c.pinFile());
            try {
                String text = new String(bytes, StandardCharsets.UTF_8).strip();
                if (text.isEmpty()) {
                    throw new GeneralSecurityException("PIN file " + c.pinFile() + " is empty");
                }
                return text.toCharArray();
            } finally {
                Arrays.fill(bytes, (byte) 0);
            }
        } catch (IOException e) {
            throw new GeneralSecurityException("cannot read PIN file " + c.pinFile() + ": " + e.getClass().getSimpleName());
        }
    }
}
