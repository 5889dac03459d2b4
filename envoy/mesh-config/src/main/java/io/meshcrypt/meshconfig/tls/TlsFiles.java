package io.meshcrypt.meshconfig.tls;

import io.meshcrypt.meshconfig.yaml.ConfigException;
import io.meshcrypt.meshconfig.yaml.ConfigFields;
import io.meshcrypt.meshconfig.yaml.YamlTree.Entry;
import io.meshcrypt.meshconfig.yaml.YamlTree.Mapping;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;

/**
 * One component's mutual-TLS material in the local mesh: its own certificate and private key (PEM, PKCS#8) and the
 * CA certificate that every peer's certificate must chain to (no other trust roots).
 *
 * <pre>
 * tls:
 *   certificate: pki/filter-service/cert.pem   # relative to the config file's folder
 *   privateKey: pki/filter-service/key.pem     # owner-only (0600), checked by TlsMaterial on every load
 *   trustedCa: pki/ca.pem
 * </pre>
 */
public record TlsFiles(Path certificate, Path privateKey, Path trustedCa) {

    private static final List<String> KEYS = List.of("certificate", "privateKey", "trustedCa");

    public TlsFiles {
        Objects.requireNonNull(certificate, "certificate");
        Objects.requireNonNull(privateKey, "privateKey");
        Objects.requireNonNull(trustedCa, "trustedCa");
    }

    /** Reads a {@code tls:} section; all three fields are required, paths resolve against the file's folder. */
    public static TlsFiles read(ConfigFields fields, Entry entry, String path) throws ConfigException {
        Mapping mapping = fields.mapping(entry.value(), path);
        fields.checkKeys(mapping, path + ".", KEYS);
        return new TlsFiles(
                fields.path(fields.required(mapping, path + ".certificate", "PEM certificate file"), path + ".certificate"),
                fields.path(fields.required(mapping, path + ".privateKey", "PEM PKCS#8 private key file"), path + ".privateKey"),
                fields.path(fields.required(mapping, path + ".trustedCa", "PEM CA certificate file"), path + ".trustedCa"));
    }
}
