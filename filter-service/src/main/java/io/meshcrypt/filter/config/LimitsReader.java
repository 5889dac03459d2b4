package io.meshcrypt.filter.config;

import com.fasterxml.jackson.core.JsonToken;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import io.meshcrypt.meshconfig.yaml.ConfigFields;
import io.meshcrypt.meshconfig.yaml.YamlTree.Entry;
import io.meshcrypt.meshconfig.yaml.YamlTree.Mapping;
import io.meshcrypt.meshconfig.yaml.YamlTree.Scalar;
import java.math.BigInteger;
import java.time.Duration;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The {@code limits:} section of the filter config into {@link Limits}; errors as {@link ConfigFields}':
 * {@code file:line:column: limits.field: problem}. Sizes are integers (bytes), durations strings such as
 * {@code 30s}, {@code 500ms} or {@code 2m}.
 */
final class LimitsReader {

    static final List<String> KEYS = List.of("maxFrameBytes", "maxRequestFrameBytes", "maxInFlightRequests",
            "maxDecompressedBytes", "maxHeldBytesPerConnection", "maxHeldBytesTotal", "heldFrameTimeout",
            "newDataKeysPerSecond", "newDataKeysBurst", "maxNewDataKeysPerRequest", "maxTopicIds", "maxExtProcMessageBytes");
    private static final Pattern DURATION = Pattern.compile("([0-9]{1,9})(ms|s|m)");
    /** A held frame that may take a day to arrive is no deadline. */
    private static final Duration MAX_HELD_FRAME_TIMEOUT = Duration.ofHours(1);

    private final ConfigFields reader;

    LimitsReader(ConfigFields reader) {
        this.reader = reader;
    }

    /**
     * @param section the {@code limits:} entry, or null when absent
     * @param topLevelFrameBytes the top-level {@code maxFrameBytes:} entry (kept for existing files), or null
     */
    Limits limits(Entry section, Entry topLevelFrameBytes) throws ConfigException {
        Mapping mapping = section == null ? null : reader.mapping(section.value(), "limits");
        if (mapping != null) {
            reader.checkKeys(mapping, "limits.", KEYS);
        }
        Entry frameEntry = get(mapping, "maxFrameBytes");
        if (frameEntry != null && topLevelFrameBytes != null) {
            throw reader.error(frameEntry.keyLocation(), "limits.maxFrameBytes",
                    "also set at the top level (line " + topLevelFrameBytes.keyLocation().line()
                            + "); set it in one place, preferably here");
        }
        int maxFrameBytes = frameEntry != null ? reader.positiveInt(frameEntry, "limits.maxFrameBytes")
                : topLevelFrameBytes != null ? reader.positiveInt(topLevelFrameBytes, "maxFrameBytes")
                : Limits.DEFAULT_MAX_FRAME_BYTES;
        Limits d = Limits.defaults(maxFrameBytes);
        long oneFrame = maxFrameBytes + 4L;
        long perConnection = bytesAtLeast(mapping, "maxHeldBytesPerConnection", d.maxHeldBytesPerConnection(), oneFrame,
                "maxFrameBytes + 4");
        // A frame being rewritten is charged a multiple of its size (Limits.REWRITE_CHARGE): its copies.
        long total = bytesAtLeast(mapping, "maxHeldBytesTotal", d.maxHeldBytesTotal(),
                Limits.minHeldBytesTotal(maxFrameBytes), Limits.REWRITE_CHARGE + " x (maxFrameBytes + 4)");
        return new Limits(
                maxFrameBytes,
                integer(mapping, "maxRequestFrameBytes", d.maxRequestFrameBytes()),
                integer(mapping, "maxInFlightRequests", d.maxInFlightRequests()),
                integer(mapping, "maxDecompressedBytes", d.maxDecompressedBytes()),
                perConnection,
                total,
                duration(mapping, "heldFrameTimeout", d.heldFrameTimeout()),
                integer(mapping, "newDataKeysPerSecond", d.newDataKeysPerSecond()),
                integer(mapping, "newDataKeysBurst", d.newDataKeysBurst()),
                integer(mapping, "maxNewDataKeysPerRequest", d.maxNewDataKeysPerRequest()),
                integer(mapping, "maxTopicIds", d.maxTopicIds()),
                integer(mapping, "maxExtProcMessageBytes", d.maxExtProcMessageBytes()));
    }

    private static Entry get(Mapping mapping, String key) {
        return mapping == null ? null : mapping.entries().get(key);
    }

    private int integer(Mapping mapping, String key, int fallback) throws ConfigException {
        Entry entry = get(mapping, key);
        return entry == null ? fallback : reader.positiveInt(entry, "limits." + key);
    }

    private long bytesAtLeast(Mapping mapping, String key, long fallback, long minimum, String rule)
            throws ConfigException {
        Entry entry = get(mapping, key);
        if (entry == null) {
            return fallback;
        }
        String path = "limits." + key;
        if (!(entry.value() instanceof Scalar s) || s.token() != JsonToken.VALUE_NUMBER_INT) {
            throw reader.error(entry.keyLocation(), path, "must be a positive integer number of bytes (got "
                    + ConfigFields.describe(entry.value()) + ")");
        }
        BigInteger value = new BigInteger(s.value().toString());
        if (value.bitLength() > 62) {
            throw reader.error(entry.keyLocation(), path, "must be at most " + (1L << 62) + " (got " + value + ")");
        }
        if (value.longValue() < minimum) {
            throw reader.error(entry.keyLocation(), path, "must be at least " + rule + " = " + minimum
                    + ", so one frame of the largest size can be held and rewritten (got " + value + ")");
        }
        return value.longValue();
    }

    private Duration duration(Mapping mapping, String key, Duration fallback) throws ConfigException {
        Entry entry = get(mapping, key);
        if (entry == null) {
            return fallback;
        }
        String path = "limits." + key;
        Matcher m = entry.value() instanceof Scalar s && s.token() == JsonToken.VALUE_STRING
                ? DURATION.matcher((String) s.value()) : null;
        if (m == null || !m.matches()) {
            throw reader.error(entry.keyLocation(), path, "must be a duration such as 30s, 500ms or 2m (got "
                    + ConfigFields.describe(entry.value()) + ")");
        }
        long amount = Long.parseLong(m.group(1));
        Duration value = switch (m.group(2)) {
            case "ms" -> Duration.ofMillis(amount);
            case "s" -> Duration.ofSeconds(amount);
            default -> Duration.ofMinutes(amount);
        };
        if (value.isZero() || value.compareTo(MAX_HELD_FRAME_TIMEOUT) > 0) {
            throw reader.error(entry.keyLocation(), path, "must be more than 0 and at most 1h (got " + m.group() + ")");
        }
        return value;
    }
}
