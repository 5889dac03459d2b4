package io.meshcrypt.filter.config;

import io.meshcrypt.meshconfig.http.HttpRule;
import io.meshcrypt.meshconfig.http.HttpRules;
import io.meshcrypt.meshconfig.mesh.Policies;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import java.util.Objects;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Puts a new policy and HTTP rules in force, whichever source they come from (the watched file, or the xDS server):
 * the Kafka policy first, then the HTTP rules, each only when it changed. A policy the running service cannot enforce
 * (it needs the record-key keyset, which only a restart opens) is refused as a whole, and the last good version of
 * both stays in force.
 */
final class PolicyApplier {

    private static final Logger log = LoggerFactory.getLogger(PolicyApplier.class);

    private final Consumer<EncryptionPolicy> applyPolicy;
    private final Consumer<HttpRules> applyHttp;
    private volatile Policies current;
    private volatile String lastError;
    private final PolicyReloads reloads;

    /**
     * @param inForce what the service started with
     * @param applyPolicy receives each new encryption policy; an IllegalArgumentException refuses the whole change
     * @param applyHttp receives each new set of HTTP rules
     */
    PolicyApplier(Policies inForce, Consumer<EncryptionPolicy> applyPolicy, Consumer<HttpRules> applyHttp) {
        this(inForce, applyPolicy, applyHttp, new PolicyReloads());
    }

    /** @param reloads counts each change put in force and each refused */
    PolicyApplier(Policies inForce, Consumer<EncryptionPolicy> applyPolicy, Consumer<HttpRules> applyHttp,
                  PolicyReloads reloads) {
        this.reloads = Objects.requireNonNull(reloads);
        this.current = Objects.requireNonNull(inForce);
        this.applyPolicy = Objects.requireNonNull(applyPolicy);
        this.applyHttp = Objects.requireNonNull(applyHttp);
    }

    /** @return null when {@code next} is in force (or already was), else why it was refused */
    synchronized String apply(Policies next) {
        Policies before = current;
        if (!next.encryption().equals(before.encryption())) {
            try {
                applyPolicy.accept(next.encryption());
            } catch (IllegalArgumentException e) {
                // valid on its own, but it needs something only a restart provides (the record-key keyset)
                return refuse(e.getMessage());
            } catch (RuntimeException e) {
                // a bug, not the policy: still refused (and answered), never left half-known
                log.error("applying the encryption policy {} failed", next.encryption(), e);
                return refuse("the encryption policy could not be applied: " + e);
            }
            log.info("encryption policy reloaded: {} (was {})", next.encryption(), before.encryption());
        }
        if (!next.http().equals(before.http())) {
            try {
                applyHttp.accept(next.http());
            } catch (RuntimeException e) {
                // the encryption policy above is in force already: say so, and that the HTTP rules stayed
                log.error("applying the HTTP rules {} failed", names(next.http()), e);
                current = new Policies(next.encryption(), before.http());
                return refuse("the HTTP rules could not be applied: " + e);
            }
            log.info("HTTP rules reloaded: {} (was {})", names(next.http()), names(before.http()));
        }
        if (!next.equals(before)) {
            reloads.applied();
        }
        current = next;
        lastError = null;
        return null;
    }

    /** Logs a change that was not applied (invalid, or refused by {@link #apply}); what is in force stays. */
    String refuse(String error) {
        reloads.refused();
        lastError = error;
        log.error("policy and HTTP rules NOT reloaded, the last good version stays in force ({}, HTTP rules {}): {}",
                current.encryption(), names(current.http()), error);
        return error;
    }

    Policies current() {
        return current;
    }

    /** The error of the last change, or null when it applied. */
    String lastError() {
        return lastError;
    }

    private static String names(HttpRules rules) {
        return rules.rules().stream().map(HttpRule::name).toList().toString();
    }
}
