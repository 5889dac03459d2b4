package io.meshcrypt.launcher;

/** The launcher's progress lines, on standard output, prefixed as they always were. */
final class Say {

    private Say() {
    }

    static void say(String message) {
        System.out.println("meshcrypt: " + message);
        System.out.flush();
    }
}
