package io.meshcrypt.filter.kafka;

import io.meshcrypt.filter.crypto.HeaderEnvelope;
import io.meshcrypt.filter.crypto.RecordKeyCipher;
import io.meshcrypt.filter.crypto.SubjectValueCipher;
import io.meshcrypt.filter.crypto.ValueEnvelopeV3;
import io.meshcrypt.filter.crypto.ReusableBuffer;
import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.crypto.ValueEnvelope;
import io.meshcrypt.filter.kms.KeyNotReadyException;
import io.meshcrypt.filter.kms.Printable;
import io.meshcrypt.filter.kms.TransientKmsException;
import io.meshcrypt.filter.policy.HeaderNames;
import io.meshcrypt.filter.policy.TopicPlan;
import io.meshcrypt.filter.records.HeaderRewriter;
import io.meshcrypt.filter.records.RecordAwareValueRewriter;
import io.meshcrypt.filter.records.RecordRewriteException;
import io.meshcrypt.filter.records.ValueRewriter;
import io.meshcrypt.filter.transform.FieldSubject;
import io.meshcrypt.filter.transform.JsonTransformer;
import io.meshcrypt.filter.transform.TransformException;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.Forgotten;
import io.meshcrypt.meshconfig.policy.SubjectSource;
import io.meshcrypt.meshconfig.transform.FieldOp;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.apache.kafka.common.protocol.Errors;

/**
 * Turns the record cipher into per-topic value rewriters for the record batch rewriter: whole values, or, on topics
 * whose policy lists JSON fields, only those fields (through the shared {@link JsonTransformer}); and, on topics whose
 * policy asks for it, the key cipher into key rewriters. Each rewriter is made for one partition from its topic's
 * {@link TopicPlan}.
 *
 * <p>This is where the crypto and KMS layers' exceptions meet Kafka: each becomes a {@link RecordRewriteException}
 * that says how to answer ({@link #failure}), so no caller needs to look inside a cause chain.
 */
final class ValueCrypto {
    private final ValueCipher cipher;
    /** Null when no policy entry encrypts keys: then keys are never touched, on produce or fetch. */
    private final RecordKeyCipher keyCipher;
    /** Null without a {@code subjectKeys:} section. */
    private final SubjectValueCipher subjects;
    private final JsonTransformer json;

    ValueCrypto(ValueCipher cipher, EncryptionPolicy policy) {
        this(cipher, null, policy);
    }

    /**
     * @param policy only checked: its plans are passed to each call
     * @throws IllegalArgumentException when the policy encrypts keys but no key cipher is given (a policy listing
     *     headers with a version-1-only cipher is taken: records carrying a listed header are refused, failing closed
     *     per topic)
     */
    ValueCrypto(ValueCipher cipher, RecordKeyCipher keyCipher, EncryptionPolicy policy) {
        this(cipher, keyCipher, null, policy);
    }

    /**
     * @param subjects encrypts and decrypts values under per-subject keys; null without a {@code subjectKeys:} section
     *     (then records of entries with {@code subject:} are refused on produce and fail on fetch: fail closed per
     *     topic, the rest of the policy applies); beside {@code fields:} it encrypts each listed field under the
     *     record's subject key
     */
    ValueCrypto(ValueCipher cipher, RecordKeyCipher keyCipher, SubjectValueCipher subjects, EncryptionPolicy policy) {
        if (keyCipher == null && policy.anyDeterministicKeys()) {
            throw new IllegalArgumentException("the policy encrypts record keys (keys: deterministic) but no record-key"
                    + " keyset was opened at start: set sivKeyset (or use keys: deterministic at start) and restart");
        }
        // headers: with a version-1-only cipher is not refused here: like subject: without subjectKeys:, it fails
        // closed per topic (encryptHeader/decryptHeader throw, naming keys:), and the rest of the policy applies
        this.subjects = subjects;
        this.cipher = cipher;
        this.keyCipher = keyCipher;
        this.json = new JsonTransformer(cipher, subjects);
    }

    /** @return the key rewriter for producing to {@code topic}, or null when its keys stay as sent */
    ValueRewriter keyEncryptor(String topic, TopicPlan plan) {
        if (keyCipher == null || !plan.deterministicKeys()) {
            return null;
        }
        return key -> {
            try {
                return keyCipher.encrypt(topic, key);
            } catch (GeneralSecurityException e) {
                throw failure("cannot encrypt a key for topic " + topic + ": " + e.getMessage(), e);
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
    ValueRewriter keyDecryptor(String topic, TopicPlan plan) {
        if (keyCipher == null) {
            return null;
        }
        boolean required = plan.encrypts() && plan.deterministicKeys();
        if (!required && !plan.decryptOnly()) {
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
                throw failure("cannot decrypt a key of topic " + shown + ": " + e.getMessage(), e);
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
    ValueRewriter keyGuard(String topic, TopicPlan plan) {
        if (keyCipher == null || !plan.decryptOnly()) {
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
    ValueRewriter valueGuard(String topic, TopicPlan plan) {
        if (!plan.decryptOnly()) {
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

    /**
     * @return null when the topic's policy lists no headers (then no header name is even looked at), else the header
     *     rewriter that encrypts the non-null values of the listed headers into header envelopes bound to the topic and
     *     the header's name; null values stay null
     */
    HeaderRewriter headerEncryptor(String topic, TopicPlan plan) {
        HeaderNames names = listedHeaders(plan);
        if (names == null) {
            return null;
        }
        // As for values: one output array per rewriter, each result copied out before the next header is encrypted.
        ReusableBuffer envelopes = new ReusableBuffer();
        return new ListedHeaders(names) {
            @Override
            public ByteBuffer rewrite(ByteBuffer name, ByteBuffer value) throws RecordRewriteException {
                try {
                    return cipher.encryptHeader(topic, name, value, envelopes);
                } catch (GeneralSecurityException e) {
                    throw failure("cannot encrypt header " + shownName(name) + " for topic " + topic + ": "
                            + e.getMessage(), e);
                }
            }
        };
    }

    /**
     * Follows the rule for values. On an encrypted topic every non-null value of a listed header must be a header
     * envelope that decrypts under this topic and this header name; anything else (plaintext written before the topic
     * listed the header, or by a producer that bypassed the mesh; an envelope moved from another header or topic; a
     * tampered one) fails the partition as CORRUPT_MESSAGE, never reaching the consumer. On a {@code decryptOnly}
     * topic (encrypted earlier, its entry and so its header list gone) every header value shaped like a header
     * envelope is decrypted under its own name and the rest pass; one that does not decrypt fails the partition
     * (Produce through the mesh refuses such values there: {@link #headerGuard}).
     *
     * @return null when fetched headers of {@code topic} pass untouched, else the header rewriter for its batches
     */
    HeaderRewriter headerDecryptor(String topic, TopicPlan plan) {
        if (plan.decryptOnly()) {
            return decryptOnlyHeaders(topic);
        }
        HeaderNames names = listedHeaders(plan);
        if (names == null) {
            return null;
        }
        String shown = shown(topic);
        ReusableBuffer plaintexts = new ReusableBuffer();
        return new ListedHeaders(names) {
            @Override
            public ByteBuffer rewrite(ByteBuffer name, ByteBuffer value) throws RecordRewriteException {
                if (!HeaderEnvelope.isHeaderEnvelope(value)) {
                    throw new RecordRewriteException("header " + shownName(name) + " on encrypted topic " + shown
                            + " is not a meshcrypt header envelope", null);
                }
                return decryptHeader(topic, shown, name, value, plaintexts);
            }
        };
    }

    private HeaderRewriter decryptOnlyHeaders(String topic) {
        String shown = shown(topic);
        ReusableBuffer plaintexts = new ReusableBuffer();
        return new HeaderRewriter() {
            @Override
            public boolean rewrites(ByteBuffer name) {
                return true; // which headers were listed is not known any more: the value's magic tells
            }

            @Override
            public ByteBuffer rewrite(ByteBuffer name, ByteBuffer value) throws RecordRewriteException {
                return HeaderEnvelope.isHeaderEnvelope(value) ? decryptHeader(topic, shown, name, value, plaintexts)
                        : value;
            }
        };
    }

    private ByteBuffer decryptHeader(String topic, String shown, ByteBuffer name, ByteBuffer value,
                                     ReusableBuffer plaintexts) throws RecordRewriteException {
        try {
            return cipher.decryptHeader(topic, name, value, plaintexts);
        } catch (GeneralSecurityException e) {
            throw failure("cannot decrypt header " + shownName(name) + " of topic " + shown + ": " + e.getMessage(), e);
        }
    }

    /**
     * The header counterpart of {@link #valueGuard}: for Produce to a {@code decryptOnly} topic, a header value
     * starting with the header-envelope magic would be decrypted (and fail) on fetch, so it is refused.
     *
     * @return null when producing to {@code topic} needs no header check; else an inspector that throws
     *     {@link RecordRewriteException} on a header value shaped like a header envelope
     */
    HeaderRewriter headerGuard(String topic, TopicPlan plan) {
        if (!plan.decryptOnly()) {
            return null;
        }
        return new HeaderRewriter() {
            @Override
            public boolean rewrites(ByteBuffer name) {
                return true;
            }

            @Override
            public ByteBuffer rewrite(ByteBuffer name, ByteBuffer value) throws RecordRewriteException {
                if (HeaderEnvelope.isHeaderEnvelope(value)) {
                    throw new RecordRewriteException("header " + shownName(name) + " produced to topic " + shown(topic)
                            + " (decryptOnly) starts with the meshcrypt header-envelope magic; consumers would fail to"
                            + " decrypt it: refused", null);
                }
                return value;
            }
        };
    }

    /** @return the headers an encrypted topic's entry lists, or null when there are none */
    private static HeaderNames listedHeaders(TopicPlan plan) {
        return plan.headers().isEmpty() || !plan.encrypts() ? null : plan.headers();
    }

    /** Chooses the headers a policy entry lists ({@link HeaderNames#matches}: no allocation per header). */
    private abstract static class ListedHeaders implements HeaderRewriter {
        private final HeaderNames names;

        ListedHeaders(HeaderNames names) {
            this.names = names;
        }

        @Override
        public final boolean rewrites(ByteBuffer name) {
            return names.matches(name);
        }
    }

    /** A header name for an error message (failures only): decoded, escaped and bounded; it may come from anyone. */
    private static String shownName(ByteBuffer name) {
        return "'" + Printable.of(StandardCharsets.UTF_8.decode(name.duplicate()).toString(), Printable.TOPIC_CHARS) + "'";
    }

    /** @return null when encrypting values of {@code topic} will not wait for a key, else what to wait for */
    CompletableFuture<Void> prepareForEncryption(String topic) {
        return cipher.prepareForEncryption(topic);
    }

    ValueRewriter encryptor(String topic, TopicPlan plan) {
        List<JsonPointer> fields = plan.fields();
        if (!fields.isEmpty()) {
            // A value that is not JSON fails the Produce: forwarding it would store it unencrypted.
            List<FieldOp> ops = fields.stream().<FieldOp>map(p -> new FieldOp.Encrypt(p, false)).toList();
            if (plan.subject() != null) {
                return subjectFieldEncryptor(topic, plan, ops);
            }
            return value -> {
                try {
                    return json.apply(value, ops, topic);
                } catch (TransformException e) {
                    throw failure("cannot encrypt the fields of a value for topic " + topic + ": " + e.getMessage(), e);
                }
            };
        }
        if (plan.subject() != null) {
            return subjectEncryptor(topic, plan);
        }
        // One output array per rewriter (one partition of one frame), reused for every record: the rewriter's result is
        // read before its next call, so no record allocates its envelope.
        ReusableBuffer envelopes = new ReusableBuffer();
        return value -> {
            try {
                return cipher.encrypt(topic, value, envelopes);
            } catch (GeneralSecurityException e) {
                throw failure("cannot encrypt a value for topic " + topic + ": " + e.getMessage(), e);
            }
        };
    }

    /**
     * Values under the key of their subject (version-3 envelopes). A record without a subject (no key, no such header,
     * or no string or number at the pointer) is refused, failing the Produce: encrypting it under the topic's key
     * would put a person's data where forgetting them cannot reach it.
     */
    private ValueRewriter subjectEncryptor(String topic, TopicPlan plan) {
        ReusableBuffer envelopes = new ReusableBuffer();
        return new SubjectIdReader(plan.subject()) {
            @Override
            public ByteBuffer rewrite(ByteBuffer value) throws RecordRewriteException {
                requireSubjectKeys(topic);
                ByteBuffer id = id(value);
                if (id == null || !id.hasRemaining()) {
                    throw new RecordRewriteException("a record produced to topic " + topic + " names no subject (subject:"
                            + " " + plan.subject() + "): refused, as it could not be forgotten", null);
                }
                try {
                    return subjects.encrypt(topic, plan.scope(), id, value, envelopes);
                } catch (GeneralSecurityException e) {
                    throw failure("cannot encrypt a value for topic " + topic + " under its subject's key: "
                            + e.getMessage(), e);
                }
            }
        };
    }

    /** Without a {@code subjectKeys:} section a topic with {@code subject:} fails closed, and only that topic. */
    private void requireSubjectKeys(String topic) throws RecordRewriteException {
        if (subjects == null) {
            throw new RecordRewriteException("topic " + topic + " encrypts under subject keys (subject:) but this"
                    + " filter-service has no subjectKeys: section (and keys:): refused", null);
        }
    }

    /**
     * The listed fields under the key of the record's subject (version-3 envelopes in the fields). As for whole values,
     * a record naming no subject, or a forgotten one, is refused. A subject in the value is read from the parsed
     * document itself; one in the key or a header is handed to it per record.
     */
    private ValueRewriter subjectFieldEncryptor(String topic, TopicPlan plan, List<FieldOp> ops) {
        FieldSubject rule = FieldSubject.of(plan.scope(), plan.subject(), plan.forgotten());
        boolean inValue = plan.subject().from() == SubjectSource.From.VALUE;
        return new SubjectIdReader(plan.subject()) {
            @Override
            public ByteBuffer rewrite(ByteBuffer value) throws RecordRewriteException {
                requireSubjectKeys(topic);
                try {
                    return json.apply(value, ops, topic, inValue ? rule : rule.withId(id(value)));
                } catch (TransformException e) {
                    throw failure("cannot encrypt the fields of a value for topic " + topic + " under its subject's key: "
                            + e.getMessage(), e);
                }
            }
        };
    }

    /**
     * For the Produce pre-pass ({@link RecordBatchRewriter#inspect}): starts the key work of every subject of the
     * records it is shown, adding what must be waited for to {@code pending}, so that a frame naming many new subjects
     * waits once for all of them instead of once per subject. Records without a subject are left to the encryptor.
     *
     * @return null when the topic has no subject keys
     */
    ValueRewriter subjectPreparer(TopicPlan plan, java.util.Set<CompletableFuture<Void>> pending) {
        if (plan.subject() == null || subjects == null) {
            return null;
        }
        return new SubjectIdReader(plan.subject()) {
            @Override
            public ByteBuffer rewrite(ByteBuffer value) {
                ByteBuffer id = id(value);
                if (id != null && id.hasRemaining()) {
                    CompletableFuture<Void> ready = subjects.store().prepare(plan.scope(), id);
                    if (ready != null) {
                        pending.add(ready);
                    }
                }
                return value;
            }
        };
    }

    /** Reads a record's subject id where {@code subject:} says it is. */
    private abstract static class SubjectIdReader implements RecordAwareValueRewriter {
        private final SubjectSource source;
        private final ByteBuffer headerName;
        private final com.fasterxml.jackson.core.JsonPointer pointer;
        private ByteBuffer key;
        private ByteBuffer headers;

        SubjectIdReader(SubjectSource source) {
            this.source = source;
            this.headerName = source.header() == null ? null
                    : ByteBuffer.wrap(source.header().getBytes(StandardCharsets.UTF_8));
            this.pointer = source.pointer() == null ? null
                    : com.fasterxml.jackson.core.JsonPointer.compile(source.pointer().toString());
        }

        @Override
        public void record(ByteBuffer key, ByteBuffer headers) {
            this.key = key;
            this.headers = headers;
        }

        /** @return the subject id of the record being rewritten, or null when it names none */
        ByteBuffer id(ByteBuffer value) {
            return switch (source.from()) {
                case KEY -> key;
                case HEADER -> headers == null ? null : SubjectIds.header(headers, headerName);
                case VALUE -> SubjectIds.jsonPointer(value, pointer);
            };
        }
    }

    /**
     * On an encrypted topic every value must be an envelope that decrypts; on a {@code decryptOnly} topic (encrypted
     * earlier) envelopes are decrypted and other values pass unchanged. The fetch path never asks for a rewriter of
     * any other topic: its batches pass untouched. On a field-level topic
     * every value must be JSON whose listed fields, where present, decrypt; a whole-value envelope (written before
     * the topic's policy named fields) is decrypted as such.
     */
    ValueRewriter decryptor(String topic, TopicPlan plan) {
        return decryptor(topic, plan, plan.fields());
    }

    /**
     * As {@link #decryptor(String, TopicPlan)} for a stream authenticated as {@code identity}: on a field-level topic,
     * a field with readers of its own that do not include {@code identity} keeps its envelope.
     */
    ValueRewriter decryptor(String topic, TopicPlan plan, String identity) {
        return decryptor(topic, plan, plan.fieldsReadableBy(identity));
    }

    /** @param readable the fields decrypted, of a field-level topic's (some may be left as envelopes) */
    private ValueRewriter decryptor(String topic, TopicPlan plan, List<JsonPointer> readable) {
        boolean required = plan.encrypts();
        String shown = shown(topic);
        // As in encryptor(): plaintexts are written into one array per rewriter, read before its next call.
        ReusableBuffer plaintexts = new ReusableBuffer();
        ByteBuffer forgotten = forgottenValue(plan.forgotten());
        if (!plan.fields().isEmpty()) {
            List<FieldOp> ops = readable.stream().<FieldOp>map(p -> new FieldOp.Decrypt(p, false)).toList();
            // Fields under subject keys decrypt against the entry's scope; a forgotten subject's read as forgotten:.
            FieldSubject subject = plan.subject() == null ? null
                    : FieldSubject.of(plan.scope(), plan.subject(), plan.forgotten());
            // A whole-value envelope holds every field, those this stream may not read too: it stays as stored.
            boolean everyField = readable.size() == plan.fields().size();
            return value -> {
                if (ValueEnvelope.isEnvelope(value)) {
                    return everyField ? decryptWhole(topic, shown, value, plaintexts, forgotten) : value;
                }
                try {
                    return json.apply(value, ops, topic, subject);
                } catch (TransformException e) {
                    throw failure("cannot decrypt the fields of a value of topic " + shown + ": " + e.getMessage(), e);
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
            return decryptWhole(topic, shown, value, plaintexts, forgotten);
        };
    }

    /** What a forgotten subject's value reads as: {@link ValueRewriter#NULL_VALUE}, or the placeholder's bytes. */
    private static ByteBuffer forgottenValue(Forgotten forgotten) {
        return forgotten.placeholder() == null ? ValueRewriter.NULL_VALUE
                : ByteBuffer.wrap(forgotten.placeholder().getBytes(StandardCharsets.UTF_8));
    }

    private ByteBuffer decryptWhole(String topic, String shown, ByteBuffer value, ReusableBuffer into,
                                    ByteBuffer forgotten) throws RecordRewriteException {
        try {
            if (ValueEnvelopeV3.isVersion3(value)) {
                if (subjects == null) {
                    throw new RecordRewriteException("a value of topic " + shown + " is under a subject key (envelope"
                            + " version 3) but no subjectKeys: section is configured", null);
                }
                ByteBuffer plaintext = subjects.decrypt(topic, value, into);
                // A forgotten subject: the rule's replacement, never an exception.
                return plaintext != null ? plaintext
                        : forgotten == ValueRewriter.NULL_VALUE ? forgotten : forgotten.duplicate();
            }
            return cipher.decrypt(topic, value, into);
        } catch (GeneralSecurityException e) {
            throw failure("cannot decrypt a value of topic " + shown + ": " + e.getMessage(), e);
        }
    }

    /**
     * How a failed value or key is answered, decided from what the cipher threw (directly, or through the JSON field
     * engine): a data key still on its way retries the frame once it is ready; an unreachable KMS is the retriable
     * KAFKA_STORAGE_ERROR on fetch (consumers pause instead of being told the data is bad); anything else is
     * CORRUPT_MESSAGE. Produce, which has no partition error to give, retries the first and closes the connection on
     * the others.
     */
    static RecordRewriteException failure(String message, Exception e) {
        Throwable cipherError = e instanceof TransformException ? e.getCause() : e;
        if (cipherError instanceof KeyNotReadyException notReady) {
            return new RecordRewriteException(message, Errors.KAFKA_STORAGE_ERROR, notReady.ready(), e);
        }
        if (cipherError instanceof TransientKmsException) {
            return new RecordRewriteException(message, Errors.KAFKA_STORAGE_ERROR, null, e);
        }
        return new RecordRewriteException(message, e);
    }

    /** Fetched topic names come from the broker: escaped for messages, once per rewriter (not per record). */
    private static String shown(String topic) {
        return Printable.of(topic, Printable.TOPIC_CHARS);
    }
}
