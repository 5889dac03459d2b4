package io.meshcrypt.filter.crypto;

import io.meshcrypt.filter.kms.DekContext;
import io.meshcrypt.filter.kms.KeyAudit;
import io.meshcrypt.filter.kms.KeyMetrics;
import io.meshcrypt.filter.kms.Printable;
import io.meshcrypt.filter.kms.ResilientKekProvider;
import java.nio.ByteBuffer;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.Arrays;
import java.util.Iterator;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;
import javax.crypto.spec.SecretKeySpec;

/**
 * The DEKs for decrypting version-2 envelopes: a bounded cache of unwrapped DEKs (and of the DEKs this instance
 * generated), keyed by topic and the envelope's key section. A miss asks the {@link ResilientKekProvider}, which never
 * waits; only DEKs that unwrapped enter the cache, so forged wrapped DEKs never evict good ones.
 */
final class DecryptionDeks {

    /** The limits that concern decrypting (documented on the facade's settings). */
    record Settings(Duration cacheTtl, int cacheMaxEntries, int maxWrappedDekBytes) {
    }

    private final ResilientKekProvider kms;
    private final Settings settings;
    private final KeyMetrics metrics;
    private final LongSupplier nanoTime;
    private final ConcurrentHashMap<CacheKey, CacheEntry> unwrapped = new ConcurrentHashMap<>();
    private final ThreadLocal<CacheEntry> lastUsed = new ThreadLocal<>();
    private final KeyAudit audit;

    /** @return unwrapped DEKs in the cache (expired ones until they are evicted) */
    int size() {
        return unwrapped.size();
    }

    DecryptionDeks(ResilientKekProvider kms, Settings settings, KeyMetrics metrics, LongSupplier nanoTime) {
        this(kms, settings, metrics, nanoTime, KeyAudit.NONE);
    }

    /** @param audit told of envelopes refused before any KMS call (the KMS decorator reports the calls) */
    DecryptionDeks(ResilientKekProvider kms, Settings settings, KeyMetrics metrics, LongSupplier nanoTime, KeyAudit audit) {
        this.audit = audit;
        this.kms = kms;
        this.settings = settings;
        this.metrics = metrics;
        this.nanoTime = nanoTime;
    }

    /** The per-record path: never waits for the KMS (documented on the facade). */
    SecretKeySpec forDecryption(String topic, ByteBuffer envelope, ValueEnvelopeV2.Info info) throws GeneralSecurityException {
        int from = envelope.position() + info.keyOffset();
        int length = info.headerLength() - info.keyOffset();
        long now = nanoTime.getAsLong();
        CacheEntry last = lastUsed.get();
        if (last != null && last.validAt(now) && last.matches(envelope, from, length, topic)) {
            metrics.cacheHits.increment();
            return last.key;
        }
        if (info.wrappedDekLength() > settings.maxWrappedDekBytes()) {
            throw new EnvelopeException("value" + ValueEnvelope.onTopic(topic) + " names a wrapped DEK of " + info.wrappedDekLength()
                    + " bytes, more than keys allow (" + settings.maxWrappedDekBytes() + "): not written by meshcrypt");
        }
        byte[] keyBytes = new byte[length];
        envelope.get(from, keyBytes);
        CacheKey cacheKey = new CacheKey(topic, keyBytes);
        CacheEntry entry = unwrapped.get(cacheKey);
        if (entry == null || !entry.validAt(now)) {
            // An expired entry unwrapped here before: its unwrap takes no rate-limit token.
            entry = unwrap(cacheKey, info, topic, now, entry != null);
        } else {
            metrics.cacheHits.increment();
        }
        lastUsed.set(entry);
        return entry.key;
    }

    /** The allocation-free fast path for a run of records under one DEK (documented on the facade). */
    SecretKeySpec cachedForDecryption(String topic, ByteBuffer envelope, int keySectionLength) {
        CacheEntry last = lastUsed.get();
        if (last != null && last.validAt(nanoTime.getAsLong())
                && last.matches(envelope, envelope.position() + ValueEnvelopeV2.KEK_ID_LENGTH_OFFSET, keySectionLength, topic)) {
            return last.key;
        }
        return null;
    }

    /** The producer's own DEK decrypts its records on this instance without an unwrap call. */
    void remember(String topic, byte[] header, SecretKeySpec key, long now) {
        byte[] keyBytes = Arrays.copyOfRange(header, ValueEnvelopeV2.KEK_ID_LENGTH_OFFSET, header.length);
        CacheEntry entry = new CacheEntry(new CacheKey(topic, keyBytes), key, now + settings.cacheTtl().toNanos());
        unwrapped.put(entry.cacheKey, entry);
        evictIfFull(now, entry.cacheKey);
    }

    /**
     * A cache miss: checks the KEK id before anything reaches the KMS, then asks the KMS decorator, under the cache's
     * lock for this key so that of two threads collecting one finished unwrap the second finds it cached.
     */
    private CacheEntry unwrap(CacheKey cacheKey, ValueEnvelopeV2.Info info, String topic, long now, boolean seen)
            throws GeneralSecurityException {
        byte[] bytes = cacheKey.bytes();
        byte[] wrapped = Arrays.copyOfRange(bytes, bytes.length - info.wrappedDekLength(), bytes.length);
        DekContext context = new DekContext(topic, info.dekId());
        // The KEK id comes from the record, which anyone may have written.
        if (!kms.isKnownKek(info.kekId())) {
            metrics.unknownKeks.increment();
            // The id is attacker-chosen: escaped and cut, so it can neither forge log lines nor flood them.
            UnknownKekException refused = new UnknownKekException("value" + ValueEnvelope.onTopic(topic) + " names KEK "
                    + Printable.of(info.kekId(), Printable.UNKNOWN_KEK_ID_CHARS) + ", which is not a KEK of " + kms.name() + " this configuration knows (forged, or written"
                    + " under another key store; add it to keys.knownKekIds if it is legitimate)", info.kekId());
            audit.failed(KeyAudit.Operation.DEK_UNWRAPPED, kms.name(), info.kekId(), context, wrapped, refused);
            throw refused;
        }
        GeneralSecurityException[] failure = new GeneralSecurityException[1];
        CacheEntry entry = unwrapped.compute(cacheKey, (k, existing) -> {
            if (existing != null && existing.validAt(now)) {
                return existing;
            }
            ResilientKekProvider.Unwrapped unwrapped;
            try {
                unwrapped = kms.unwrap(info.kekId(), wrapped, context, seen);
            } catch (GeneralSecurityException e) {
                failure[0] = e;
                return existing;
            }
            try {
                // Cached for cacheTtl from when its unwrap started, not from when this retry collected it.
                return new CacheEntry(k, new SecretKeySpec(unwrapped.dek(), "AES"), unwrapped.expiresAtNanos());
            } finally {
                Arrays.fill(unwrapped.dek(), (byte) 0);
            }
        });
        if (failure[0] != null) {
            throw failure[0];
        }
        evictIfFull(now, cacheKey);
        return entry;
    }

    /** Expired entries go first; never {@code keep}, the entry just added (evicting it would only repeat its KMS call). */
    private void evictIfFull(long now, CacheKey keep) {
        if (unwrapped.size() <= settings.cacheMaxEntries()) {
            return;
        }
        unwrapped.values().removeIf(e -> !e.validAt(now));
        Iterator<CacheKey> it = unwrapped.keySet().iterator();
        while (unwrapped.size() > settings.cacheMaxEntries() && it.hasNext()) {
            if (!it.next().equals(keep)) {
                it.remove();
            }
        }
    }

    private record CacheKey(String topic, byte[] bytes) {
        @Override
        public boolean equals(Object o) {
            return o instanceof CacheKey k && topic.equals(k.topic) && Arrays.equals(bytes, k.bytes);
        }

        @Override
        public int hashCode() {
            return 31 * topic.hashCode() + Arrays.hashCode(bytes);
        }
    }

    private static final class CacheEntry {
        final CacheKey cacheKey;
        final SecretKeySpec key;
        final long expiresAtNanos;

        CacheEntry(CacheKey cacheKey, SecretKeySpec key, long expiresAtNanos) {
            this.cacheKey = cacheKey;
            this.key = key;
            this.expiresAtNanos = expiresAtNanos;
        }

        boolean validAt(long now) {
            return now - expiresAtNanos < 0;
        }

        /** Compares without allocating: this runs for every record whose DEK is the one last used on this thread. */
        boolean matches(ByteBuffer envelope, int from, int length, String topic) {
            byte[] bytes = cacheKey.bytes;
            if (bytes.length != length || !cacheKey.topic.equals(topic)) {
                return false;
            }
            if (envelope.hasArray()) {
                int offset = envelope.arrayOffset() + from;
                return Arrays.equals(envelope.array(), offset, offset + length, bytes, 0, length);
            }
            for (int i = 0; i < length; i++) {
                if (envelope.get(from + i) != bytes[i]) {
                    return false;
                }
            }
            return true;
        }
    }
}
