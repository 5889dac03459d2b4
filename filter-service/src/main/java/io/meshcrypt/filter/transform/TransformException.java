package io.meshcrypt.filter.transform;

/** A document could not be transformed. Messages never quote document content. */
public final class TransformException extends Exception {

    public enum Kind {
        /** The input is not what the rule expects: not JSON, a required field missing, a field that does not decrypt. */
        INVALID_INPUT,
        /** The transform itself failed (encryption), whatever the input. */
        FAILURE
    }

    private final Kind kind;

    public TransformException(Kind kind, String message, Throwable cause) {
        super(message, cause);
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }
}
