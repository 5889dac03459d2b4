package io.meshcrypt.filter.kafka;

import io.meshcrypt.filter.framing.KafkaFrameException;
import java.net.InetSocketAddress;
import java.util.function.Function;
import java.util.function.ToIntFunction;
import org.apache.kafka.common.message.DescribeClusterResponseData;
import org.apache.kafka.common.message.DescribeQuorumResponseData;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.message.FindCoordinatorResponseData;
import org.apache.kafka.common.message.MetadataResponseData;
import org.apache.kafka.common.message.ProduceResponseData;
import org.apache.kafka.common.message.ShareAcknowledgeResponseData;
import org.apache.kafka.common.message.ShareFetchResponseData;

/**
 * Replaces every broker address a response hands to a client with that broker's Envoy listener:
 * Metadata brokers, FindCoordinator coordinators, DescribeCluster brokers and the KIP-951 node
 * endpoints of Produce, Fetch, ShareFetch and ShareAcknowledge responses; and removes the KRaft controllers' addresses
 * from DescribeQuorum responses.
 */
final class BrokerAddressRewriter {
    private final BrokerAddresses addresses;

    BrokerAddressRewriter(BrokerAddresses addresses) {
        this.addresses = addresses;
    }

    boolean rewrites() {
        return addresses.rewrites();
    }

    void rewrite(MetadataResponseData r) throws KafkaFrameException {
        each(r.brokers(), b -> b.nodeId(), b -> b.host(), b -> b.port(), (b, h, p) -> b.setHost(h).setPort(p));
    }

    void rewrite(FindCoordinatorResponseData r) throws KafkaFrameException {
        // v0-v3 carry one coordinator at top level, v4+ a list; a failed lookup has node id -1 and no host.
        if (addresses.rewrites() && r.nodeId() >= 0 && !r.host().isEmpty()) {
            InetSocketAddress l = addresses.listenerFor(r.nodeId(), r.host(), r.port());
            r.setHost(l.getHostString()).setPort(l.getPort());
        }
        each(r.coordinators(), c -> c.host().isEmpty() ? -1 : c.nodeId(), c -> c.host(), c -> c.port(),
                (c, h, p) -> c.setHost(h).setPort(p));
    }

    void rewrite(DescribeClusterResponseData r) throws KafkaFrameException {
        each(r.brokers(), b -> b.brokerId(), b -> b.host(), b -> b.port(), (b, h, p) -> b.setHost(h).setPort(p));
    }

    /**
     * DescribeQuorum v2+ (which brokers forward to the controllers) names each controller's own listeners. No sidecar
     * fronts a controller, so clients are told the voters without their addresses rather than a way around the mesh.
     *
     * @return whether a listener was removed
     */
    boolean rewrite(DescribeQuorumResponseData r) {
        boolean removed = false;
        if (addresses.rewrites()) {
            for (DescribeQuorumResponseData.Node node : r.nodes()) {
                removed |= !node.listeners().isEmpty();
                node.setListeners(new DescribeQuorumResponseData.ListenerCollection());
            }
        }
        return removed;
    }

    void rewrite(ProduceResponseData r) throws KafkaFrameException {
        each(r.nodeEndpoints(), e -> e.nodeId(), e -> e.host(), e -> e.port(), (e, h, p) -> e.setHost(h).setPort(p));
    }

    void rewrite(FetchResponseData r) throws KafkaFrameException {
        each(r.nodeEndpoints(), e -> e.nodeId(), e -> e.host(), e -> e.port(), (e, h, p) -> e.setHost(h).setPort(p));
    }

    void rewrite(ShareFetchResponseData r) throws KafkaFrameException {
        each(r.nodeEndpoints(), e -> e.nodeId(), e -> e.host(), e -> e.port(), (e, h, p) -> e.setHost(h).setPort(p));
    }

    void rewrite(ShareAcknowledgeResponseData r) throws KafkaFrameException {
        each(r.nodeEndpoints(), e -> e.nodeId(), e -> e.host(), e -> e.port(), (e, h, p) -> e.setHost(h).setPort(p));
    }

    @FunctionalInterface
    private interface AddressSetter<T> {
        void set(T item, String host, int port);
    }

    /** Rewrites each item's address; the generated message classes share no interface, hence the accessors. */
    private <T> void each(Iterable<T> items, ToIntFunction<T> nodeId, Function<T, String> host, ToIntFunction<T> port,
            AddressSetter<T> setter) throws KafkaFrameException {
        if (!addresses.rewrites()) {
            return;
        }
        for (T item : items) {
            int id = nodeId.applyAsInt(item);
            if (id < 0) {
                continue;
            }
            InetSocketAddress l = addresses.listenerFor(id, host.apply(item), port.applyAsInt(item));
            setter.set(item, l.getHostString(), l.getPort());
        }
    }
}
