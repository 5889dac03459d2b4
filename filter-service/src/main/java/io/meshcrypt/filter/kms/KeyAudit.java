package io.meshcrypt.filter.kms;

/**
 * Where the key services report each key operation for the audit trail: ids, topics and wrapped DEKs, never a DEK or
 * a KEK. Implementations never block and never throw (the caller is a KMS pool thread, or a connection's worker for
 * an envelope refused before any KMS call); they bound what a flood of failures writes.
 */
public interface KeyAudit {

    /** What happened to which key. */
    enum Operation {
        /** A new DEK for a topic, wrapped and ready to encrypt. */
        DEK_CREATED("dek.created"),
        /** The KMS wrapped a DEK under a KEK. */
        DEK_WRAPPED("dek.wrapped"),
        /** The KMS unwrapped a DEK (a cache miss), or refused to; or an envelope was refused before asking it. */
        DEK_UNWRAPPED("dek.unwrapped"),
        /** A first KEK was created ({@code keys create}). */
        KEK_CREATED("kek.created"),
        /** A new KEK version was made current ({@code keys rotate}). */
        KEK_ROTATED("kek.rotated"),
        /** The KEK new DEKs are wrapped with, first seen or changed (rotated by this or another process). */
        KEK_CURRENT("kek.current"),
        /**
         * A subject's keys were forgotten ({@code subjects forget}): the line's topic is the scope (the policy entry's
         * topic pattern), its dek the first 8 bytes of the subject ref (HMAC of the subject id), never the id itself.
         */
        SUBJECT_FORGOTTEN("subject.forgotten");

        private final String event;

        Operation(String event) {
            this.event = event;
        }

        /** @return the {@code event} field of its audit line */
        public String event() {
            return event;
        }
    }

    /** Reports nothing. */
    KeyAudit NONE = new KeyAudit() {
        @Override
        public void succeeded(Operation operation, String provider, String kekId, DekContext dek, byte[] wrappedDek) {
        }

        @Override
        public void failed(Operation operation, String provider, String kekId, DekContext dek, byte[] wrappedDek,
                           Throwable error) {
        }
    };

    /**
     * @param provider the KEK provider's config name
     * @param kekId the KEK involved, or null
     * @param dek the DEK's topic and id, or null for KEK operations
     * @param wrappedDek the wrapped DEK (identified in the trail by a fingerprint), or null
     */
    void succeeded(Operation operation, String provider, String kekId, DekContext dek, byte[] wrappedDek);

    /** As {@link #succeeded}, for an operation that failed with {@code error} (named by its class only). */
    void failed(Operation operation, String provider, String kekId, DekContext dek, byte[] wrappedDek, Throwable error);
}
