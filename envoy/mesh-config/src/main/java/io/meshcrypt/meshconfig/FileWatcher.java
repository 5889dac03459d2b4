package io.meshcrypt.meshconfig;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Calls back with a file's new content whenever it changes. Polls the content rather than using a WatchService:
 * it sees every way a file gets replaced (in-place writes, atomic renames, the symlink swaps of Kubernetes
 * ConfigMaps) and does not depend on modification-time granularity. Config files are small, so a read every few
 * hundred milliseconds is cheap. Callbacks run on one daemon thread, one at a time.
 */
public final class FileWatcher implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(FileWatcher.class);

    @FunctionalInterface
    public interface Listener {
        void changed(byte[] content) throws Exception;
    }

    private final Path file;
    private final Listener listener;
    private final ScheduledExecutorService executor;
    private byte[] last;
    private String lastProblem;

    private FileWatcher(Path file, byte[] initial, Listener listener) {
        this.file = file;
        this.last = initial;
        this.listener = listener;
        this.executor = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "watch-" + file.getFileName());
            t.setDaemon(true);
            return t;
        });
    }

    /**
     * @param initial the content the caller already applied, or null to have the first poll report the file
     */
    public static FileWatcher start(Path file, byte[] initial, Duration interval, Listener listener) {
        FileWatcher watcher = new FileWatcher(file, initial == null ? null : initial.clone(), listener);
        watcher.executor.scheduleWithFixedDelay(watcher::poll, 0, interval.toMillis(), TimeUnit.MILLISECONDS);
        return watcher;
    }

    private void poll() {
        byte[] content;
        try {
            content = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            problem(file + ": file is missing; keeping the last configuration");
            return;
        } catch (IOException e) {
            problem(file + ": cannot read: " + e.getMessage() + "; keeping the last configuration");
            return;
        }
        lastProblem = null;
        if (last != null && Arrays.equals(last, content)) {
            return;
        }
        last = content;
        try {
            listener.changed(content);
        } catch (Exception e) {
            // the listener reports its own validation errors; this is a bug, but must not stop watching
            log.error("{}: applying the changed file failed", file, e);
        }
    }

    /** Logged once per distinct problem, not on every poll. */
    private void problem(String message) {
        if (!message.equals(lastProblem)) {
            log.warn(message);
            lastProblem = message;
        }
    }

    @Override
    public void close() {
        executor.shutdownNow();
    }
}
