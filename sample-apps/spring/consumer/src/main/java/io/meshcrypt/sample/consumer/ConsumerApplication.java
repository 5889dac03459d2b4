package io.meshcrypt.sample.consumer;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.kafka.annotation.KafkaListener;

/**
 * Reads the demo topic through the mesh with spring-kafka and prints each record it received, one line
 * each, for {@code ./meshcrypt demo} to show: the values must be the plaintext the producers sent.
 *
 * <p>Environment: {@code KAFKA_BOOTSTRAP} (required), {@code TOPIC}, {@code GROUP_ID} (see
 * application.properties).
 */
@SpringBootApplication
public class ConsumerApplication {

    public static void main(String[] args) {
        SpringApplication.run(ConsumerApplication.class, args);
    }

    @KafkaListener(topics = "${meshcrypt.topic}")
    void onRecord(ConsumerRecord<String, String> record) {
        // System.out, not a logger: the demo and the tests parse these lines
        System.out.printf("received %s %s (partition %d, offset %d)%n",
                record.key(), record.value(), record.partition(), record.offset());
        System.out.flush();
    }
}
