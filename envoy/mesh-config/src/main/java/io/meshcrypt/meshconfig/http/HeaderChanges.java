package io.meshcrypt.meshconfig.http;

import java.util.List;
import java.util.Map;

/**
 * Header changes of one side of a rule.
 *
 * @param set lower-case header name to value; replaces any existing values
 * @param remove lower-case header names to remove
 */
public record HeaderChanges(Map<String, String> set, List<String> remove) {
    public static final HeaderChanges NONE = new HeaderChanges(Map.of(), List.of());

    public HeaderChanges {
        set = Map.copyOf(set);
        remove = List.copyOf(remove);
    }

    public boolean isEmpty() {
        return set.isEmpty() && remove.isEmpty();
    }
}
