package io.meshcrypt.meshconfig;

import io.meshcrypt.meshconfig.mesh.Mesh.Address;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The {@value #NAME} header: the contract between the xDS server, which puts it into the {@code initial_metadata} of
 * every Kafka listener's ext_proc stream, and the filter-service, which reads it when the stream opens. Its value says
 * where that sidecar's clients reach each broker ({@code 1=127.0.0.1:19193,2=[::1]:19194}), so that one filter-service
 * can hand every sidecar its own addresses in Metadata responses; or {@value #NONE} for a transparent listener, whose
 * connections keep the broker addresses (they are intercepted anyway). Written and parsed here only.
 */
public final class BrokerListenersHeader {

    public static final String NAME = "x-meshcrypt-broker-listeners";
    /** The value of a listener that passes broker addresses unchanged (transparent mode). */
    public static final String NONE = "none";

    private static final Pattern ENTRY = Pattern.compile("([0-9]{1,9})=(\\[[0-9A-Fa-f:.]+]|[A-Za-z0-9_.-]+):([0-9]{1,5})");

    private BrokerListenersHeader() {
    }

    /** @param listeners broker node id -> the address clients use for it; in node id order in the value */
    public static String write(Map<Integer, Address> listeners) {
        StringBuilder value = new StringBuilder();
        for (Map.Entry<Integer, Address> b : new TreeMap<>(listeners).entrySet()) {
            value.append(value.isEmpty() ? "" : ",").append(b.getKey()).append('=').append(b.getValue());
        }
        return value.toString();
    }

    /**
     * @return broker node id -> listener address; empty for {@value #NONE}
     * @throws IllegalArgumentException when the value is anything else than {@value #NONE} or
     *     {@code <node id>=<host>:<port>} entries separated by commas
     */
    public static Map<Integer, Address> parse(String value) {
        Map<Integer, Address> listeners = new LinkedHashMap<>();
        if (value.equals(NONE)) {
            return listeners;
        }
        for (String entry : value.split(",", -1)) {
            Matcher m = ENTRY.matcher(entry);
            int port = m.matches() ? Integer.parseInt(m.group(3)) : 0;
            if (port < 1 || port > 65535) {
                throw new IllegalArgumentException("malformed broker listener " + quote(entry) + " (expected none, or"
                        + " <node id>=<host>:<port> entries separated by commas)");
            }
            String host = m.group(2).startsWith("[") ? m.group(2).substring(1, m.group(2).length() - 1) : m.group(2);
            if (listeners.put(Integer.parseInt(m.group(1)), new Address(host, port)) != null) {
                throw new IllegalArgumentException("broker node " + m.group(1) + " listed twice");
            }
        }
        return listeners;
    }

    private static String quote(String s) {
        return "\"" + (s.length() > 80 ? s.substring(0, 80) + "..." : s) + "\"";
    }
}
