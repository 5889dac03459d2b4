package io.meshcrypt.filter.kafka;

import io.meshcrypt.filter.framing.KafkaFrameException;
import io.meshcrypt.meshconfig.BrokerListenersHeader;
import java.net.InetSocketAddress;
import java.util.HashMap;
import java.util.Map;

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

    /**
     * The listener map an Envoy listener sends with its ext_proc stream ({@link BrokerListenersHeader}).
     *
     * @throws IllegalArgumentException when the value is malformed
     */
    public static BrokerAddresses parse(String value) {
        Map<Integer, InetSocketAddress> listeners = new HashMap<>();
        BrokerListenersHeader.parse(value).forEach((id, a) -> listeners.put(id, InetSocketAddress.createUnresolved(a.host(), a.port())));
        return new BrokerAddresses(listeners);
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
