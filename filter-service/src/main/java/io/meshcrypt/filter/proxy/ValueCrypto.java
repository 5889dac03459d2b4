package io.meshcrypt.filter.proxy;

import io.meshcrypt.filter.crypto.ValueEnvelope;
import io.meshcrypt.filter.crypto.RecordKeyCipher;
import io.meshcrypt.filter.kms.Printable;
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
import java.util.concurrent.CompletableFuture;

/**
 * Turns the record cipher into per-topic value rewriters for the record batch rewriter: whole values, or, on topics
 * whose policy lists JSON fields, only those fields (through the shared {@link JsonTransformer}); and, on topics whose
 * policy asks for it, the key cipher into key rewriters.
 */
final class ValueCrypto {
    private final ValueCipher cipher;
    /** Null when no policy entry encrypts keys: then keys are never touched, on produce or fetch. */
    private final RecordKeyCipher keyCipher;
    private final EncryptionPolicy policy;
    private final JsonTransformer json;

    ValueCrypto(ValueCipher cipher, EncryptionPolicy policy) {
        this(cipher, null, policy);
    }

    /** @throws IllegalArgumentException when the policy encrypts keys but no key cipher is given */
    ValueCrypto(ValueCipher cipher, RecordKeyCipher keyCipher, EncryptionPolicy policy) {
        if (keyCipher == null && policy.anyDeterministicKeys()) {
            throw new IllegalArgumentException("the policy encrypts record keys (keys: deterministic) but no record-key"
                    + " keyset was opened at start: set sivKeyset (or use keys: deterministic at start) and restart");
        }
        this.cipher = cipher;
        this.keyCipher = keyCipher;
        this.policy = policy;
        this.json = new JsonTransformer(cipher);
    }

    /** @return the key rewriter for producing to {@code topic}, or null when its keys stay as sent */
    ValueRewriter keyEncryptor(String topic) {
        if (keyCipher == null || !policy.deterministicKeys(topic)) {
            return null;
        }
        return key -> {
            try {
                return keyCipher.encrypt(topic, key);
            } catch (GeneralSecurityException e) {
                throw new RecordRewriteException("cannot encrypt a key for topic " + topic + ": " + e.getMessage(), e);
            }
        };
    }

    /**
     * Key envelopes are decrypted only where this filter put them, or where the operator says they once were: on
     * encrypted topics whose policy encrypts keys ({@code keys: deterministic}), where every key must be one, and on
     * {@code decryptOnly} topics (encrypted earlier), where key envelopes are decrypted and other keys pass. Anywhere
     * else, a key starting with the key-envelope magic is data: decrypting it would let any producer of such bytes
     * plant a permanent CORRUPT_MESSAGE for every proxied consumer of the partition. (An encrypted topic whose policy
     * stopped encrypting keys therefore serves its old key envelopes as they are stored.)
     *
     * @return null when keys of {@code topic} pass untouched on fetch; else the key rewriter for its fetched batches
     */
    ValueRewriter keyDecryptor(String topic, TopicDecision decision) {
        if (keyCipher == null) {
            return null;
        }
        boolean required = decision == TopicDecision.ENCRYPT && policy.deterministicKeys(topic);
        if (!required && !decryptOnly(topic, decision)) {
            return null;
        }
        String shown = shown(topic);
        return key -> {
            if (!RecordKeyCipher.isKeyEnvelope(key)) {
                if (required) {
                    throw new RecordRewriteException("a key on topic " + shown
                            + " (keys: deterministic) is not a meshcrypt key envelope", null);
                }
                return key;
            }
            try {
                return keyCipher.decrypt(topic, key);
            } catch (GeneralSecurityException e) {
                throw new RecordRewriteException("cannot decrypt a key of topic " + shown + ": " + e.getMessage(), e);
            }
        };
    }

    /**
     * For Produce to a topic whose keys the fetch path decrypts but the produce path does not encrypt (a {@code
     * decryptOnly} topic while record keys are encrypted anywhere): a key shaped like a key envelope would reach
     * consumers as a key that fails to decrypt, so it is refused. Run it as the key rewriter over the topic's
     * batches and forward the batches unchanged when it passes.
     *
     * @return null when producing to {@code topic} needs no key check (its keys are encrypted, or never decrypted on
     *     fetch); else a rewriter that returns every key untouched and throws {@link RecordRewriteException} on one
     *     starting with the key-envelope magic {@code 00 4D 43 4B}
     */
    ValueRewriter keyGuard(String topic) {
        if (keyCipher == null || !decryptOnly(topic, policy.decide(topic))) {
            return null;
        }
        return key -> {
            if (RecordKeyCipher.isKeyEnvelope(key)) {
                throw new RecordRewriteException("a key produced to topic " + topic + " (decryptOnly) starts with the"
                        + " meshcrypt key-envelope magic; consumers would fail to decrypt it: refused", null);
            }
            return key;
        };
    }

    /**
     * The value counterpart of {@link #keyGuard}: for Produce to a {@code decryptOnly} topic (not encrypted, yet its
     * fetched envelopes are decrypted), a value starting with the envelope magic {@code 00 4D 43 45} is refused.
     *
     * @return null when producing to {@code topic} needs no value check; else a rewriter that returns every value
     *     untouched and throws {@link RecordRewriteException} on one shaped like an envelope
     */
    ValueRewriter valueGuard(String topic) {
        if (!decryptOnly(topic, policy.decide(topic))) {
            return null;
        }
        return value -> {
            if (ValueEnvelope.isEnvelope(value)) {
                throw new RecordRewriteException("a value produced to topic " + topic + " (decryptOnly) starts with the"
                        + " meshcrypt envelope magic; consumers would fail to decrypt it: refused", null);
            }
            return value;
        };
    }

    /** Not encrypted, yet decrypted on fetch: a {@code decryptOnly} topic. */
    private boolean decryptOnly(String topic, TopicDecision decision) {
        return decision != TopicDecision.ENCRYPT && policy.decryptsOnFetch(topic);
    }

    /** @return null when encrypting values of {@code topic} will not wait for a key, else what to wait for */
    CompletableFuture<Void> prepareForEncryption(String topic) {
        return cipher.prepareForEncryption(topic);
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
     * On an encrypted topic every value must be an envelope that decrypts; on a {@code decryptOnly} topic (encrypted
     * earlier) envelopes are decrypted and other values pass unchanged. The fetch path never asks for a rewriter of
     * any other topic: its batches pass untouched. On a field-level topic
     * every value must be JSON whose listed fields, where present, decrypt; a whole-value envelope (written before
     * the topic's policy named fields) is decrypted as such.
     */
    ValueRewriter decryptor(String topic, TopicDecision decision) {
        boolean required = decision == TopicDecision.ENCRYPT;
        String shown = shown(topic);
        List<JsonPointer> fields = required ? policy.fieldsOf(topic) : List.of();
        if (!fields.isEmpty()) {
            List<FieldOp> ops = fields.stream().<FieldOp>map(p -> new FieldOp.Decrypt(p, false)).toList();
            return value -> {
                if (ValueEnvelope.isEnvelope(value)) {
                    return decryptWhole(topic, shown, value);
                }
                try {
                    return json.apply(value, ops, topic);
                } catch (TransformException e) {
                    throw new RecordRewriteException("cannot decrypt the fields of a value of topic " + shown + ": "
                            + e.getMessage(), e);
                }
            };
        }
        return value -> {
            if (!ValueEnvelope.isEnvelope(value)) {
                if (required) {
                    throw new RecordRewriteException("a value on encrypted topic " + shown + " is not a meshcrypt envelope", null);
                }
                return value;
            }
            return decryptWhole(topic, shown, value);
        };
    }

    private ByteBuffer decryptWhole(String topic, String shown, ByteBuffer value) throws RecordRewriteException {
        try {
            return cipher.decrypt(topic, value);
        } catch (GeneralSecurityException e) {
            throw new RecordRewriteException("cannot decrypt a value of topic " + shown + ": " + e.getMessage(), e);
        }
    }

    /** Fetched topic names come from the broker: escaped for messages, once per rewriter (not per record). */
    private static String shown(String topic) {
        return Printable.of(topic, Printable.TOPIC_CHARS);
    }
}
