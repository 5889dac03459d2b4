package io.meshcrypt.filter.framing;

/** What happens to one Kafka frame, decided from its first bytes. */
public enum FrameAction {
    /** Forward byte for byte as the bytes arrive, without holding or decoding the frame. */
    PASS,
    /** Hold the frame until complete, then forward what {@link FrameHandler#rewrite} returns. */
    REWRITE
}
