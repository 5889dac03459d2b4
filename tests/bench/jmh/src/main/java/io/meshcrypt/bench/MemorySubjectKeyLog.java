package io.meshcrypt.bench;

import io.meshcrypt.filter.subjects.SubjectKeyLog;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * The subject-key log in memory, for the in-process benchmark: an append is delivered to the follower at once, on the
 * appending thread (the store's own worker), so a new subject's key is usable as soon as its append returns. No
 * broker: the benchmark times the data path, not the key topic.
 */
final class MemorySubjectKeyLog implements SubjectKeyLog {
    private final List<byte[][]> records = new ArrayList<>();
    private Follower follower;

    @Override
    public synchronized CompletableFuture<Void> follow(Follower f) {
        follower = f;
        records.forEach(r -> f.apply(r[0], r[1]));
        return CompletableFuture.completedFuture(null);
    }

    @Override
    public synchronized CompletableFuture<Void> append(byte[] key, byte[] value) {
        records.add(new byte[][] {key, value});
        if (follower != null) {
            follower.apply(key, value);
        }
        return CompletableFuture.completedFuture(null);
    }

    @Override
    public void close() {
    }
}
