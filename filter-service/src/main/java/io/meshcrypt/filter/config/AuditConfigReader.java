package io.meshcrypt.filter.config;

import com.fasterxml.jackson.core.JsonToken;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import io.meshcrypt.meshconfig.yaml.ConfigFields;
import io.meshcrypt.meshconfig.yaml.YamlTree.Entry;
import io.meshcrypt.meshconfig.yaml.YamlTree.Mapping;
import io.meshcrypt.meshconfig.yaml.YamlTree.Scalar;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/** The {@code audit:} section of the filter config into {@link AuditConfig}; errors as {@link ConfigFields}'. */
final class AuditConfigReader {

    static final List<String> KEYS = List.of("file", "stdout", "maxFileBytes", "maxFiles", "summarySeconds");
    /** A file smaller than a few lines would rotate on every line. */
    private static final long MIN_FILE_BYTES = 4096;

    private final ConfigFields fields;

    AuditConfigReader(ConfigFields fields) {
        this.fields = fields;
    }

    AuditConfig audit(Entry section) throws ConfigException {
        Mapping m = fields.mapping(section.value(), "audit");
        fields.checkKeys(m, "audit.", KEYS);
        Entry file = m.entries().get("file");
        Entry stdout = m.entries().get("stdout");
        if (stdout != null && !(stdout.value() instanceof Scalar s && s.token() == JsonToken.VALUE_TRUE)) {
            throw fields.error(stdout.keyLocation(), "audit.stdout", "must be true (or leave it out and set file); got "
                    + ConfigFields.describe(stdout.value()));
        }
        if ((file == null) == (stdout == null)) {
            throw fields.error(section.keyLocation(), "audit", "set exactly one destination: file: PATH or stdout: true");
        }
        Path path = null;
        if (file != null) {
            String value = fields.nonEmpty(file, "audit.file");
            if (value.equals("stdout") || value.equals("-")) {
                throw fields.error(file.keyLocation(), "audit.file", "for standard output write stdout: true (got "
                        + ConfigFields.echo(value) + ")");
            }
            path = fields.path(file, "audit.file");
        }
        long maxFileBytes = AuditConfig.DEFAULT_MAX_FILE_BYTES;
        Entry e = m.entries().get("maxFileBytes");
        if (e != null) {
            maxFileBytes = fields.positiveLong(e, "audit.maxFileBytes", Long.MAX_VALUE);
            if (maxFileBytes < MIN_FILE_BYTES) {
                throw fields.error(e.keyLocation(), "audit.maxFileBytes", "must be at least " + MIN_FILE_BYTES + " (got "
                        + maxFileBytes + ")");
            }
        }
        e = m.entries().get("maxFiles");
        int maxFiles = e == null ? AuditConfig.DEFAULT_MAX_FILES : (int) fields.positiveLong(e, "audit.maxFiles", 1000);
        e = m.entries().get("summarySeconds");
        Duration summary = e == null ? AuditConfig.DEFAULT_SUMMARY_INTERVAL
                : Duration.ofSeconds(fields.positiveLong(e, "audit.summarySeconds", 86_400));
        return new AuditConfig(path, maxFileBytes, maxFiles, summary);
    }
}
