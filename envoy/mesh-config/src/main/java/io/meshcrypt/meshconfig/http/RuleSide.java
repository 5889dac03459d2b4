package io.meshcrypt.meshconfig.http;

import io.meshcrypt.meshconfig.transform.BodyReplace;
import io.meshcrypt.meshconfig.transform.FieldOp;
import java.util.List;
import java.util.Objects;

/**
 * What a rule does to the request or to the response: JSON field ops first, then whole-body replacements, then
 * header changes. {@code onInvalid} decides what happens to a body the ops cannot apply to (not JSON, not UTF-8,
 * compressed, a required field missing, a field that does not decrypt).
 */
public record RuleSide(List<FieldOp> fields, List<BodyReplace> body, HeaderChanges headers, OnInvalid onInvalid) {

    public enum OnInvalid {
        /** Forward the body unchanged (header changes still apply). */
        PASS,
        /** Answer the client at once: 400 for a request, 502 for a response; the body goes no further. */
        REJECT
    }

    public static final RuleSide NONE = new RuleSide(List.of(), List.of(), HeaderChanges.NONE, OnInvalid.REJECT);

    public RuleSide {
        fields = List.copyOf(fields);
        body = List.copyOf(body);
        Objects.requireNonNull(headers, "headers");
        Objects.requireNonNull(onInvalid, "onInvalid");
    }

    /** @return true when the side needs the body */
    public boolean rewritesBody() {
        return !fields.isEmpty() || !body.isEmpty();
    }

    public boolean isEmpty() {
        return !rewritesBody() && headers.isEmpty();
    }
}
