package io.meshcrypt.launcher;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code ./meshcrypt audit}: who accessed which topic, from the filter-service's audit trail (its {@code access}
 * lines, in the file and its rotated predecessors). Lines of one identity, topic, direction and outcome are added up:
 * records summed, first and last widened.
 */
final class AuditReport {
    /** An identity that matches the lines of connections that carried none. */
    static final String NO_IDENTITY = "none";
    private static final Pattern SINCE = Pattern.compile("([0-9]{1,9})(s|m|h|d)");
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * Which access lines count; null fields match everything.
     *
     * @param topicGlob the topic as a glob ({@code *}, {@code ?}, {@code {a,b}})
     * @param identity the workload identity exactly, or {@value #NO_IDENTITY}
     * @param notBefore lines whose last access is earlier are left out
     * @param direction {@code fetch} or {@code produce}
     */
    record Query(String topicGlob, String identity, Instant notBefore, String direction) {
    }

    /** One identity's accesses to one topic in one direction with one outcome. */
    record Row(String identity, String topic, String direction, String outcome, long records, Instant first, Instant last) {
    }

    /** @param unreadable lines that were not JSON or lacked a field */
    record Report(List<Row> rows, int unreadable) {
    }

    private AuditReport() {
    }

    /** @return {@code 90s}, {@code 15m}, {@code 1h} or {@code 2d} as a duration */
    static Duration since(String text) {
        Matcher m = SINCE.matcher(text);
        if (!m.matches()) {
            throw new IllegalArgumentException("--since " + text + ": expected a number and s, m, h or d, e.g. 1h");
        }
        long n = Long.parseLong(m.group(1));
        return switch (m.group(2)) {
            case "s" -> Duration.ofSeconds(n);
            case "m" -> Duration.ofMinutes(n);
            case "h" -> Duration.ofHours(n);
            default -> Duration.ofDays(n);
        };
    }

    /** @return the rotated files of {@code trail} oldest first ({@code .N} ... {@code .1}), then {@code trail}; those that exist */
    static List<Path> files(Path trail) {
        List<Path> files = new ArrayList<>();
        for (int n = 1; Files.exists(trail.resolveSibling(trail.getFileName() + "." + n)); n++) {
            files.addFirst(trail.resolveSibling(trail.getFileName() + "." + n));
        }
        if (Files.exists(trail)) {
            files.add(trail);
        }
        return files;
    }

    static Report read(List<Path> files, Query query) throws IOException {
        PathMatcher topics = query.topicGlob() == null ? null : FileSystems.getDefault().getPathMatcher("glob:" + query.topicGlob());
        Map<List<String>, Row> rows = new LinkedHashMap<>();
        int unreadable = 0;
        for (Path file : files) {
            try (BufferedReader in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
                String line;
                while ((line = in.readLine()) != null) {
                    Row row;
                    try {
                        row = access(JSON.readTree(line));
                    } catch (IOException | RuntimeException e) {
                        unreadable++;
                        continue;
                    }
                    if (row == null || !matches(row, query, topics)) {
                        continue;
                    }
                    rows.merge(List.of(String.valueOf(row.identity()), row.topic(), row.direction(), row.outcome()), row,
                            (a, b) -> new Row(a.identity(), a.topic(), a.direction(), a.outcome(), a.records() + b.records(),
                                    a.first().isBefore(b.first()) ? a.first() : b.first(),
                                    a.last().isAfter(b.last()) ? a.last() : b.last()));
                }
            }
        }
        List<Row> sorted = new ArrayList<>(rows.values());
        sorted.sort(Comparator.comparing(Row::topic).thenComparing(r -> String.valueOf(r.identity()))
                .thenComparing(Row::direction).thenComparing(Row::outcome));
        return new Report(sorted, unreadable);
    }

    /** @return the access line as a row, null for other lines (key operations) */
    private static Row access(JsonNode n) throws DateTimeParseException {
        if (!"access".equals(n.path("event").asText())) {
            return null;
        }
        JsonNode identity = n.get("identity");
        return new Row(identity == null || identity.isNull() ? null : identity.asText(), required(n, "topic"),
                required(n, "direction"), required(n, "outcome"), n.path("records").asLong(),
                Instant.parse(required(n, "first")), Instant.parse(required(n, "last")));
    }

    private static String required(JsonNode n, String field) {
        JsonNode v = n.get(field);
        if (v == null || !v.isTextual()) {
            throw new IllegalArgumentException("no " + field);
        }
        return v.asText();
    }

    private static boolean matches(Row row, Query query, PathMatcher topics) {
        try {
            if (topics != null && !topics.matches(Path.of(row.topic()))) {
                return false;
            }
        } catch (InvalidPathException e) {
            return false; // not a topic name a glob could match
        }
        if (query.identity() != null && !(query.identity().equals(NO_IDENTITY) ? row.identity() == null
                : query.identity().equals(row.identity()))) {
            return false;
        }
        if (query.direction() != null && !query.direction().equals(row.direction())) {
            return false;
        }
        return query.notBefore() == null || !row.last().isBefore(query.notBefore());
    }

    static void print(Report report, PrintWriter out) {
        if (report.rows().isEmpty()) {
            out.println("no access matches");
        } else {
            String format = "%-24s %-48s %-8s %-10s %10s  %-24s  %s%n";
            out.printf(format, "TOPIC", "IDENTITY", "DIRECTION", "OUTCOME", "RECORDS", "FIRST", "LAST");
            for (Row r : report.rows()) {
                out.printf(format, r.topic(), r.identity() == null ? "(" + NO_IDENTITY + ")" : r.identity(), r.direction(),
                        r.outcome(), r.records(), r.first(), r.last());
            }
        }
        out.flush();
    }
}
