package io.meshcrypt.filter.config;

import java.util.List;
import java.util.Objects;

/**
 * The {@code admin:} section of filter.yaml: who may call the admin API ({@code meshcrypt.admin.v1.SubjectAdmin}) on
 * the gRPC port. Without the section nobody may: every call is refused (PERMISSION_DENIED, with an audit line).
 *
 * <pre>
 * admin:
 *   identities:                               # exact SPIFFE ids of the callers' client certificates (no globs)
 *     - spiffe://meshcrypt.local/admin
 *   plaintextLoopback: false                  # only without tls: let every local process call it (dev mesh)
 * </pre>
 *
 * @param identities callers allowed, matched exactly against the identity the gRPC server authenticated (its client
 *     certificate, or with {@code tls: mesh-sidecar} the forwarded one)
 * @param plaintextLoopback without TLS there is no caller identity: then the API is off unless this is true, and with
 *     it any process that can reach the loopback port may call it (as it may already decrypt through ext_proc)
 */
public record AdminConfig(List<String> identities, boolean plaintextLoopback) {
    /** Nobody may call the admin API. */
    public static final AdminConfig NOBODY = new AdminConfig(List.of(), false);

    public AdminConfig {
        identities = List.copyOf(Objects.requireNonNull(identities, "identities"));
    }
}
