package io.meshcrypt.filter.subjects;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.Arrays;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * The two keys of one scope (a policy entry's topic pattern), derived from its 32-byte scope secret (which the KMS
 * wraps, once per scope): the ref key turns a subject id into its 16-byte subject ref (HMAC-SHA256, truncated), so the
 * key topic and the envelopes never show raw ids; the wrapping key wraps each subject's 32-byte key (AES-256-GCM,
 * associated data {@code "meshcrypt-sk-v1" 0x00 scope 0x00 ref keyId}). Local operations only: no KMS call per subject.
 * Thread-safe.
 */
public final class ScopeKeys {
    private static final byte[] WRAP_LABEL = "meshcrypt-sk-v1".getBytes(StandardCharsets.US_ASCII);
    private static final SecureRandom RANDOM = new SecureRandom();

    private final String scope;
    private final byte[] scopeBytes;
    private final SecretKeySpec refKey;
    private final SecretKeySpec wrapKey;
    /** Keyed once per thread (a Mac's init recomputes its pads): the per-record ref is update and doFinal only. */
    private final ThreadLocal<Mac> refMac = ThreadLocal.withInitial(this::newRefMac);

    /** @param secret the scope's 32-byte secret (not kept) */
    public ScopeKeys(String scope, byte[] secret) {
        if (secret.length != 32) {
            throw new IllegalArgumentException("a scope secret is 32 bytes");
        }
        this.scope = scope;
        this.scopeBytes = scope.getBytes(StandardCharsets.UTF_8);
        SecretKeySpec master = new SecretKeySpec(secret, "HmacSHA256");
        this.refKey = new SecretKeySpec(hmac(master, "meshcrypt-subject-ref-v1"), "HmacSHA256");
        this.wrapKey = new SecretKeySpec(hmac(master, "meshcrypt-subject-wrap-v1"), "AES");
    }

    public String scope() {
        return scope;
    }

    /** @return the subject ref of the subject id bytes {@code id[offset, offset + length)} */
    public byte[] ref(byte[] id, int offset, int length) {
        Mac mac = refMac.get();
        mac.update(id, offset, length);
        return Arrays.copyOf(mac.doFinal(), SubjectKeyRecords.REF_LENGTH);
    }

    /**
     * The per-record form of {@link #ref(byte[], int, int)}: the id read in place, the ref not copied out.
     *
     * @param id the subject id bytes, position..limit (read in place, not moved)
     * @param out receives the full HMAC, {@value #MAC_LENGTH} bytes from 0; the ref is its first
     *     {@link SubjectKeyRecords#REF_LENGTH}
     */
    void ref(ByteBuffer id, byte[] out) {
        Mac mac = refMac.get();
        int position = id.position();
        mac.update(id); // reads the array in place, or copies a read-only view through the digest's own scratch
        id.position(position);
        try {
            mac.doFinal(out, 0);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    static final int MAC_LENGTH = 32;

    private Mac newRefMac() {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(refKey);
            return mac;
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 unavailable", e);
        }
    }

    public byte[] ref(String subject) {
        byte[] id = subject.getBytes(StandardCharsets.UTF_8);
        return ref(id, 0, id.length);
    }

    /** @return nonce || ciphertext || tag of {@code subjectKey} bound to this scope, the ref and the key id */
    public byte[] wrap(byte[] subjectKey, byte[] ref, byte[] keyId) throws GeneralSecurityException {
        byte[] out = new byte[SubjectKeyRecords.WRAPPED_KEY_LENGTH];
        RANDOM.nextBytes(out);
        Cipher cipher = Cipher.getInstance("AES/GCM/NoPadding");
        cipher.init(Cipher.ENCRYPT_MODE, wrapKey, new GCMParameterSpec(128, out, 0, SubjectKeyRecords.NONCE_LENGTH));
        cipher.updateAAD(aad(ref, keyId));
        cipher.doFinal(subjectKey, 0, subjectKey.length, out, SubjectKeyRecords.NONCE_LENGTH);
        return out;
    }

    /** @throws GeneralSecurityException when the wrapped key was not written for this scope, ref and key id */
    public byte[] unwrap(byte[] wrapped, byte[] ref, byte[] keyId) throws GeneralSecurityException {
        Cipher cipher = Cipher.getInstance("AES/GCM/NoPadding");
        cipher.init(Cipher.DECRYPT_MODE, wrapKey, new GCMParameterSpec(128, wrapped, 0, SubjectKeyRecords.NONCE_LENGTH));
        cipher.updateAAD(aad(ref, keyId));
        return cipher.doFinal(wrapped, SubjectKeyRecords.NONCE_LENGTH, wrapped.length - SubjectKeyRecords.NONCE_LENGTH);
    }

    private byte[] aad(byte[] ref, byte[] keyId) {
        return ByteBuffer.allocate(WRAP_LABEL.length + 1 + scopeBytes.length + 1 + ref.length + keyId.length)
                .put(WRAP_LABEL).put((byte) 0).put(scopeBytes).put((byte) 0).put(ref).put(keyId).array();
    }

    private static byte[] hmac(SecretKeySpec key, String label) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(key);
            return mac.doFinal(label.getBytes(StandardCharsets.US_ASCII));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }
}
