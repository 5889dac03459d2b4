package io.meshcrypt.filter.observability;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.meshcrypt.filter.crypto.NotAnEnvelopeException;
import io.meshcrypt.filter.crypto.UnknownKeyException;
import io.meshcrypt.filter.framing.FrameTooLargeException;
import io.meshcrypt.filter.framing.KafkaFrameException;
import io.meshcrypt.filter.kms.TransientKmsException;
import io.meshcrypt.filter.observability.ResetReasons.Reason;
import io.meshcrypt.filter.records.RecordRewriteException;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.security.GeneralSecurityException;
import javax.crypto.AEADBadTagException;
import org.junit.jupiter.api.Test;

/** Connection resets classified by the first cause that names a reason. */
class ResetReasonsTest {

    @Test
    void givenFailuresOfEachKind_whenClassified_thenTheirReason() throws Exception {
        assertEquals(Reason.FRAME_TOO_LARGE, ResetReasons.classify(new FrameTooLargeException("frame of 2 GB")));
        assertEquals(Reason.PROTOCOL_VIOLATION, ResetReasons.classify(new KafkaFrameException("request frame refused")));
        assertEquals(Reason.KMS_UNAVAILABLE, ResetReasons.classify(new KafkaFrameException("Produce to t-0",
                new RecordRewriteException("no DEK", new TransientKmsException("backing off", null)))));
        assertEquals(Reason.NOT_AN_ENVELOPE, ResetReasons.classify(
                new RecordRewriteException("record 3", new NotAnEnvelopeException("no magic"))));
        assertEquals(Reason.UNKNOWN_KEY, ResetReasons.classify(new RecordRewriteException("record 3",
                new UnknownKeyException("key 7", 7))));
        assertEquals(Reason.AUTHENTICATION_FAILED, ResetReasons.classify(new RecordRewriteException("record 3",
                new AEADBadTagException("tag mismatch"))));
        assertEquals(Reason.AUTHENTICATION_FAILED, ResetReasons.classify(new GeneralSecurityException("decryption failed")));
        assertEquals(Reason.INTERNAL_ERROR, ResetReasons.classify(new IllegalStateException("bug")));
    }

    @Test
    void givenRegistry_whenCreated_thenEveryReasonIsThereAtZeroAndAResetCountsOnce() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        ResetReasons reasons = new ResetReasons(registry);

        reasons.accept(new FrameTooLargeException("frame of 2 GB"));

        assertEquals(Reason.values().length, registry.find(ResetReasons.NAME).counters().size());
        assertEquals(1, registry.get(ResetReasons.NAME).tag("reason", "frame_too_large").counter().count());
        assertEquals(0, registry.get(ResetReasons.NAME).tag("reason", "policy_reject").counter().count());
    }
}
