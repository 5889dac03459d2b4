package io.meshcrypt.filter.transport;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one INFO line logged when a proxied connection ends ({@code observability.connectionLog} in filter.yaml): what
 * the stream was (id, the client's address and the sidecar's node as the stream's {@link StreamHeaders} say, workload
 * identity), how long it lasted, the bytes each way, what its handler did
 * ({@link ConnectionHandler#summarize}) and why it ended. Built once per connection, never per frame or record.
 */
public final class ConnectionLog {
    /** How the line is written. */
    public enum Format {
        /** {@code connection ended: stream=7 client=10.0.0.9:53211 node=app identity=... close="client closed"} */
        TEXT,
        /** One JSON object: {@code {"event":"connection_end","stream":7,...}} */
        JSON,
        /** No line ("none" in filter.yaml: YAML reads a bare {@code off} as false). */
        NONE
    }

    private static final Logger log = LoggerFactory.getLogger(ConnectionLog.class);
    private static final ObjectMapper JSON_WRITER = new ObjectMapper();
    /** Longest header value shown: addresses and node ids are far shorter; this only bounds a broken sender. */
    static final int MAX_HEADER_CHARS = 256;
    /** The default: text lines at INFO. */
    public static final ConnectionLog TEXT = of(Format.TEXT);

    private final Format format;
    private final Consumer<String> sink;

    ConnectionLog(Format format, Consumer<String> sink) {
        this.format = Objects.requireNonNull(format, "format");
        this.sink = Objects.requireNonNull(sink, "sink");
    }

    /** Lines in {@code format}, logged at INFO by this class's logger. */
    public static ConnectionLog of(Format format) {
        return new ConnectionLog(format, log::info);
    }

    /** What a connection handler adds to its connection's line: counts and short names, in the order added. */
    public interface Fields {
        Fields add(String name, long value);

        /** A null value is left out. */
        Fields add(String name, String value);
    }

    /** Logs the line of a connection that ended; a failure to build it is logged and swallowed. */
    void ended(long streamId, StreamHeaders headers, String identity, long durationNanos, long bytesFromClient,
               long bytesFromUpstream, ConnectionHandler handler, String closeReason) {
        if (format == Format.NONE || !log.isInfoEnabled()) {
            return;
        }
        sink.accept(line(streamId, headers, identity, durationNanos, bytesFromClient, bytesFromUpstream, handler,
                closeReason));
    }

    /** The line, without logging it. */
    String line(long streamId, StreamHeaders headers, String identity, long durationNanos, long bytesFromClient,
                long bytesFromUpstream, ConnectionHandler handler, String closeReason) {
        Map<String, Object> fields = new LinkedHashMap<>();
        fields.put("stream", streamId);
        fields.put("client", header(headers, StreamHeaders.CLIENT_ADDRESS));
        fields.put("node", header(headers, StreamHeaders.SIDECAR_NODE));
        fields.put("identity", identity == null ? "-" : identity);
        fields.put("duration_ms", durationNanos / 1_000_000);
        fields.put("bytes_from_client", bytesFromClient);
        fields.put("bytes_from_upstream", bytesFromUpstream);
        if (handler != null) {
            handler.summarize(new Fields() {
                @Override
                public Fields add(String name, long value) {
                    fields.put(name, value);
                    return this;
                }

                @Override
                public Fields add(String name, String value) {
                    if (value != null) {
                        fields.put(name, value);
                    }
                    return this;
                }
            });
        }
        fields.put("close", closeReason == null ? "connection closed" : closeReason);
        return format == Format.JSON ? json(fields) : text(fields);
    }

    /** @return the header's value, cut to {@value #MAX_HEADER_CHARS} characters, or "-" when absent */
    private static String header(StreamHeaders headers, String name) {
        String value = headers.get(name);
        if (value == null || value.isEmpty()) {
            return "-";
        }
        return value.length() > MAX_HEADER_CHARS ? value.substring(0, MAX_HEADER_CHARS) : value;
    }

    private static String json(Map<String, Object> fields) {
        Map<String, Object> event = new LinkedHashMap<>();
        event.put("event", "connection_end");
        event.putAll(fields);
        try {
            return JSON_WRITER.writeValueAsString(event);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("a map of strings and numbers always serializes", e);
        }
    }

    private static String text(Map<String, Object> fields) {
        StringBuilder line = new StringBuilder("connection ended:");
        fields.forEach((name, value) -> line.append(' ').append(name).append('=').append(
                value instanceof String s ? quoted(s) : value));
        return line.toString();
    }

    /** As it is when it is one plain word; else in double quotes, with quotes, backslashes and controls escaped. */
    private static String quoted(String value) {
        boolean plain = !value.isEmpty();
        for (int i = 0; i < value.length() && plain; i++) {
            char c = value.charAt(i);
            plain = c > ' ' && c != '"' && c != '\\' && c != '=' && c < 0x7f;
        }
        if (plain) {
            return value;
        }
        StringBuilder b = new StringBuilder(value.length() + 2).append('"');
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < ' ' || c == 0x7f) {
                b.append(String.format("\\x%02x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.append('"').toString();
    }
}
