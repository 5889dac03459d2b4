package io.meshcrypt.launcher;

/** A failure the user can act on: printed as {@code meshcrypt: error: <message>}, exit code 1. */
public final class LauncherException extends RuntimeException {

    public LauncherException(String message) {
        super(message);
    }

    public LauncherException(String message, Throwable cause) {
        super(message, cause);
    }
}
