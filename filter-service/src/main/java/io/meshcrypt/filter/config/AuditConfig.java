package io.meshcrypt.filter.config;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;

/**
 * The {@code audit:} section of filter.yaml: where the audit trail goes and how it is bounded.
 *
 * <pre>
 * audit:
 *   file: logs/audit.jsonl     # or stdout: true (exactly one destination); relative to this file's folder
 *   maxFileBytes: 10485760     # rotate by size: audit.jsonl -> audit.jsonl.1 -> ... (default 10 MiB)
 *   maxFiles: 5                # files kept, the current one included (default 5)
 *   summarySeconds: 60         # at most this often a long-lived connection writes an interim access summary
 * </pre>
 *
 * @param file absolute path of the JSON-lines file, or null for standard output
 * @param maxFileBytes size after which the file is rotated (file only)
 * @param maxFiles how many files are kept, the current one included: the trail takes at most
 *     {@code maxFiles x maxFileBytes} of disk (file only)
 * @param summaryInterval how often at most a connection still open writes what it did since its last summary, and
 *     how often repeated key-operation failures are summarised
 */
public record AuditConfig(Path file, long maxFileBytes, int maxFiles, Duration summaryInterval) {
    public static final long DEFAULT_MAX_FILE_BYTES = 10L << 20;
    public static final int DEFAULT_MAX_FILES = 5;
    public static final Duration DEFAULT_SUMMARY_INTERVAL = Duration.ofSeconds(60);

    public AuditConfig {
        if (maxFileBytes <= 0 || maxFiles <= 0) {
            throw new IllegalArgumentException("maxFileBytes and maxFiles must be positive");
        }
        Objects.requireNonNull(summaryInterval, "summaryInterval");
        if (summaryInterval.isNegative() || summaryInterval.isZero()) {
            throw new IllegalArgumentException("summaryInterval must be positive");
        }
    }

    /** To {@code file} (null: standard output) with the default bounds. */
    public static AuditConfig to(Path file) {
        return new AuditConfig(file, DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_FILES, DEFAULT_SUMMARY_INTERVAL);
    }

    /** @return whether the trail goes to standard output rather than a file */
    public boolean stdout() {
        return file == null;
    }
}
