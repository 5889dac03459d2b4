package io.meshcrypt.meshconfig.transform;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * One transform of one JSON field, addressed by a JSON Pointer. Pure data: {@link JsonTransformer} runs it.
 *
 * <p>{@code required}: when the field is absent, a required op fails the document (see
 * {@link TransformException.Kind#INVALID_INPUT}) and an optional op does nothing.
 */
public sealed interface FieldOp {

    JsonPointer pointer();

    /** Replaces the field's value (any JSON type) with a meshcrypt envelope of its JSON text, base64 encoded. */
    record Encrypt(JsonPointer pointer, boolean required) implements FieldOp {
        public Encrypt {
            Objects.requireNonNull(pointer, "pointer");
        }
    }

    /** The reverse of {@link Encrypt}: the field must be a base64 envelope string; it becomes the original value. */
    record Decrypt(JsonPointer pointer, boolean required) implements FieldOp {
        public Decrypt {
            Objects.requireNonNull(pointer, "pointer");
        }
    }

    /** Replaces the field's value, whatever it is, with the string {@code with}. */
    record Redact(JsonPointer pointer, String with, boolean required) implements FieldOp {
        public static final String DEFAULT_WITH = "[redacted]";

        public Redact {
            Objects.requireNonNull(pointer, "pointer");
            Objects.requireNonNull(with, "with");
        }
    }

    /**
     * Regex replacement inside a string field: every match of {@code pattern} becomes {@code with}
     * ({@code $1}, {@code ${name}} refer to groups). A field that is not a string is invalid input.
     */
    record Replace(JsonPointer pointer, Pattern pattern, String with, boolean required) implements FieldOp {
        public Replace {
            Objects.requireNonNull(pointer, "pointer");
            Objects.requireNonNull(pattern, "pattern");
            Replacements.validate(pattern, with);
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Replace other && pointer.equals(other.pointer) && Patterns.equal(pattern, other.pattern)
                    && with.equals(other.with) && required == other.required;
        }

        @Override
        public int hashCode() {
            return Objects.hash(pointer, Patterns.hash(pattern), with, required);
        }
    }

    /** Sets the field to {@code value}, creating it when absent (its parent must exist). */
    record Set(JsonPointer pointer, JsonNode value) implements FieldOp {
        public Set {
            Objects.requireNonNull(pointer, "pointer");
            Objects.requireNonNull(value, "value");
            value = value.deepCopy();
        }
    }
}
