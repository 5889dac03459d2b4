package io.meshcrypt.filter.observability;

import io.meshcrypt.filter.crypto.DekManager;
import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.crypto.ValueCipherV2;

/**
 * Whether the filter-service can do its job: its keys loaded and a policy in force (both before {@link #serving}),
 * and the KMS answering or data keys cached. Read by {@code /readyz} and the gRPC health service.
 */
public final class Readiness {
    private final DekManager deks;
    private volatile boolean serving;

    /** @param deks the data keys of envelope version 2, or null with a local keyset only (no KMS to reach) */
    Readiness(DekManager deks) {
        this.deks = deks;
    }

    /** For the data keys {@code cipher} uses, if any. */
    public static Readiness of(ValueCipher cipher) {
        return new Readiness(cipher instanceof ValueCipherV2 v2 ? v2.deks() : null);
    }

    /** The keys are loaded and the policy in force: called once the gRPC server listens. */
    public void serving() {
        serving = true;
    }

    /** @return null when ready, else one line saying why not */
    public String notReadyReason() {
        if (!serving) {
            return "starting: keys and policy not loaded yet";
        }
        if (deks != null && !deks.kmsReachable() && deks.cachedDecryptionKeys() == 0 && deks.encryptionTopics() == 0) {
            return "KMS " + deks.provider().name() + " unreachable (" + deks.kmsConsecutiveFailures()
                    + " failed call(s) in a row) and no data keys cached";
        }
        return null;
    }

    public boolean ready() {
        return notReadyReason() == null;
    }
}
