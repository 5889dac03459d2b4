package io.meshcrypt.filter.crypto;

/**
 * A version-2 envelope names a KEK id that is neither the provider's current KEK, nor one the provider lists, nor one
 * the configuration names: a forged or foreign header. Refused without any KMS call, so a header an attacker wrote
 * never makes the filter ask the KMS about a key the attacker chose. Permanent (an {@link EnvelopeException}): Fetch
 * answers CORRUPT_MESSAGE, not a retriable error.
 */
public final class UnknownKekException extends EnvelopeException {
    private final String kekId;

    public UnknownKekException(String message, String kekId) {
        super(message);
        this.kekId = kekId;
    }

    /** @return the KEK id the envelope names (at most 255 UTF-8 bytes, validated by the envelope parser) */
    public String kekId() {
        return kekId;
    }
}
