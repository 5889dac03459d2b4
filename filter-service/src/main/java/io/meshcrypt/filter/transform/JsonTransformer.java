package io.meshcrypt.filter.transform;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.exc.StreamConstraintsException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.TextNode;
import io.meshcrypt.filter.crypto.SubjectValueCipher;
import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.crypto.ValueEnvelope;
import io.meshcrypt.filter.crypto.ValueEnvelopeV3;
import io.meshcrypt.filter.subjects.SubjectKeyStore;
import io.meshcrypt.filter.transform.TransformException.Kind;
import io.meshcrypt.meshconfig.transform.FieldOp;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import io.meshcrypt.meshconfig.transform.PointerException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.Base64;
import java.util.List;
import java.util.Objects;

/**
 * Runs {@link FieldOp}s on JSON documents: the one field transform engine behind HTTP body rules and field-level
 * Kafka topic policies. Thread-safe.
 *
 * <p>Encrypted fields hold the record envelope of envelope-format.md, base64 encoded (standard alphabet, padded),
 * of the field value's JSON text; the envelope is bound to a <em>binding</em> name exactly as a record value is
 * bound to its topic (for Kafka the binding is the topic). Decrypting restores the value with its JSON type. With a
 * {@link FieldSubject} (a rule naming a {@code subject:}), fields are encrypted under that subject's key instead
 * (version-3 envelopes, bound to binding and scope); a field whose subject was forgotten decrypts to the rule's
 * {@code forgotten:} replacement, never an exception.
 *
 * <p>Parsing is strict, because the application behind the proxy parses the same bytes and must not read anything
 * the rules did not see: exactly one JSON value, no duplicate object keys, no trailing content. Numbers keep their
 * exact decimal form. Output is compact JSON (insignificant whitespace is not preserved).
 *
 * <p>Documents come from clients (HTTP bodies, Kafka values) and a tree costs far more heap than its text ({@code
 * [{},{},...]} grows about 25 times), so parsing is bounded ({@link Limits}): a document over a limit fails that
 * document with {@link Kind#INVALID_INPUT}, before its tree can exhaust the heap.
 */
public final class JsonTransformer {

    /**
     * Parse limits (Jackson {@link StreamReadConstraints}), checked while parsing so a hostile document fails early.
     *
     * @param maxDocumentBytes longest document accepted, in bytes (checked before parsing)
     * @param maxNestingDepth deepest nesting of arrays and objects (also bounds the recursion of serializing the tree)
     * @param maxTokenCount most JSON tokens in one document: what bounds the tree's heap (about 50-150 bytes a token)
     * @param maxStringLength longest string value or field name, in characters
     */
    public record Limits(int maxDocumentBytes, int maxNestingDepth, long maxTokenCount, int maxStringLength) {
        /** 16 MiB: above Kafka's default message.max.bytes (1 MiB) with room for large HTTP bodies. */
        public static final int DEFAULT_MAX_DOCUMENT_BYTES = 16 << 20;
        /** Deep enough for real documents, shallow enough that no recursion over the tree gets near the stack limit. */
        public static final int DEFAULT_MAX_NESTING_DEPTH = 128;
        /** A 16 MiB document of ordinary JSON has a few million tokens at most; {@code [{},...]} of 1M tokens ~ 60 MB of tree. */
        public static final long DEFAULT_MAX_TOKEN_COUNT = 1_000_000;
        public static final int DEFAULT_MAX_STRING_LENGTH = 16 << 20;

        public Limits {
            if (maxDocumentBytes < 1 || maxNestingDepth < 1 || maxTokenCount < 1 || maxStringLength < 1) {
                throw new IllegalArgumentException("JSON limits must be positive: " + maxDocumentBytes + ", " + maxNestingDepth
                        + ", " + maxTokenCount + ", " + maxStringLength);
            }
        }

        public static Limits defaults() {
            return new Limits(DEFAULT_MAX_DOCUMENT_BYTES, DEFAULT_MAX_NESTING_DEPTH, DEFAULT_MAX_TOKEN_COUNT,
                    DEFAULT_MAX_STRING_LENGTH);
        }

        StreamReadConstraints constraints() {
            return StreamReadConstraints.builder()
                    .maxDocumentLength(maxDocumentBytes)
                    .maxNestingDepth(maxNestingDepth)
                    .maxTokenCount(maxTokenCount)
                    .maxStringLength(maxStringLength)
                    .maxNameLength(maxStringLength)
                    .build();
        }
    }

    private static final Limits DEFAULT_LIMITS = Limits.defaults();
    private static final ObjectMapper MAPPER = mapper(DEFAULT_LIMITS);

    private final ValueCipher cipher;
    /** Null without a {@code subjectKeys:} section: then fields of rules naming a subject fail. */
    private final SubjectValueCipher subjects;
    private final Limits limits;
    private final ObjectMapper mapper;

    public JsonTransformer(ValueCipher cipher) {
        this(cipher, DEFAULT_LIMITS);
    }

    public JsonTransformer(ValueCipher cipher, Limits limits) {
        this(cipher, null, limits);
    }

    /** @param subjects encrypts fields of rules naming a subject; null without a {@code subjectKeys:} section */
    public JsonTransformer(ValueCipher cipher, SubjectValueCipher subjects) {
        this(cipher, subjects, DEFAULT_LIMITS);
    }

    public JsonTransformer(ValueCipher cipher, SubjectValueCipher subjects, Limits limits) {
        this.cipher = Objects.requireNonNull(cipher, "cipher");
        this.subjects = subjects;
        this.limits = Objects.requireNonNull(limits, "limits");
        this.mapper = limits.equals(DEFAULT_LIMITS) ? MAPPER : mapper(limits);
    }

    private static ObjectMapper mapper(Limits limits) {
        JsonFactory factory = JsonFactory.builder()
                .streamReadConstraints(limits.constraints())
                .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
                .disable(StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION)
                .build();
        return JsonMapper.builder(factory)
                .nodeFactory(JsonNodeFactory.withExactBigDecimals(true))
                .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
                .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
                .build();
    }

    /**
     * Parses with the default {@link Limits}.
     *
     * @throws TransformException (INVALID_INPUT) when {@code json} is not exactly one JSON value, or exceeds a limit
     */
    public static JsonNode parse(byte[] json, int offset, int length) throws TransformException {
        return parse(MAPPER, DEFAULT_LIMITS, json, offset, length);
    }

    /** Parses with this transformer's {@link Limits}; see {@link #parse(byte[], int, int)}. */
    public JsonNode read(byte[] json, int offset, int length) throws TransformException {
        return parse(mapper, limits, json, offset, length);
    }

    private static JsonNode parse(ObjectMapper mapper, Limits limits, byte[] json, int offset, int length)
            throws TransformException {
        if (length == 0) {
            throw new TransformException(Kind.INVALID_INPUT, "not JSON: empty", null);
        }
        if (length > limits.maxDocumentBytes()) {
            // Refused before the parser sees a byte.
            throw new TransformException(Kind.INVALID_INPUT, "JSON document of " + length + " bytes exceeds the limit of "
                    + limits.maxDocumentBytes() + " bytes", null);
        }
        try (JsonParser parser = mapper.createParser(json, offset, length)) {
            JsonNode node = mapper.readTree(parser);
            if (node == null || node.isMissingNode()) {
                throw new TransformException(Kind.INVALID_INPUT, "not JSON: no value", null);
            }
            return node;
        } catch (StreamConstraintsException e) {
            // Jackson's own text names the limit and numbers only, never content.
            throw new TransformException(Kind.INVALID_INPUT, "JSON document exceeds a parse limit: " + e.getOriginalMessage(), null);
        } catch (JsonProcessingException e) {
            // The parser's own message may quote content (a field value): report the position only.
            JsonLocation at = e.getLocation();
            throw new TransformException(Kind.INVALID_INPUT, "not JSON"
                    + (at == null ? "" : " (error at line " + at.getLineNr() + ", column " + at.getColumnNr() + ")"), null);
        } catch (IOException e) {
            throw new TransformException(Kind.INVALID_INPUT, "not JSON: " + e.getClass().getSimpleName(), null);
        }
    }

    public static JsonNode parse(byte[] json) throws TransformException {
        return parse(json, 0, json.length);
    }

    public static byte[] serialize(JsonNode node) {
        try {
            return MAPPER.writeValueAsBytes(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("a JSON tree failed to serialize", e);
        }
    }

    /** Parses, transforms and serializes {@code json} (position..limit, not moved). */
    public ByteBuffer apply(ByteBuffer json, List<FieldOp> ops, String binding) throws TransformException {
        return apply(json, ops, binding, null);
    }

    /**
     * As {@link #apply(ByteBuffer, List, String)}, with encrypted fields under {@code subject}'s key.
     *
     * @param subject null: fields under the binding's data key
     */
    public ByteBuffer apply(ByteBuffer json, List<FieldOp> ops, String binding, FieldSubject subject)
            throws TransformException {
        byte[] bytes;
        int offset;
        int length = json.remaining();
        if (length > limits.maxDocumentBytes()) {
            throw new TransformException(Kind.INVALID_INPUT, "JSON document of " + length + " bytes exceeds the limit of "
                    + limits.maxDocumentBytes() + " bytes", null);
        }
        if (json.hasArray()) {
            bytes = json.array();
            offset = json.arrayOffset() + json.position();
        } else {
            bytes = new byte[length];
            json.get(json.position(), bytes);
            offset = 0;
        }
        return ByteBuffer.wrap(serialize(apply(read(bytes, offset, length), ops, binding, subject)));
    }

    /**
     * Runs {@code ops} in order on {@code document}, which may be modified in place.
     *
     * @param binding what encrypted fields are bound to (the topic for Kafka values)
     * @return the transformed document (a new node when an op addresses the root)
     */
    public JsonNode apply(JsonNode document, List<FieldOp> ops, String binding) throws TransformException {
        return apply(document, ops, binding, null);
    }

    /**
     * As {@link #apply(JsonNode, List, String)}, with encrypted fields under {@code subject}'s key. The subject id is
     * read before any op runs (an op may encrypt the field holding it).
     *
     * @param subject null: fields under the binding's data key
     * @throws TransformException ({@link Kind#REFUSED}) when a field is to be encrypted and the document names no
     *     subject, or a forgotten one
     */
    public JsonNode apply(JsonNode document, List<FieldOp> ops, String binding, FieldSubject subject)
            throws TransformException {
        Objects.requireNonNull(binding, "binding");
        if (subject != null && subject.id() == null && subject.pointer() != null
                && ops.stream().anyMatch(op -> op instanceof FieldOp.Encrypt)) {
            subject = subject.withId(subjectId(subject.pointer().find(document)));
        }
        JsonNode root = document;
        for (FieldOp op : ops) {
            root = apply(root, op, binding, subject);
        }
        return root;
    }

    /** A subject id as the whole-value path reads it from a record value: a string's text or a number's. */
    private static ByteBuffer subjectId(JsonNode at) {
        if (at == null || !(at.isTextual() || at.isNumber())) {
            return null;
        }
        return ByteBuffer.wrap(at.asText().getBytes(StandardCharsets.UTF_8));
    }

    private JsonNode apply(JsonNode root, FieldOp op, String binding, FieldSubject subject) throws TransformException {
        JsonPointer pointer = op.pointer();
        if (op instanceof FieldOp.Set set) {
            try {
                return pointer.set(root, set.value().deepCopy());
            } catch (PointerException e) {
                throw new TransformException(Kind.INVALID_INPUT, "set: " + e.getMessage(), null);
            }
        }
        JsonNode target = pointer.find(root);
        if (target == null) {
            if (isRequired(op)) {
                throw new TransformException(Kind.INVALID_INPUT, "required field " + pointer + " is missing", null);
            }
            return root;
        }
        JsonNode replacement = switch (op) {
            case FieldOp.Encrypt e -> subject == null ? encrypt(target, binding, pointer)
                    : encrypt(target, binding, pointer, subject);
            case FieldOp.Decrypt d -> decrypt(target, binding, pointer, subject);
            case FieldOp.Redact r -> TextNode.valueOf(r.with());
            case FieldOp.Replace r -> {
                if (!target.isTextual()) {
                    throw new TransformException(Kind.INVALID_INPUT, "replace: field " + pointer + " is a "
                            + nodeType(target) + ", not a string", null);
                }
                yield TextNode.valueOf(r.pattern().matcher(target.textValue()).replaceAll(r.with()));
            }
            case FieldOp.Set s -> throw new AssertionError("handled above");
        };
        return pointer.replace(root, replacement);
    }

    private JsonNode encrypt(JsonNode value, String binding, JsonPointer pointer) throws TransformException {
        try {
            ByteBuffer envelope = cipher.encrypt(binding, ByteBuffer.wrap(serialize(value)));
            return TextNode.valueOf(Base64.getEncoder().encodeToString(toArray(envelope)));
        } catch (GeneralSecurityException e) {
            throw new TransformException(Kind.FAILURE, "cannot encrypt field " + pointer + ": " + e.getMessage(), e);
        }
    }

    private JsonNode encrypt(JsonNode value, String binding, JsonPointer pointer, FieldSubject subject)
            throws TransformException {
        if (subjects == null) {
            throw new TransformException(Kind.FAILURE, "cannot encrypt field " + pointer + " under a subject key: this"
                    + " filter-service has no subjectKeys: section (and keys:)", null);
        }
        ByteBuffer id = subject.id();
        if (id == null || !id.hasRemaining()) {
            throw new TransformException(Kind.REFUSED, "the document names no subject"
                    + (subject.pointer() == null ? "" : " (no string or number at " + subject.pointer() + ")")
                    + ": refused, as field " + pointer + " could not be forgotten", null);
        }
        try {
            ByteBuffer envelope = subjects.encryptField(binding, subject.scope(), id, ByteBuffer.wrap(serialize(value)));
            return TextNode.valueOf(Base64.getEncoder().encodeToString(toArray(envelope)));
        } catch (SubjectKeyStore.SubjectForgottenException e) {
            throw new TransformException(Kind.REFUSED, "the document's subject was forgotten: refused", e);
        } catch (GeneralSecurityException e) {
            throw new TransformException(Kind.FAILURE, "cannot encrypt field " + pointer + " under its subject's key: "
                    + e.getMessage(), e);
        }
    }

    private JsonNode decrypt(JsonNode value, String binding, JsonPointer pointer, FieldSubject subject)
            throws TransformException {
        if (!value.isTextual()) {
            throw new TransformException(Kind.INVALID_INPUT, "field " + pointer + " is a " + nodeType(value)
                    + ", not an encrypted (base64 envelope) string", null);
        }
        byte[] envelope;
        try {
            envelope = Base64.getDecoder().decode(value.textValue());
        } catch (IllegalArgumentException e) {
            throw new TransformException(Kind.INVALID_INPUT, "field " + pointer + " is not base64, so not encrypted", null);
        }
        ByteBuffer buffer = ByteBuffer.wrap(envelope);
        if (!ValueEnvelope.isEnvelope(buffer)) {
            throw new TransformException(Kind.INVALID_INPUT, "field " + pointer + " is not a meshcrypt envelope", null);
        }
        ByteBuffer plaintext;
        try {
            if (ValueEnvelopeV3.isVersion3(buffer)) {
                plaintext = decryptUnderSubject(buffer, binding, pointer, subject);
                if (plaintext == null) {
                    return subject.forgotten(); // a forgotten subject: the rule's replacement, never an exception
                }
            } else {
                plaintext = cipher.decrypt(binding, buffer);
            }
        } catch (GeneralSecurityException e) {
            throw new TransformException(Kind.INVALID_INPUT, "cannot decrypt field " + pointer + ": " + e.getMessage(), e);
        }
        try {
            return read(plaintext.array(), plaintext.arrayOffset() + plaintext.position(), plaintext.remaining());
        } catch (TransformException e) {
            // Authenticated, so written by a meshcrypt writer: only a writer bug gets here.
            throw new TransformException(Kind.INVALID_INPUT, "field " + pointer + " decrypts to something that is not JSON", e);
        }
    }

    /** @return the field's JSON text, or null when its subject was forgotten */
    private ByteBuffer decryptUnderSubject(ByteBuffer envelope, String binding, JsonPointer pointer,
                                           FieldSubject subject) throws GeneralSecurityException, TransformException {
        if (subject == null) {
            // No scope to check it against: a rule without subject: reads no subject's fields.
            throw new TransformException(Kind.INVALID_INPUT, "field " + pointer + " is under a subject key, and the"
                    + " rule names no subject", null);
        }
        if (subjects == null) {
            throw new TransformException(Kind.FAILURE, "field " + pointer + " is under a subject key but this"
                    + " filter-service has no subjectKeys: section", null);
        }
        return subjects.decryptField(binding, subject.scope(), envelope);
    }

    private static boolean isRequired(FieldOp op) {
        return switch (op) {
            case FieldOp.Encrypt e -> e.required();
            case FieldOp.Decrypt d -> d.required();
            case FieldOp.Redact r -> r.required();
            case FieldOp.Replace r -> r.required();
            case FieldOp.Set s -> false;
        };
    }

    private static String nodeType(JsonNode node) {
        return node.getNodeType().name().toLowerCase(java.util.Locale.ROOT);
    }

    private static byte[] toArray(ByteBuffer buffer) {
        if (buffer.hasArray() && buffer.arrayOffset() == 0 && buffer.position() == 0
                && buffer.remaining() == buffer.array().length) {
            return buffer.array();
        }
        byte[] bytes = new byte[buffer.remaining()];
        buffer.duplicate().get(bytes);
        return bytes;
    }
}
