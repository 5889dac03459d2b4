package io.meshcrypt.meshconfig.policy;

/**
 * What a consumer reading through the mesh gets in place of what a forgotten subject's key encrypted
 * ({@code forgotten:} of a policy entry with {@code subject:}).
 *
 * @param placeholder null: a null value (whole-value rules) or a JSON null (each encrypted field); else this text as the
 *     value's UTF-8 bytes (whole-value rules) or as a JSON string (each encrypted field)
 */
public record Forgotten(String placeholder) {
    /** The default: nulls. A whole value that reads as null looks like a tombstone to a consumer of a compacted topic,
     *  which drops the key: for an erased subject that is the intended end state (docs/security.md). */
    public static final Forgotten NULL = new Forgotten(null);

    @Override
    public String toString() {
        return placeholder == null ? "null" : "placeholder " + placeholder;
    }
}
