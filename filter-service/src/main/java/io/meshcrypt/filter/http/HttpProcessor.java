package io.meshcrypt.filter.http;

import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.transform.JsonTransformer;
import java.util.Objects;

/** What all HTTP exchanges share: the rules and the transform engine. Thread-safe. */
public final class HttpProcessor {
    /** Replaced whole on reload; an exchange reads it once, when its request headers arrive. */
    private volatile HttpRules rules;
    final JsonTransformer transformer;

    public HttpProcessor(HttpRules rules, ValueCipher cipher) {
        this.rules = Objects.requireNonNull(rules, "rules");
        this.transformer = new JsonTransformer(cipher);
    }

    /** The rules in force. */
    public HttpRules rules() {
        return rules;
    }

    /** Later exchanges use {@code rules}; exchanges already past their request headers keep the rule they chose. */
    public void rules(HttpRules rules) {
        this.rules = Objects.requireNonNull(rules, "rules");
    }

    /** @return the state of one HTTP request/response exchange (one ext_proc stream) */
    public HttpExchange open() {
        return new HttpExchange(this);
    }
}
