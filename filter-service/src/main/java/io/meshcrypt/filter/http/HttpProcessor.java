package io.meshcrypt.filter.http;

import io.meshcrypt.filter.crypto.SubjectValueCipher;
import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.kms.KeyNotReadyException;
import io.meshcrypt.filter.transform.JsonTransformer;
import io.meshcrypt.meshconfig.http.HttpRules;
import java.nio.ByteBuffer;
import java.security.GeneralSecurityException;
import java.util.Objects;

/**
 * What all HTTP exchanges share: the rules and the transform engine, whose subject keys (rules naming a
 * {@code subject:}) are the filter-service's one subject-key store, the Kafka path's. Thread-safe.
 */
public final class HttpProcessor {
    /** Replaced whole on reload; an exchange reads it once, when its request headers arrive. */
    private volatile HttpRules rules;
    final JsonTransformer transformer;

    public HttpProcessor(HttpRules rules, ValueCipher cipher) {
        this(rules, cipher, null);
    }

    /**
     * @param subjects the subject keys the Kafka path uses too; null without a {@code subjectKeys:} section (then
     *     bodies of rules naming a subject are refused)
     */
    public HttpProcessor(HttpRules rules, ValueCipher cipher, SubjectValueCipher subjects) {
        this.rules = Objects.requireNonNull(rules, "rules");
        this.transformer = new JsonTransformer(parking(cipher), subjects);
    }

    /** A key not ready yet becomes a {@link KeyWait}: the stream answers the message again later, never waits. */
    private static ValueCipher parking(ValueCipher cipher) {
        return new ValueCipher() {
            @Override
            public ByteBuffer encrypt(String topic, ByteBuffer plaintext) throws GeneralSecurityException {
                try {
                    return cipher.encrypt(topic, plaintext);
                } catch (KeyNotReadyException e) {
                    throw new KeyWait(e.ready());
                }
            }

            @Override
            public ByteBuffer decrypt(String topic, ByteBuffer envelope) throws GeneralSecurityException {
                try {
                    return cipher.decrypt(topic, envelope);
                } catch (KeyNotReadyException e) {
                    throw new KeyWait(e.ready());
                }
            }
        };
    }

    /** The rules in force. */
    public HttpRules rules() {
        return rules;
    }

    /** Later exchanges use {@code rules}; exchanges already past their request headers keep the rule they chose. */
    public void rules(HttpRules rules) {
        this.rules = Objects.requireNonNull(rules, "rules");
    }

    /** @return the state of one HTTP request/response exchange (one ext_proc stream) without an identity */
    public HttpExchange open() {
        return open(null);
    }

    /**
     * @param identity the workload identity the filter-service authenticated on the stream, or null
     * @return the state of one HTTP request/response exchange (one ext_proc stream)
     */
    public HttpExchange open(String identity) {
        return new HttpExchange(this, identity);
    }
}
