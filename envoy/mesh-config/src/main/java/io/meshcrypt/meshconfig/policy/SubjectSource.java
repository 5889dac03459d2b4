package io.meshcrypt.meshconfig.policy;

import io.meshcrypt.meshconfig.transform.JsonPointer;
import java.util.Objects;

/**
 * Where a policy entry's {@code subject:} (the person or entity a record belongs to, whose own key encrypts it so that
 * it can be forgotten) is found in a produced record: the record key, a JSON Pointer into the value, or a header.
 *
 * @param from which part of the record names the subject
 * @param pointer for {@link From#VALUE}: the value field holding the subject id (a JSON string or number); else null
 * @param header for {@link From#HEADER}: the header whose value is the subject id; else null
 */
public record SubjectSource(From from, JsonPointer pointer, String header) {

    /** The part of a record that names its subject. */
    public enum From {
        KEY, VALUE, HEADER
    }

    public SubjectSource {
        Objects.requireNonNull(from, "from");
        if ((from == From.VALUE) != (pointer != null)) {
            throw new IllegalArgumentException("a pointer is given exactly when the subject is in the value");
        }
        if ((from == From.HEADER) != (header != null && !header.isEmpty())) {
            throw new IllegalArgumentException("a header name is given exactly when the subject is in a header");
        }
    }

    public static SubjectSource key() {
        return new SubjectSource(From.KEY, null, null);
    }

    public static SubjectSource value(JsonPointer pointer) {
        return new SubjectSource(From.VALUE, pointer, null);
    }

    public static SubjectSource header(String name) {
        return new SubjectSource(From.HEADER, null, name);
    }

    @Override
    public String toString() {
        return switch (from) {
            case KEY -> "key";
            case VALUE -> "value " + pointer;
            case HEADER -> "header " + header;
        };
    }
}
