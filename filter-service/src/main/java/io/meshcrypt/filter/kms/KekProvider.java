package io.meshcrypt.filter.kms;

import java.security.GeneralSecurityException;
import java.util.List;

/**
 * A key-encryption-key store: a Tink keyset file, a PKCS#11 token or AWS KMS. Wraps and unwraps 32-byte DEKs; the
 * KEK itself never leaves the provider (except for the local development provider, whose keyset is a file).
 *
 * <p>Calls may block on the network; the key services wrap a provider in {@link InstrumentedKekProvider} and
 * {@link ResilientKekProvider}, which make them off the connection workers, single-flight and with backoff.
 * Implementations are thread-safe. Error messages name keys, never key material.
 */
public interface KekProvider extends AutoCloseable {

    /** Length of a DEK (AES-256). */
    int DEK_BYTES = 32;

    /** @return the provider's config name: {@code local}, {@code pkcs11} or {@code aws-kms} */
    String name();

    /** @return the id of the KEK version new DEKs are wrapped with; picks up a rotation done by another process */
    String currentKekId() throws GeneralSecurityException;

    /** Wraps {@code dek} under the current KEK, bound to {@code context}. */
    WrappedDek wrap(byte[] dek, DekContext context) throws GeneralSecurityException;

    /**
     * @throws KekRefusedException when the KEK does not exist, is disabled, or refuses the ciphertext: retrying
     *     does not help
     * @throws GeneralSecurityException on any other failure (KMS unreachable, timeouts): transient
     */
    byte[] unwrap(String kekId, byte[] wrapped, DekContext context) throws GeneralSecurityException;

    /** Creates the first KEK if there is none. @return the current KEK id afterwards */
    String create() throws GeneralSecurityException;

    /** Creates a new KEK version and makes it current; older versions keep unwrapping. @return the new KEK id */
    String rotate() throws GeneralSecurityException;

    /** @return the KEK versions this provider can name, current one marked */
    List<KekInfo> list() throws GeneralSecurityException;

    /** One KEK version as listed by {@link #list}. */
    record KekInfo(String kekId, boolean current, String state) {
    }

    @Override
    default void close() {
    }
}
