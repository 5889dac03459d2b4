package io.meshcrypt.filter.kms;

import java.util.concurrent.atomic.LongAdder;

/**
 * Counters of the key services (KMS decorators and DEK caches), readable at any time; logged once a minute while they
 * change (see {@link InstrumentedKekProvider#metricsLog}). The adders are public so each part counts its own events.
 */
public final class KeyMetrics {
    public final LongAdder kmsCalls = new LongAdder();
    public final LongAdder kmsFailures = new LongAdder();
    /** Time spent in KMS requests actually sent, successful or not. */
    public final LongAdder kmsCallNanos = new LongAdder();
    public final LongAdder kmsSkipped = new LongAdder();
    public final LongAdder deksGenerated = new LongAdder();
    public final LongAdder unwraps = new LongAdder();
    public final LongAdder cacheMisses = new LongAdder();
    /** Decryption DEK lookups served from the cache: one per run of records under one DEK, not one per record. */
    public final LongAdder cacheHits = new LongAdder();
    public final LongAdder keysNotReady = new LongAdder();
    public final LongAdder newDeksDelayed = new LongAdder();
    public final LongAdder newDeksRefused = new LongAdder();
    public final LongAdder unknownKeks = new LongAdder();
    public final LongAdder unwrapsDelayed = new LongAdder();

    /** @return KMS requests actually sent (wrap, unwrap, current-KEK checks, KEK listings) */
    public long kmsCalls() {
        return kmsCalls.sum();
    }

    /** @return total nanoseconds spent in the {@link #kmsCalls()} */
    public long kmsCallNanos() {
        return kmsCallNanos.sum();
    }

    public long kmsFailures() {
        return kmsFailures.sum();
    }

    /** @return KMS calls not sent because the KMS was backing off */
    public long kmsSkipped() {
        return kmsSkipped.sum();
    }

    public long deksGenerated() {
        return deksGenerated.sum();
    }

    public long unwraps() {
        return unwraps.sum();
    }

    /** @return DEK cache misses that needed an unwrap (not one already in flight or failed recently) */
    public long cacheHits() {
        return cacheHits.sum();
    }

    public long cacheMisses() {
        return cacheMisses.sum();
    }

    /** @return times a caller was told to retry later ({@link KeyNotReadyException}), for any reason */
    public long keysNotReady() {
        return keysNotReady.sum();
    }

    /** @return topics without a DEK that had to queue for a new-DEK token (counted once per wait) */
    public long newDeksDelayed() {
        return newDeksDelayed.sum();
    }

    /** @return topics without a DEK refused at once because {@code maxTopicsWaitingForDek} topics already waited */
    public long newDeksRefused() {
        return newDeksRefused.sum();
    }

    /** @return envelopes refused without a KMS call because they name a KEK id that is not known */
    public long unknownKeks() {
        return unknownKeks.sum();
    }

    /** @return unwraps of never-seen wrapped DEKs told to wait for a token of the unwrap rate limit */
    public long unwrapsDelayed() {
        return unwrapsDelayed.sum();
    }

    @Override
    public String toString() {
        return "kmsCalls=" + kmsCalls() + " kmsFailures=" + kmsFailures() + " kmsSkipped=" + kmsSkipped()
                + " deksGenerated=" + deksGenerated() + " unwraps=" + unwraps() + " decryptCacheMisses=" + cacheMisses()
                + " keysNotReady=" + keysNotReady() + " newDeksDelayed=" + newDeksDelayed() + " newDeksRefused=" + newDeksRefused() + " unknownKeks=" + unknownKeks()
                + " unwrapsDelayed=" + unwrapsDelayed();
    }
}
