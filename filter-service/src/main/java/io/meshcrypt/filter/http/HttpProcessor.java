package io.meshcrypt.filter.http;

import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.transform.JsonTransformer;
import java.util.Objects;

/** What all HTTP exchanges share: the rules and the transform engine. Thread-safe. */
public final class HttpProcessor {
    final HttpRules rules;
    final JsonTransformer transformer;

    public HttpProcessor(HttpRules rules, ValueCipher cipher) {
        this.rules = Objects.requireNonNull(rules, "rules");
        this.transformer = new JsonTransformer(cipher);
    }

    /** @return the state of one HTTP request/response exchange (one ext_proc stream) */
    public HttpExchange open() {
        return new HttpExchange(this);
    }
}
