package io.meshcrypt.filter.proxy;

import io.meshcrypt.filter.crypto.Envelope;
import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.policy.EncryptionPolicy;
import io.meshcrypt.filter.policy.TopicDecision;
import io.meshcrypt.filter.records.RecordRewriteException;
import io.meshcrypt.filter.records.ValueRewriter;
import io.meshcrypt.filter.transform.FieldOp;
import io.meshcrypt.filter.transform.JsonPointer;
import io.meshcrypt.filter.transform.JsonTransformer;
import io.meshcrypt.filter.transform.TransformException;
import java.nio.ByteBuffer;
import java.security.GeneralSecurityException;
import java.util.List;

/**
 * Turns the record cipher into per-topic value rewriters for the record batch rewriter: whole values, or, on topics
 * whose policy lists JSON fields, only those fields (through the shared {@link JsonTransformer}).
 */
final class ValueCrypto {
    private final ValueCipher cipher;
    private final EncryptionPolicy policy;
    private final JsonTransformer json;

    ValueCrypto(ValueCipher cipher, EncryptionPolicy policy) {
        this.cipher = cipher;
        this.policy = policy;
        this.json = new JsonTransformer(cipher);
    }

    ValueRewriter encryptor(String topic) {
        List<JsonPointer> fields = policy.fieldsOf(topic);
        if (!fields.isEmpty()) {
            // A value that is not JSON fails the Produce: forwarding it would store it unencrypted.
            List<FieldOp> ops = fields.stream().<FieldOp>map(p -> new FieldOp.Encrypt(p, false)).toList();
            return value -> {
                try {
                    return json.apply(value, ops, topic);
                } catch (TransformException e) {
                    throw new RecordRewriteException("cannot encrypt the fields of a value for topic " + topic + ": "
                            + e.getMessage(), e);
                }
            };
        }
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
     * decrypted (the topic may have been encrypted earlier) and other values pass unchanged. On a field-level topic
     * every value must be JSON whose listed fields, where present, decrypt; a whole-value envelope (written before
     * the topic's policy named fields) is decrypted as such.
     */
    ValueRewriter decryptor(String topic, TopicDecision decision) {
        boolean required = decision == TopicDecision.ENCRYPT;
        List<JsonPointer> fields = required ? policy.fieldsOf(topic) : List.of();
        if (!fields.isEmpty()) {
            List<FieldOp> ops = fields.stream().<FieldOp>map(p -> new FieldOp.Decrypt(p, false)).toList();
            return value -> {
                if (Envelope.isEnvelope(value)) {
                    return decryptWhole(topic, value);
                }
                try {
                    return json.apply(value, ops, topic);
                } catch (TransformException e) {
                    throw new RecordRewriteException("cannot decrypt the fields of a value of topic " + topic + ": "
                            + e.getMessage(), e);
                }
            };
        }
        return value -> {
            if (!Envelope.isEnvelope(value)) {
                if (required) {
                    throw new RecordRewriteException("a value on encrypted topic " + topic + " is not a meshcrypt envelope", null);
                }
                return value;
            }
            return decryptWhole(topic, value);
        };
    }

    private ByteBuffer decryptWhole(String topic, ByteBuffer value) throws RecordRewriteException {
        try {
            return cipher.decrypt(topic, value);
        } catch (GeneralSecurityException e) {
            throw new RecordRewriteException("cannot decrypt a value of topic " + topic + ": " + e.getMessage(), e);
        }
    }
}
