package io.meshcrypt.sample.consumer;

import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
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

    /**
     * One write per line: System.out's 128-byte buffer can split a line into two writes, and a reader tailing
     * several logs at once (the demo's view) may then see half a line.
     */
    private static final PrintStream LINES = new PrintStream(
            new BufferedOutputStream(new FileOutputStream(FileDescriptor.out), 1 << 16), false, StandardCharsets.UTF_8);

    public static void main(String[] args) {
        SpringApplication.run(ConsumerApplication.class, args);
    }

    @KafkaListener(topics = "${meshcrypt.topic}")
    void onRecord(ConsumerRecord<String, String> record) {
        // System.out, not a logger: the demo and the tests parse these lines
        LINES.printf("received %s %s (partition %d, offset %d)%n",
                record.key(), record.value(), record.partition(), record.offset());
        LINES.flush();
    }
}
