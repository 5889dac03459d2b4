package io.meshcrypt.filter.proxy;

import java.util.concurrent.ConcurrentHashMap;
import org.apache.kafka.common.Uuid;

/**
 * Topic id to name, learnt from every Metadata response on any connection. Produce v13+, Fetch v13+ and
 * ShareFetch name topics by id only, while policy and the ciphertext's associated data use names.
 * Shared by all connections; ids are never reused, so entries never go stale in a harmful way.
 */
public final class TopicNames {
    private final ConcurrentHashMap<Uuid, String> names = new ConcurrentHashMap<>();

    public void learn(Uuid id, String name) {
        if (id != null && !Uuid.ZERO_UUID.equals(id) && name != null && !name.isEmpty()) {
            names.put(id, name);
        }
    }

    /** The topic's name, or null when no Metadata response has shown this id yet. */
    public String nameOf(Uuid id) {
        return names.get(id);
    }

    public int size() {
        return names.size();
    }
}
