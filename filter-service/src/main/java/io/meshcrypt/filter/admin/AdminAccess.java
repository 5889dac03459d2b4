package io.meshcrypt.filter.admin;

import io.meshcrypt.filter.config.AdminConfig;
import java.util.Objects;
import java.util.Set;

/**
 * Who may call the admin API: with mutual TLS (or a mesh sidecar's forwarded certificate) exactly the identities of
 * {@code admin.identities}; on a plaintext loopback port, which authenticates nobody, everyone when
 * {@code admin.plaintextLoopback} is set, else nobody.
 *
 * @param authenticated whether the gRPC server establishes caller identities (TLS or forwarded certificates)
 */
public record AdminAccess(Set<String> identities, boolean plaintextLoopback, boolean authenticated) {

    public AdminAccess {
        identities = Set.copyOf(Objects.requireNonNull(identities, "identities"));
    }

    public static AdminAccess of(AdminConfig config, boolean authenticated) {
        return new AdminAccess(Set.copyOf(config.identities()), config.plaintextLoopback(), authenticated);
    }

    /** @param caller the identity the server authenticated, or null */
    public boolean allows(String caller) {
        if (!authenticated) {
            return plaintextLoopback;
        }
        return caller != null && identities.contains(caller);
    }

    /** Why {@code caller} is refused, for its error and the audit line. */
    String refusal(String caller) {
        if (!authenticated) {
            return "the admin API is off on a plaintext port (admin.plaintextLoopback is not set)";
        }
        return caller == null ? "the call carries no workload identity" : "the caller is not in admin.identities";
    }

    /** For the start-up log line. */
    String describe() {
        if (!authenticated) {
            return plaintextLoopback ? "any local process (plaintext loopback)" : "nobody (plaintext, admin.plaintextLoopback unset)";
        }
        return identities.isEmpty() ? "nobody (no admin: section)" : identities.size() + " identity(ies) of admin.identities";
    }
}
