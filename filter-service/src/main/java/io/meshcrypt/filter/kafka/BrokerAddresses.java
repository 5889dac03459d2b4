package io.meshcrypt.filter.kafka;

import io.meshcrypt.filter.framing.KafkaFrameException;
import java.net.InetSocketAddress;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Explicit-proxy mode: the address a client must use for each broker node (that broker's Envoy listener).
 * Every broker address the broker hands to a client is replaced, so no connection can bypass the proxy;
 * a node without a listener closes the connection instead of leaking the broker's real address.
 * An empty map means transparent mode: addresses pass unchanged (connections are intercepted anyway).
 */
public final class BrokerAddresses {
    private final Map<Integer, InetSocketAddress> listeners;

    public BrokerAddresses(Map<Integer, InetSocketAddress> listeners) {
        this.listeners = Map.copyOf(listeners);
    }

    /** The header value of a stream whose listener passes broker addresses unchanged (transparent mode). */
    public static final String NONE = "none";
    private static final Pattern ENTRY = Pattern.compile("([0-9]{1,9})=(\\[[0-9A-Fa-f:.]+]|[A-Za-z0-9_.-]+):([0-9]{1,5})");

    /**
     * Parses the listener map an Envoy listener sends with its ext_proc stream: {@code none}, or
     * {@code <node id>=<host>:<port>} entries separated by commas (IPv6 hosts in brackets), e.g.
     * {@code 1=127.0.0.1:19193,2=127.0.0.1:19194}.
     *
     * @throws IllegalArgumentException when the value is anything else
     */
    public static BrokerAddresses parse(String value) {
        if (value.equals(NONE)) {
            return new BrokerAddresses(Map.of());
        }
        Map<Integer, InetSocketAddress> listeners = new HashMap<>();
        for (String entry : value.split(",", -1)) {
            Matcher m = ENTRY.matcher(entry);
            int port = m.matches() ? Integer.parseInt(m.group(3)) : 0;
            if (port < 1 || port > 65535) {
                throw new IllegalArgumentException("malformed broker listener " + quote(entry) + " (expected none, or"
                        + " <node id>=<host>:<port> entries separated by commas)");
            }
            String host = m.group(2).startsWith("[") ? m.group(2).substring(1, m.group(2).length() - 1) : m.group(2);
            if (listeners.put(Integer.parseInt(m.group(1)), InetSocketAddress.createUnresolved(host, port)) != null) {
                throw new IllegalArgumentException("broker node " + m.group(1) + " listed twice");
            }
        }
        return new BrokerAddresses(listeners);
    }

    private static String quote(String s) {
        return "\"" + (s.length() > 80 ? s.substring(0, 80) + "..." : s) + "\"";
    }

    public boolean rewrites() {
        return !listeners.isEmpty();
    }

    /** The listener for {@code nodeId}; fails closed when the node has none. */
    public InetSocketAddress listenerFor(int nodeId, String brokerHost, int brokerPort) throws KafkaFrameException {
        InetSocketAddress listener = listeners.get(nodeId);
        if (listener == null) {
            throw new KafkaFrameException("broker node " + nodeId + " (" + brokerHost + ":" + brokerPort
                    + ") has no Envoy listener (the filter config's brokers: map, or the listener map the Envoy listener"
                    + " sent); refusing to hand its address to a client");
        }
        return listener;
    }

}
