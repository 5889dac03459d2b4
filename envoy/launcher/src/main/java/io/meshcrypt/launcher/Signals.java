package io.meshcrypt.launcher;

import sun.misc.Signal;

/** Ctrl-C (SIGINT) and SIGTERM as events, so the demo can stop what it started and print its summary first. */
final class Signals {

    private Signals() {
    }

    @SuppressWarnings("restriction")
    static void onInterrupt(Runnable action) {
        Signal.handle(new Signal("INT"), s -> action.run());
        Signal.handle(new Signal("TERM"), s -> action.run());
    }
}
