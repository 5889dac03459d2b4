package io.meshcrypt.filter.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import io.meshcrypt.filter.crypto.EnvelopeException;
import io.meshcrypt.filter.kms.KeyNotReadyException;
import io.meshcrypt.filter.kms.TransientKmsException;
import io.meshcrypt.filter.records.RecordRewriteException;
import io.meshcrypt.filter.transform.TransformException;
import java.util.concurrent.CompletableFuture;
import org.apache.kafka.common.protocol.Errors;
import org.junit.jupiter.api.Test;

/** Where the KMS layer's exceptions become the Kafka answer a failed record gets. */
class ValueCryptoFailureTest {

    @Test
    void givenAKeyNotReady_whenMapped_thenTheFrameIsRetriedOnceTheKeyIsReady() {
        CompletableFuture<Void> ready = new CompletableFuture<>();

        RecordRewriteException e = ValueCrypto.failure("m", new KeyNotReadyException("not yet", ready));

        assertNotNull(e.retryWhen());
        ready.complete(null);
        assertEquals(true, e.retryWhen().isDone(), "the retry waits for the key");
        assertEquals(Errors.KAFKA_STORAGE_ERROR, e.answer());
    }

    @Test
    void givenAnUnreachableKms_whenMapped_thenTheRetriableStorageErrorAndNoRetry() {
        RecordRewriteException e = ValueCrypto.failure("m", new TransientKmsException("down", null));

        assertEquals(Errors.KAFKA_STORAGE_ERROR, e.answer());
        assertNull(e.retryWhen());
    }

    @Test
    void givenAnUnreachableKmsBehindTheJsonFieldEngine_whenMapped_thenTheRetriableStorageError() {
        TransformException field = new TransformException(TransformException.Kind.INVALID_INPUT, "cannot decrypt field",
                new TransientKmsException("down", null));

        RecordRewriteException e = ValueCrypto.failure("m", field);

        assertEquals(Errors.KAFKA_STORAGE_ERROR, e.answer());
        assertSame(field, e.getCause());
    }

    @Test
    void givenAnEnvelopeThatDoesNotDecrypt_whenMapped_thenCorruptMessage() {
        RecordRewriteException e = ValueCrypto.failure("m", new EnvelopeException("tampered"));

        assertEquals(Errors.CORRUPT_MESSAGE, e.answer());
        assertNull(e.retryWhen());
    }
}
