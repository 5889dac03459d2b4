package io.meshcrypt.filter.proxy;

import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.policy.EncryptionPolicy;
import io.meshcrypt.filter.transport.ConnectionHandler;
import io.meshcrypt.filter.transport.ConnectionHandlerFactory;
import java.util.Objects;

/** What all Kafka connections share: policy, keys, the topic id cache and the broker address map. */
public final class KafkaProxy implements ConnectionHandlerFactory {
    final int maxFrameBytes;
    final TopicNames topicNames = new TopicNames();
    private final ValueCipher cipher;
    /**
     * Swapped together by {@link #policy(EncryptionPolicy)}; connections read them once per frame, so a policy
     * change applies from the next Produce or Fetch on every open connection, never in the middle of a frame.
     */
    volatile ProduceEncryptor produce;
    volatile FetchDecryptor fetch;
    final BrokerAddressRewriter addresses;

    public KafkaProxy(EncryptionPolicy policy, ValueCipher cipher, BrokerAddresses brokers, int maxFrameBytes) {
        this.cipher = cipher;
        this.maxFrameBytes = maxFrameBytes;
        this.addresses = new BrokerAddressRewriter(brokers);
        policy(policy);
    }

    /** Puts a new encryption policy in force for new and open connections (policy hot reload). */
    public synchronized void policy(EncryptionPolicy policy) {
        Objects.requireNonNull(policy, "policy");
        ValueCrypto crypto = new ValueCrypto(cipher, policy);
        this.produce = new ProduceEncryptor(policy, topicNames, crypto);
        this.fetch = new FetchDecryptor(policy, topicNames, crypto);
    }

    @Override
    public ConnectionHandler open() {
        return new KafkaConnection(this);
    }

    public TopicNames topicNames() {
        return topicNames;
    }
}
