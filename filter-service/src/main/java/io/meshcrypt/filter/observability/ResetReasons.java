package io.meshcrypt.filter.observability;

import io.meshcrypt.filter.crypto.EnvelopeException;
import io.meshcrypt.filter.crypto.NotAnEnvelopeException;
import io.meshcrypt.filter.crypto.UnknownKekException;
import io.meshcrypt.filter.crypto.UnknownKeyException;
import io.meshcrypt.filter.crypto.UnsupportedEnvelopeVersionException;
import io.meshcrypt.filter.framing.FrameTooLargeException;
import io.meshcrypt.filter.framing.KafkaFrameException;
import io.meshcrypt.filter.kafka.PolicyRejectedException;
import io.meshcrypt.filter.kms.KekRefusedException;
import io.meshcrypt.filter.kms.TransientKmsException;
import io.meshcrypt.filter.records.FrameBudgetExceededException;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.security.GeneralSecurityException;
import java.util.EnumMap;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;
import javax.crypto.AEADBadTagException;

/**
 * {@code meshcrypt_connections_reset_total{reason}}: connections the filter-service reset because their handler
 * failed, by the first cause in the exception chain that names a reason. Runs only when a connection is reset.
 */
public final class ResetReasons implements Consumer<Throwable> {
    static final String NAME = "meshcrypt.connections.reset";
    /** Causes followed at most; a longer chain is classified by what was seen. */
    private static final int MAX_CAUSES = 16;

    /** Why a connection was reset; the label is the lower-case name. */
    public enum Reason {
        POLICY_REJECT, FRAME_TOO_LARGE, PROTOCOL_VIOLATION, NOT_AN_ENVELOPE, AUTHENTICATION_FAILED, KMS_UNAVAILABLE,
        UNKNOWN_KEY, INTERNAL_ERROR;

        public String label() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    private final Map<Reason, Counter> counters = new EnumMap<>(Reason.class);

    public ResetReasons(MeterRegistry registry) {
        // all reasons from the start, at 0: an alert on a rate sees the series before the first reset
        for (Reason reason : Reason.values()) {
            counters.put(reason, Counter.builder(NAME)
                    .description("Kafka connections reset by the filter-service, by reason")
                    .tag("reason", reason.label())
                    .register(registry));
        }
    }

    @Override
    public void accept(Throwable failure) {
        counters.get(classify(failure)).increment();
    }

    /** The specific reason of the first cause that has one; else protocol violation for a bad frame, else internal. */
    public static Reason classify(Throwable failure) {
        boolean badFrame = false;
        boolean crypto = false;
        Throwable cause = failure;
        for (int i = 0; cause != null && i < MAX_CAUSES; i++, cause = cause.getCause()) {
            Reason reason = specific(cause);
            if (reason != null) {
                return reason;
            }
            badFrame |= cause instanceof KafkaFrameException;
            crypto |= cause instanceof GeneralSecurityException;
        }
        return badFrame ? Reason.PROTOCOL_VIOLATION : crypto ? Reason.AUTHENTICATION_FAILED : Reason.INTERNAL_ERROR;
    }

    private static Reason specific(Throwable cause) {
        if (cause instanceof PolicyRejectedException) {
            return Reason.POLICY_REJECT;
        } else if (cause instanceof FrameTooLargeException || cause instanceof FrameBudgetExceededException) {
            return Reason.FRAME_TOO_LARGE;
        } else if (cause instanceof UnknownKeyException || cause instanceof UnknownKekException) {
            return Reason.UNKNOWN_KEY;
        } else if (cause instanceof NotAnEnvelopeException || cause instanceof UnsupportedEnvelopeVersionException) {
            return Reason.NOT_AN_ENVELOPE;
        } else if (cause instanceof AEADBadTagException) {
            return Reason.AUTHENTICATION_FAILED;
        } else if (cause instanceof TransientKmsException || cause instanceof KekRefusedException) {
            return Reason.KMS_UNAVAILABLE;
        } else if (cause instanceof EnvelopeException) {
            return Reason.NOT_AN_ENVELOPE; // malformed
        }
        return null;
    }
}
