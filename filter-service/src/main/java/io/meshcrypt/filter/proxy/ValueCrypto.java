package io.meshcrypt.filter.proxy;

import io.meshcrypt.filter.crypto.Envelope;
import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.policy.TopicDecision;
import io.meshcrypt.filter.records.RecordRewriteException;
import io.meshcrypt.filter.records.ValueRewriter;
import java.nio.ByteBuffer;
import java.security.GeneralSecurityException;

/** Turns the record cipher into per-topic value rewriters for the record batch rewriter. */
final class ValueCrypto {
    private final ValueCipher cipher;

    ValueCrypto(ValueCipher cipher) {
        this.cipher = cipher;
    }

    ValueRewriter encryptor(String topic) {
        return value -> {
            try {
                return cipher.encrypt(topic, value);
            } catch (GeneralSecurityException e) {
                throw new RecordRewriteException("cannot encrypt a value for topic " + topic + ": " + e.getMessage(), e);
            }
        };
    }

    /**
     * On an encrypted topic every value must be an envelope that decrypts; elsewhere envelopes are still
     * decrypted (the topic may have been encrypted earlier) and other values pass unchanged.
     */
    ValueRewriter decryptor(String topic, TopicDecision decision) {
        boolean required = decision == TopicDecision.ENCRYPT;
        return value -> {
            if (!Envelope.isEnvelope(value)) {
                if (required) {
                    throw new RecordRewriteException("a value on encrypted topic " + topic + " is not a meshcrypt envelope", null);
                }
                return value;
            }
            try {
                return cipher.decrypt(topic, value);
            } catch (GeneralSecurityException e) {
                throw new RecordRewriteException("cannot decrypt a value of topic " + topic + ": " + e.getMessage(), e);
            }
        };
    }
}
