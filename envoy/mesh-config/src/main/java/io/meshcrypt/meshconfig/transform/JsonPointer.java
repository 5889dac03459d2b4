package io.meshcrypt.meshconfig.transform;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * An RFC 6901 JSON Pointer ({@code /card/number}, {@code /items/0}, {@code ""} for the whole document), parsed
 * and validated once. Immutable.
 *
 * <p>Resolution never guesses: a token addresses an object member by name, or an array element by a decimal index
 * without leading zeros. {@code -} (the element after the last) is only meaningful for {@link #set}.
 */
public final class JsonPointer {

    private static final JsonPointer ROOT = new JsonPointer("", List.of());

    private final String text;
    private final List<String> tokens;

    private JsonPointer(String text, List<String> tokens) {
        this.text = text;
        this.tokens = tokens;
    }

    /**
     * @throws IllegalArgumentException when {@code text} is not a JSON Pointer (it must be empty or start with
     *     {@code /}; {@code ~} must be followed by {@code 0} or {@code 1})
     */
    public static JsonPointer parse(String text) {
        Objects.requireNonNull(text, "text");
        if (text.isEmpty()) {
            return ROOT;
        }
        if (text.charAt(0) != '/') {
            throw new IllegalArgumentException("a JSON Pointer must be empty or start with '/' (got \"" + text + "\")");
        }
        List<String> tokens = new ArrayList<>();
        StringBuilder token = new StringBuilder();
        for (int i = 1; i <= text.length(); i++) {
            if (i == text.length() || text.charAt(i) == '/') {
                tokens.add(token.toString());
                token.setLength(0);
                continue;
            }
            char c = text.charAt(i);
            if (c == '~') {
                char next = i + 1 < text.length() ? text.charAt(i + 1) : '\0';
                if (next != '0' && next != '1') {
                    throw new IllegalArgumentException("'~' in a JSON Pointer must be followed by 0 or 1 (got \"" + text + "\")");
                }
                token.append(next == '0' ? '~' : '/');
                i++;
            } else {
                token.append(c);
            }
        }
        return new JsonPointer(text, List.copyOf(tokens));
    }

    /** @return true for {@code ""}, the whole document */
    public boolean isRoot() {
        return tokens.isEmpty();
    }

    /** @return the unescaped reference tokens */
    public List<String> tokens() {
        return tokens;
    }

    /** @return the node addressed in {@code root}, or null when any step of the path does not exist */
    public JsonNode find(JsonNode root) {
        JsonNode node = root;
        for (String token : tokens) {
            node = child(node, token);
            if (node == null) {
                return null;
            }
        }
        return node;
    }

    /**
     * Replaces the node addressed in {@code root}, which must exist (see {@link #find}).
     *
     * @return the new document root: {@code value} itself for the root pointer, else {@code root}
     */
    public JsonNode replace(JsonNode root, JsonNode value) {
        if (isRoot()) {
            return value;
        }
        JsonNode parent = parentIn(root);
        String last = tokens.getLast();
        if (parent instanceof ObjectNode object && object.has(last)) {
            object.set(last, value);
            return root;
        }
        if (parent instanceof ArrayNode array) {
            int index = index(last, array.size() - 1);
            if (index >= 0) {
                array.set(index, value);
                return root;
            }
        }
        throw new IllegalStateException("JSON Pointer " + this + " does not exist in the document");
    }

    /**
     * Sets the addressed node, creating an object member or appending to an array ({@code -} or index = size) when
     * it does not exist yet. The parent container must exist.
     *
     * @return the new document root
     * @throws PointerException when the parent is missing or is not a container the last token can address
     */
    public JsonNode set(JsonNode root, JsonNode value) throws PointerException {
        if (isRoot()) {
            return value;
        }
        JsonNode parent = parentIn(root);
        String last = tokens.getLast();
        switch (parent) {
            case ObjectNode object -> object.set(last, value);
            case ArrayNode array when last.equals("-") -> array.add(value);
            case ArrayNode array -> {
                int index = index(last, array.size());
                if (index < 0) {
                    throw new PointerException("JSON Pointer " + this + ": no array element " + last
                            + " (the array has " + array.size() + ")");
                }
                if (index == array.size()) {
                    array.add(value);
                } else {
                    array.set(index, value);
                }
            }
            case null -> throw new PointerException("JSON Pointer " + this + ": the parent does not exist");
            default -> throw new PointerException("JSON Pointer " + this + ": the parent is a "
                    + parent.getNodeType().name().toLowerCase(java.util.Locale.ROOT) + ", not an object or array");
        }
        return root;
    }

    private JsonNode parentIn(JsonNode root) {
        JsonNode node = root;
        for (int i = 0; i < tokens.size() - 1 && node != null; i++) {
            node = child(node, tokens.get(i));
        }
        return node;
    }

    private static JsonNode child(JsonNode node, String token) {
        if (node instanceof ObjectNode object) {
            return object.get(token);
        }
        if (node instanceof ArrayNode array) {
            int index = index(token, array.size() - 1);
            return index < 0 ? null : array.get(index);
        }
        return null;
    }

    /** @return the array index {@code token} names when it is a canonical decimal in 0..max, else -1 */
    private static int index(String token, int max) {
        int length = token.length();
        if (length == 0 || length > 10 || (length > 1 && token.charAt(0) == '0')) {
            return -1;
        }
        long value = 0;
        for (int i = 0; i < length; i++) {
            char c = token.charAt(i);
            if (c < '0' || c > '9') {
                return -1;
            }
            value = value * 10 + (c - '0');
        }
        return value <= max ? (int) value : -1;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof JsonPointer other && text.equals(other.text);
    }

    @Override
    public int hashCode() {
        return text.hashCode();
    }

    /** @return the pointer as written */
    @Override
    public String toString() {
        return text;
    }
}
