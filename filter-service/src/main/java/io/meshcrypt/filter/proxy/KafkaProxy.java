package io.meshcrypt.filter.proxy;

import io.meshcrypt.filter.crypto.RecordCipher;
import io.meshcrypt.filter.policy.EncryptionPolicy;
import io.meshcrypt.filter.transport.ConnectionHandler;
import io.meshcrypt.filter.transport.ConnectionHandlerFactory;

/** What all Kafka connections share: policy, keys, the topic id cache and the broker address map. */
public final class KafkaProxy implements ConnectionHandlerFactory {
    final int maxFrameBytes;
    final TopicNames topicNames = new TopicNames();
    final ProduceEncryptor produce;
    final FetchDecryptor fetch;
    final BrokerAddressRewriter addresses;

    public KafkaProxy(EncryptionPolicy policy, RecordCipher cipher, BrokerAddresses brokers, int maxFrameBytes) {
        ValueCrypto crypto = new ValueCrypto(cipher, policy);
        this.maxFrameBytes = maxFrameBytes;
        this.produce = new ProduceEncryptor(policy, topicNames, crypto);
        this.fetch = new FetchDecryptor(policy, topicNames, crypto);
        this.addresses = new BrokerAddressRewriter(brokers);
    }

    @Override
    public ConnectionHandler open() {
        return new KafkaConnection(this);
    }

    public TopicNames topicNames() {
        return topicNames;
    }
}
