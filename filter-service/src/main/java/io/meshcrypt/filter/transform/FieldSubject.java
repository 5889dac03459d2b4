package io.meshcrypt.filter.transform;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.TextNode;
import io.meshcrypt.meshconfig.policy.Forgotten;
import io.meshcrypt.meshconfig.policy.SubjectSource;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import java.nio.ByteBuffer;
import java.util.Objects;

/**
 * Whose key encrypts a document's fields ({@code subject:} beside {@code fields:} of a Kafka entry, or on an HTTP rule):
 * the scope, where the subject id is (a field of the document itself, or given by the caller from a record key or a
 * header), and what a field under a forgotten subject's key reads as. Made once per rule; {@link #withId} per document
 * when the id is not in the document.
 *
 * @param scope the subject keys' scope
 * @param pointer the document field holding the subject id (a string or number), or null when the caller gives it
 * @param id the subject id's UTF-8 bytes (position..limit) when the caller gives it, else null
 * @param forgotten what a decrypted field of a forgotten subject becomes: JSON null or the placeholder string
 */
public record FieldSubject(String scope, JsonPointer pointer, ByteBuffer id, JsonNode forgotten) {

    public FieldSubject {
        Objects.requireNonNull(scope, "scope");
        Objects.requireNonNull(forgotten, "forgotten");
    }

    /** @return the rule's subject: the id read from the document at the pointer, or, for other sources, none yet */
    public static FieldSubject of(String scope, SubjectSource source, Forgotten forgotten) {
        JsonNode replacement = forgotten.placeholder() == null ? JsonNodeFactory.instance.nullNode()
                : TextNode.valueOf(forgotten.placeholder());
        return new FieldSubject(scope, source.from() == SubjectSource.From.VALUE ? source.pointer() : null, null,
                replacement);
    }

    /** @param id the subject id of the next document (from its record key or a header), or null when it names none */
    public FieldSubject withId(ByteBuffer id) {
        return new FieldSubject(scope, pointer, id, forgotten);
    }
}
