package io.meshcrypt.meshconfig.transform;

/** A JSON Pointer cannot be applied to a document (its parent is missing or of the wrong kind). */
public final class PointerException extends Exception {
    public PointerException(String message) {
        super(message);
    }
}
