package io.meshcrypt.filter.subjects;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * A subject-key log in memory, shared by the stores of several "replicas": appends go to the end; {@link #deliver()}
 * hands every follower the records it has not seen, in log order (or each append does, when {@code auto}).
 * {@link #compact()} keeps the last record per key, as Kafka's log cleaner does.
 */
public final class FakeSubjectKeyLog {
    public record Entry(byte[] key, byte[] value) {
    }

    private final List<Entry> records = new ArrayList<>();
    private final List<View> views = new ArrayList<>();
    volatile boolean auto = true;

    public synchronized List<Entry> records() {
        return List.copyOf(records);
    }

    /** A replica's connection to the log. */
    public SubjectKeyLog view() {
        View view = new View();
        synchronized (this) {
            views.add(view);
        }
        return view;
    }

    public synchronized void deliver() {
        for (View view : views) {
            view.catchUp();
        }
    }

    public synchronized void compact() {
        Map<ByteBuffer, Entry> last = new LinkedHashMap<>();
        for (Entry e : records) {
            ByteBuffer k = ByteBuffer.wrap(e.key());
            last.remove(k);
            last.put(k, e);
        }
        records.clear();
        records.addAll(last.values());
        for (View view : views) {
            view.position = Math.min(view.position, records.size());
        }
    }

    /** Appends as another writer would (a replay, a hostile producer). */
    public synchronized void appendRaw(byte[] key, byte[] value) {
        records.add(new Entry(key, value));
        if (auto) {
            deliver();
        }
    }

    private final class View implements SubjectKeyLog {
        private Follower follower;
        private int position;
        private boolean closed;

        void catchUp() {
            while (follower != null && !closed && position < records.size()) {
                Entry e = records.get(position++);
                follower.apply(e.key(), e.value());
            }
        }

        @Override
        public CompletableFuture<Void> follow(Follower f) {
            synchronized (FakeSubjectKeyLog.this) {
                follower = f;
                catchUp();
            }
            return CompletableFuture.completedFuture(null);
        }

        @Override
        public CompletableFuture<Void> append(byte[] key, byte[] value) {
            appendRaw(key, value);
            return CompletableFuture.completedFuture(null);
        }

        @Override
        public void close() {
            synchronized (FakeSubjectKeyLog.this) {
                closed = true;
                views.remove(this);
            }
        }
    }
}
