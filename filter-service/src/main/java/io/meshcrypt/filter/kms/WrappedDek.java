package io.meshcrypt.filter.kms;

/**
 * A DEK encrypted under a KEK.
 *
 * @param kekId the provider's id of the KEK version that wrapped it (what unwrapping needs); at most 255 UTF-8 bytes
 * @param bytes the provider's ciphertext of the DEK
 */
public record WrappedDek(String kekId, byte[] bytes) {
}
