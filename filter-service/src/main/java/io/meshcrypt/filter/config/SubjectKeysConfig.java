package io.meshcrypt.filter.config;

import java.time.Duration;
import java.util.Map;
import java.util.Objects;

/**
 * The {@code subjectKeys:} section of filter.yaml: where per-subject keys live (a compacted Kafka topic the
 * filter-service reads and writes with its own Kafka client, straight to the brokers) and the limits of the subject-key
 * index. Required when a policy entry has {@code subject:}.
 *
 * <pre>
 * subjectKeys:
 *   bootstrap: kafka-1:9093,kafka-2:9093    # brokers the filter-service reaches directly (not through Envoy)
 *   topic: __meshcrypt_subject_keys          # created (1 partition, cleanup.policy=compact) when missing
 *   replicationFactor: 3                     # for that creation; default: the broker's default
 *   maxSubjects: 1000000                     # subjects (live or forgotten) held in memory, ~300 bytes each
 *   newSubjectsPerSecond: 1000               # new subject keys this replica creates per second (sustained)
 *   newSubjectsBurst: 2000
 *   unknownKeyWaitMillis: 10000              # a record naming a key not read yet waits this long, then fails closed
 *   client:                                  # Kafka client properties for TLS/SASL to those brokers, as-is
 *     security.protocol: SSL
 *     ssl.truststore.location: /etc/meshcrypt/kafka-ca.p12
 * </pre>
 *
 * @param client Kafka client properties (never logged: they may hold passwords)
 */
public record SubjectKeysConfig(String bootstrap, String topic, short replicationFactor, int maxSubjects,
                                double newSubjectsPerSecond, int newSubjectsBurst, Duration unknownKeyWait,
                                Map<String, String> client) {
    public static final String DEFAULT_TOPIC = "__meshcrypt_subject_keys";
    /** Properties the filter-service sets itself. */
    public static final java.util.List<String> RESERVED_CLIENT_PROPERTIES = java.util.List.of("bootstrap.servers",
            "acks", "enable.idempotence", "key.serializer", "value.serializer", "key.deserializer",
            "value.deserializer", "group.id", "enable.auto.commit", "auto.offset.reset", "isolation.level");

    public SubjectKeysConfig {
        Objects.requireNonNull(bootstrap, "bootstrap");
        Objects.requireNonNull(topic, "topic");
        Objects.requireNonNull(unknownKeyWait, "unknownKeyWait");
        client = Map.copyOf(client);
    }

    /** @return where the subject-key log is */
    public io.meshcrypt.filter.subjects.KafkaSubjectKeyLog.Location location() {
        return new io.meshcrypt.filter.subjects.KafkaSubjectKeyLog.Location(bootstrap, topic, replicationFactor, client);
    }

    /** @return the subject-key index limits */
    public io.meshcrypt.filter.subjects.SubjectKeyStore.Settings settings() {
        return new io.meshcrypt.filter.subjects.SubjectKeyStore.Settings(maxSubjects, newSubjectsPerSecond,
                newSubjectsBurst, unknownKeyWait);
    }

    @Override
    public String toString() {
        return "SubjectKeysConfig{bootstrap=" + bootstrap + ", topic=" + topic + ", maxSubjects=" + maxSubjects
                + ", client properties=" + client.keySet() + "}";
    }
}
