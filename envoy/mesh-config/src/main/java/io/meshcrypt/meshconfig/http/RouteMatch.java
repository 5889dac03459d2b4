package io.meshcrypt.meshconfig.http;

import io.meshcrypt.meshconfig.transform.Patterns;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Which requests a rule applies to. Every condition given must hold; an absent condition always holds.
 *
 * @param methods upper-case methods, empty for any
 * @param pathPrefix the path (without query) starts with it, or null
 * @param pathRegex the whole path (without query) matches it, or null
 * @param contentTypes media types ({@code application/json}, {@code application/*}, {@code *}), compared without
 *     parameters and case-insensitively; empty for any (a request without content-type matches only an empty list)
 * @param body the request body (as UTF-8 text) contains a match, or null; decided once the body has arrived
 */
public record RouteMatch(Set<String> methods, String pathPrefix, Pattern pathRegex, List<String> contentTypes,
                         Pattern body) {

    public static final RouteMatch ANY = new RouteMatch(Set.of(), null, null, List.of(), null);

    public RouteMatch {
        methods = Set.copyOf(methods);
        contentTypes = contentTypes.stream().map(t -> t.toLowerCase(Locale.ROOT)).toList();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RouteMatch other && methods.equals(other.methods) && Objects.equals(pathPrefix, other.pathPrefix)
                && Patterns.equal(pathRegex, other.pathRegex) && contentTypes.equals(other.contentTypes)
                && Patterns.equal(body, other.body);
    }

    @Override
    public int hashCode() {
        return Objects.hash(methods, pathPrefix, Patterns.hash(pathRegex), contentTypes, Patterns.hash(body));
    }

    /** The conditions known once the request headers have arrived. */
    boolean matchesHeaders(String method, String path, String contentType) {
        if (!methods.isEmpty() && !methods.contains(method)) {
            return false;
        }
        if (pathPrefix != null && !path.startsWith(pathPrefix)) {
            return false;
        }
        if (pathRegex != null && !pathRegex.matcher(path).matches()) {
            return false;
        }
        return contentTypes.isEmpty() || contentType != null && contentTypes.stream().anyMatch(t -> mediaTypeMatches(t, contentType));
    }

    /** @param text the request body, or null when it is not UTF-8 (then only rules without a body pattern match) */
    public boolean matchesBody(String text) {
        return body == null || text != null && body.matcher(text).find();
    }

    static boolean mediaTypeMatches(String wanted, String contentType) {
        int semicolon = contentType.indexOf(';');
        String type = (semicolon < 0 ? contentType : contentType.substring(0, semicolon)).strip().toLowerCase(Locale.ROOT);
        if (wanted.equals("*") || wanted.equals("*/*") || wanted.equals(type)) {
            return true;
        }
        return wanted.endsWith("/*") && type.startsWith(wanted.substring(0, wanted.length() - 1));
    }
}
