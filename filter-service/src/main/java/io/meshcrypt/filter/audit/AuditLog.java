package io.meshcrypt.filter.audit;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.time.Instant;
import java.time.InstantSource;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Writes audit lines on one thread of its own. {@link #submit} never blocks and takes no lock: a bounded lock-free
 * queue hands events over, and an event that finds it full is dropped and counted; the count is written later as an
 * {@code audit.dropped} line (and logged at most once a minute). Nothing of the data path ever waits for the disk.
 */
public final class AuditLog implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(AuditLog.class);

    /** Lines queued at most: a few seconds of a busy service's key operations and summaries. */
    public static final int DEFAULT_CAPACITY = 10_000;
    /** How often the writer wakes without lines to write: drop reports, failure summaries. */
    private static final long TICK_NANOS = TimeUnit.SECONDS.toNanos(1);
    private static final long WARN_INTERVAL_MILLIS = TimeUnit.MINUTES.toMillis(1);
    private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSS'Z'")
            .withZone(ZoneOffset.UTC);

    /** Where lines go: a rotating file or standard output. Used by the writer thread only. */
    interface Sink extends Closeable {
        /** @param line one JSON object and its newline */
        void write(byte[] line) throws IOException;

        void flush() throws IOException;
    }

    private final Sink sink;
    private final InstantSource clock;
    private final int capacity;
    private final ConcurrentLinkedQueue<AuditEvent> queue = new ConcurrentLinkedQueue<>();
    private final AtomicInteger queued = new AtomicInteger();
    private final AtomicLong dropped = new AtomicLong();
    private final AtomicLong firstDropMillis = new AtomicLong();
    private final List<Runnable> ticks = new CopyOnWriteArrayList<>();
    private final JsonFactory json = new JsonFactory();
    private final ByteArrayOutputStream line = new ByteArrayOutputStream(512);
    private final Thread writer;
    private volatile boolean parked;
    private volatile boolean closed;
    private long droppedTotal;
    private long lastWarnMillis;

    AuditLog(Sink sink, InstantSource clock, int capacity) {
        this.sink = Objects.requireNonNull(sink, "sink");
        this.clock = Objects.requireNonNull(clock, "clock");
        if (capacity < 1) {
            throw new IllegalArgumentException("capacity must be positive");
        }
        this.capacity = capacity;
        this.writer = Thread.ofPlatform().daemon().name("meshcrypt-audit").start(this::run);
    }

    /** @return the clock lines are stamped with */
    InstantSource clock() {
        return clock;
    }

    /**
     * Queues {@code event} for writing; never blocks.
     *
     * @return false when it was dropped (the queue is full, or the log closed): it is counted and reported
     */
    boolean submit(AuditEvent event) {
        if (closed || queued.incrementAndGet() > capacity) {
            if (!closed) {
                queued.decrementAndGet();
            }
            firstDropMillis.compareAndSet(0, clock.millis());
            dropped.incrementAndGet();
            return false;
        }
        queue.add(event);
        if (parked) {
            LockSupport.unpark(writer);
        }
        return true;
    }

    /** Runs {@code task} on the writer's thread about once a second (and at close), to write what is due. */
    void onTick(Runnable task) {
        ticks.add(task);
    }

    /** Writes what is queued, then stops the writer and closes the file. */
    @Override
    public void close() {
        closed = true;
        LockSupport.unpark(writer);
        try {
            writer.join(TimeUnit.SECONDS.toMillis(10));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void run() {
        try {
            while (true) {
                boolean wrote = drain();
                for (Runnable tick : ticks) {
                    tick.run(); // may queue lines: written below
                }
                wrote |= reportDrops();
                wrote |= drain();
                if (wrote) {
                    flush();
                }
                if (closed && queue.isEmpty()) {
                    // Drops counted while the last drain was stuck on the disk would otherwise never be written.
                    if (reportDrops()) {
                        flush();
                    }
                    return;
                }
                parked = true;
                if (queue.isEmpty() && !closed) {
                    LockSupport.parkNanos(this, TICK_NANOS);
                }
                parked = false;
            }
        } catch (RuntimeException | Error e) {
            log.error("audit trail writer stopped: {}", e.toString());
            throw e;
        } finally {
            try {
                sink.close();
            } catch (IOException e) {
                log.warn("cannot close the audit trail: {}", e.toString());
            }
        }
    }

    /** @return whether anything was written */
    private boolean drain() {
        boolean wrote = false;
        AuditEvent event;
        while ((event = queue.poll()) != null) {
            queued.decrementAndGet();
            write(event);
            wrote = true;
        }
        return wrote;
    }

    /** @return whether a line about dropped lines was written */
    private boolean reportDrops() {
        long count = dropped.getAndSet(0);
        if (count == 0) {
            return false;
        }
        long first = firstDropMillis.getAndSet(0);
        long now = clock.millis();
        droppedTotal += count;
        write(new Dropped(now, count, first == 0 ? now : first));
        if (now - lastWarnMillis >= WARN_INTERVAL_MILLIS) {
            lastWarnMillis = now;
            log.warn("audit trail: {} line(s) dropped so far because the writer fell behind (disk slow or full?)",
                    droppedTotal);
        }
        return true;
    }

    private void write(AuditEvent event) {
        line.reset();
        try {
            try (JsonGenerator g = json.createGenerator(line)) {
                g.writeStartObject();
                g.writeStringField("time", time(event.timeMillis()));
                g.writeStringField("event", event.event());
                event.writeFields(g);
                g.writeEndObject();
            }
            line.write('\n');
            sink.write(line.toByteArray());
        } catch (IOException e) {
            lost(e);
        }
    }

    private void flush() {
        try {
            sink.flush();
        } catch (IOException e) {
            lost(e);
        }
    }

    private void lost(IOException e) {
        long now = clock.millis();
        if (now - lastWarnMillis >= WARN_INTERVAL_MILLIS) {
            lastWarnMillis = now;
            log.warn("cannot write the audit trail: {}", e.toString());
        }
    }

    /** The trail's time format: UTC, milliseconds, always the same width. */
    static String time(long epochMillis) {
        return TIME.format(Instant.ofEpochMilli(epochMillis));
    }

    /** Lines the queue had no room for, between {@code first} and this line. */
    private record Dropped(long timeMillis, long count, long firstMillis) implements AuditEvent {
        @Override
        public String event() {
            return "audit.dropped";
        }

        @Override
        public void writeFields(JsonGenerator json) throws IOException {
            json.writeNumberField("dropped", count);
            json.writeStringField("first", time(firstMillis));
        }
    }
}
