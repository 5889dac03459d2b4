package io.meshcrypt.filter.kafka;

import io.meshcrypt.filter.framing.KafkaFrameException;

/** A Produce to a topic the policy rejects ({@code unmatched: reject}); its connection is closed (counted apart). */
public final class PolicyRejectedException extends KafkaFrameException {
    PolicyRejectedException(String message) {
        super(message);
    }
}
