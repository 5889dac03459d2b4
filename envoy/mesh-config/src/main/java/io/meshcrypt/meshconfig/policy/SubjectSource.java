package io.meshcrypt.meshconfig.policy;

import io.meshcrypt.meshconfig.transform.JsonPointer;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * Where a policy entry's or an HTTP rule's {@code subject:} (the person or entity a record or body belongs to, whose own
 * key encrypts it so that it can be forgotten) is found: in a produced record, the record key, a JSON Pointer into the
 * value, or a header; in an HTTP request, a JSON Pointer into the body ({@link From#VALUE}) or a request header.
 *
 * @param from which part of the record or request names the subject
 * @param pointer for {@link From#VALUE}: the value (body) field holding the subject id (a JSON string or number); else
 *     null
 * @param header for {@link From#HEADER}: the header whose value is the subject id; else null
 * @param scope the subject keys' scope when named ({@code scope:}): entries and rules naming the same scope encrypt a
 *     subject's data under the same key, so one forget reaches all of it; null: the default scope (a policy entry's
 *     topic pattern as written, an HTTP rule's binding)
 */
public record SubjectSource(From from, JsonPointer pointer, String header, String scope) {

    /** What a named scope may be: the characters of topic names and topic patterns, so a scope can also name one. */
    public static final Pattern SCOPE = Pattern.compile("[A-Za-z0-9._*?-]{1,249}");

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
        if (scope != null && !SCOPE.matcher(scope).matches()) {
            throw new IllegalArgumentException("a scope is 1-249 characters of A-Z a-z 0-9 . _ - * ?");
        }
    }

    /** In the default scope. */
    public SubjectSource(From from, JsonPointer pointer, String header) {
        this(from, pointer, header, null);
    }

    /** @return this source with {@code scope} as its named scope (null: the default scope) */
    public SubjectSource withScope(String scope) {
        return new SubjectSource(from, pointer, header, scope);
    }

    /** @return the scope subject keys are filed under: the named scope, else {@code defaultScope} */
    public String scopeOr(String defaultScope) {
        return scope != null ? scope : defaultScope;
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
        String where = switch (from) {
            case KEY -> "key";
            case VALUE -> "value " + pointer;
            case HEADER -> "header " + header;
        };
        return scope == null ? where : where + " scope " + scope;
    }
}
