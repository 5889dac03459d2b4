package io.meshcrypt.meshconfig.policy;

/** What the policy says about the values of one topic. */
public enum TopicDecision {
    /** Values are encrypted on produce and must decrypt on fetch. */
    ENCRYPT,
    /** Values pass unchanged (topic matched no pattern, unmatched: passthrough). */
    PASSTHROUGH,
    /** Producing to this topic is refused (topic matched no pattern, unmatched: reject). */
    REJECT
}
