package io.meshcrypt.filter.transform;

/** A document could not be transformed. Messages never quote document content. */
public final class TransformException extends Exception {

    public enum Kind {
        /** The input is not what the rule expects: not JSON, a required field missing, a field that does not decrypt. */
        INVALID_INPUT,
        /** The transform itself failed (encryption), whatever the input. */
        FAILURE,
        /**
         * The document may not pass, whatever the rule says about invalid input: it names no subject, or a forgotten
         * one, for fields that must go under a subject key (forwarding it would put a person's data out of reach of
         * forgetting, or accept new data of a person forgotten).
         */
        REFUSED
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
