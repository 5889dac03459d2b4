package io.meshcrypt.filter.crypto;

import java.util.concurrent.atomic.AtomicLong;
import javax.crypto.spec.SecretKeySpec;

/** A DEK for encrypting: its key and the version-2 envelope header every record under it starts with. */
public final class Dek {
    final String kekId;
    final long dekId;
    final SecretKeySpec key;
    final byte[] header;
    final long createdNanos;
    final AtomicLong uses = new AtomicLong();
    volatile boolean retired;

    Dek(String kekId, long dekId, SecretKeySpec key, byte[] header, long createdNanos) {
        this.kekId = kekId;
        this.dekId = dekId;
        this.key = key;
        this.header = header;
        this.createdNanos = createdNanos;
    }

    public String kekId() {
        return kekId;
    }

    public long dekId() {
        return dekId;
    }
}
