package io.meshcrypt.meshconfig.http;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/** The HTTP rules of the filter config, in order: for each request the first rule that matches applies. */
public record HttpRules(List<HttpRule> rules) {

    public static final HttpRules NONE = new HttpRules(List.of());

    public HttpRules {
        rules = List.copyOf(rules);
        Set<String> names = new HashSet<>();
        for (HttpRule rule : rules) {
            if (!names.add(rule.name())) {
                throw new IllegalArgumentException("duplicate rule name " + rule.name());
            }
        }
    }

    /** Rules whose header conditions hold, in order; the body condition is decided later. */
    public List<HttpRule> candidates(String method, String path, String contentType) {
        List<HttpRule> out = new ArrayList<>();
        for (HttpRule rule : rules) {
            if (rule.match().matchesHeaders(method, path, contentType)) {
                out.add(rule);
                if (rule.match().body() == null) {
                    // It matches whatever the body: later rules can never be chosen.
                    break;
                }
            }
        }
        return out;
    }
}
