package io.meshcrypt.launcher;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.BooleanSupplier;

/**
 * Starts components as detached processes (own session, output appended to logs/<component>.log), records their pids
 * in pids/<component>.pid, waits until they are ready and stops them with everything they forked.
 */
public final class Supervisor {

    private static final Duration STOP_GRACE = Duration.ofSeconds(15);
    /** The start time of a process and the moment its pid file was written differ by the exec of its launch. */
    private static final Duration PID_FILE_SLACK = Duration.ofSeconds(2);

    private final StateDir state;
    private final Duration timeout;

    public Supervisor(StateDir state, Duration timeout) {
        this.state = state;
        this.timeout = timeout;
    }

    public Duration timeout() {
        return timeout;
    }

    /**
     * The component's process, if it runs. A pid file left by a killed process, or a pid since reused by a process
     * that started after the pid file was written, counts as not running.
     */
    public Optional<ProcessHandle> running(String component) {
        Path f = state.pidFile(component);
        try {
            if (!Files.exists(f)) {
                return Optional.empty();
            }
            String pid = Files.readString(f).strip();
            if (!pid.matches("[0-9]{1,10}")) {
                return Optional.empty();
            }
            Instant written = Files.getLastModifiedTime(f).toInstant();
            return ProcessHandle.of(Long.parseLong(pid))
                    .filter(ProcessHandle::isAlive)
                    .filter(p -> p.info().startInstant().map(s -> !s.isAfter(written.plus(PID_FILE_SLACK))).orElse(false));
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    public boolean isRunning(String component) {
        return running(component).isPresent();
    }

    /**
     * Starts {@code command} for {@code component} in {@code dir}, in a session of its own (so a Ctrl-C on the
     * terminal reaches only the launcher, which then stops it in order), input from /dev/null.
     */
    public ProcessHandle launch(String component, Path dir, Map<String, String> env, List<String> command) {
        state.create();
        Path log = state.log(component);
        try {
            Files.writeString(log, "\n===== " + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss"))
                    + ": starting " + component + " =====\n", StandardCharsets.UTF_8,
                    java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
            List<String> full = new ArrayList<>();
            full.add("setsid");
            full.addAll(command);
            ProcessBuilder pb = new ProcessBuilder(full)
                    .directory(dir.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
            pb.environment().putAll(env);
            // names the state dir in every process of this mesh, whatever its command line says
            pb.environment().put("MESHCRYPT_OWNER", state.dir() + "/");
            Process p = pb.start();
            Files.writeString(state.pidFile(component), p.pid() + "\n");
            return p.toHandle();
        } catch (IOException e) {
            throw new LauncherException("cannot start " + component + ": " + e.getMessage(), e);
        }
    }

    /** Stops the component and everything it forked: TERM, then KILL after 15 s. Removes its pid file. */
    public void stop(String component) {
        stop(List.of(component));
    }

    /**
     * Stops the components together: TERM to all at once, then KILL what is left after 15 s. A KRaft cluster's nodes
     * must go together: stopped one by one, the last ones wait for a controller quorum that is already gone.
     */
    public void stop(List<String> components) {
        Map<String, List<ProcessHandle>> families = new java.util.LinkedHashMap<>();
        for (String component : components) {
            running(component).ifPresent(p -> {
                // taken before the TERM: once the leader exits, its children are no longer its descendants
                List<ProcessHandle> family = new ArrayList<>(p.descendants().toList());
                family.add(0, p);
                families.put(component, family);
            });
        }
        families.values().forEach(family -> family.forEach(ProcessHandle::destroy));
        long deadline = System.nanoTime() + STOP_GRACE.toNanos();
        families.forEach((component, family) -> {
            ProcessHandle p = family.getFirst();
            if (!awaitExit(p, Duration.ofNanos(Math.max(0, deadline - System.nanoTime())))) {
                Say.say(component + " (pid " + p.pid() + ") ignored SIGTERM for 15 s; killing it");
            }
            // a forked child may outlive a leader that exited cleanly: KILL whatever is left
            family.stream().filter(ProcessHandle::isAlive).forEach(ProcessHandle::destroyForcibly);
            for (ProcessHandle h : family) {
                if (!awaitExit(h, Duration.ofSeconds(10))) {
                    throw new LauncherException(component + " (pid " + h.pid() + ") survived SIGKILL");
                }
            }
            Say.say("stopped " + component);
        });
        for (String component : components) {
            try {
                Files.deleteIfExists(state.pidFile(component));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    private static boolean awaitExit(ProcessHandle p, Duration limit) {
        try {
            p.onExit().get(limit.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
            return true;
        } catch (java.util.concurrent.TimeoutException e) {
            return !p.isAlive();
        } catch (java.util.concurrent.ExecutionException e) {
            return !p.isAlive();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return !p.isAlive();
        }
    }

    /**
     * Polls {@code ready} until it holds. Fails fast when the component dies, and stops it on timeout so a
     * half-started component is never left behind.
     */
    public void await(String component, String what, BooleanSupplier ready) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!ready.getAsBoolean()) {
            if (!isRunning(component)) {
                printTail(component);
                try {
                    Files.deleteIfExists(state.pidFile(component));
                } catch (IOException ignored) {
                    // the error below says what matters
                }
                throw new LauncherException(component + " exited before " + what + "; its log: " + state.log(component));
            }
            if (System.nanoTime() > deadline) {
                printTail(component);
                stop(component);
                throw new LauncherException(component + ": no " + what + " within " + timeout.toSeconds()
                        + "s (MESHCRYPT_TIMEOUT); its log: " + state.log(component));
            }
            sleep(200);
        }
    }

    private void printTail(String component) {
        try {
            List<String> lines = Files.readAllLines(state.log(component), StandardCharsets.UTF_8);
            lines.subList(Math.max(0, lines.size() - 25), lines.size()).forEach(System.err::println);
        } catch (IOException ignored) {
            // no log to show
        }
    }

    static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new LauncherException("interrupted");
        }
    }
}
