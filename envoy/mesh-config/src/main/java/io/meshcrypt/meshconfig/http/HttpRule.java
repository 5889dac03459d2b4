package io.meshcrypt.meshconfig.http;

import io.meshcrypt.meshconfig.policy.Forgotten;
import io.meshcrypt.meshconfig.policy.Identities;
import io.meshcrypt.meshconfig.policy.SubjectSource;
import io.meshcrypt.meshconfig.transform.FieldOp;
import java.util.Objects;
import java.util.stream.Stream;

/**
 * One declarative rule: which requests, and what to do to their request and response.
 *
 * @param name unique, for logs and errors
 * @param binding what encrypted fields are bound to (the envelope's "topic"); null when the rule neither encrypts
 *     nor decrypts. A field encrypted under one binding decrypts only under the same one, so an HTTP rule with
 *     binding {@code orders} and the Kafka topic {@code orders} can read each other's fields.
 * @param readers the workload identities of the sidecars whose exchanges get response fields decrypted; null: every
 *     sidecar. For any other, {@code decrypt} ops of the response are skipped and the envelopes pass as they are
 * @param subject where a request names its subject (the request body or a request header), whose own key then
 *     encrypts the fields the rule encrypts, so that forgetting the subject makes them unreadable; null: the binding's
 *     data key encrypts them. Only on rules that encrypt or decrypt fields
 * @param forgotten what a decrypted field under a forgotten subject's key becomes (set exactly beside {@code subject})
 */
public record HttpRule(String name, RouteMatch match, String binding, RuleSide request, RuleSide response,
                       Identities readers, SubjectSource subject, Forgotten forgotten) {
    /** Every sidecar's exchanges get response fields decrypted. */
    public HttpRule(String name, RouteMatch match, String binding, RuleSide request, RuleSide response) {
        this(name, match, binding, request, response, null);
    }

    /** No subject keys. */
    public HttpRule(String name, RouteMatch match, String binding, RuleSide request, RuleSide response,
                    Identities readers) {
        this(name, match, binding, request, response, readers, null, null);
    }

    /** @param identity the workload identity of the sidecar streaming the exchange, or null */
    public boolean decryptsFor(String identity) {
        return readers == null || readers.contains(identity);
    }

    public HttpRule {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(match, "match");
        Objects.requireNonNull(request, "request");
        Objects.requireNonNull(response, "response");
        boolean crypto = Stream.concat(request.fields().stream(), response.fields().stream())
                .anyMatch(op -> op instanceof FieldOp.Encrypt || op instanceof FieldOp.Decrypt);
        if (crypto && (binding == null || binding.isEmpty())) {
            throw new IllegalArgumentException("rule " + name + " encrypts or decrypts fields, so it needs a binding");
        }
        if (subject != null && !crypto) {
            throw new IllegalArgumentException("rule " + name + " names a subject but neither encrypts nor decrypts fields");
        }
        if (subject != null && subject.from() == SubjectSource.From.KEY) {
            throw new IllegalArgumentException("an HTTP request has no record key to name its subject");
        }
        if ((subject == null) != (forgotten == null)) {
            throw new IllegalArgumentException("forgotten is set exactly when a subject is");
        }
    }

    /** @return the scope of the rule's subject keys (the subject's named scope, else the binding), or null */
    public String subjectScope() {
        return subject == null ? null : subject.scopeOr(binding);
    }
}
