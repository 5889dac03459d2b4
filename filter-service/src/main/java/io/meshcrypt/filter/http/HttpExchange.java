package io.meshcrypt.filter.http;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.config.core.v3.HeaderMap;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.config.core.v3.HeaderValueOption;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.HeaderSendMode;
import io.envoyproxy.envoy.service.ext_proc.v3.BodyMutation;
import io.envoyproxy.envoy.service.ext_proc.v3.BodyResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.CommonResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.HeaderMutation;
import io.envoyproxy.envoy.service.ext_proc.v3.HeadersResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpBody;
import io.envoyproxy.envoy.service.ext_proc.v3.HttpHeaders;
import io.envoyproxy.envoy.service.ext_proc.v3.ImmediateResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingRequest;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.TrailersResponse;
import io.envoyproxy.envoy.type.v3.HttpStatus;
import io.envoyproxy.envoy.type.v3.StatusCode;
import io.meshcrypt.filter.kms.KeyNotReadyException;
import io.meshcrypt.filter.transform.FieldSubject;
import io.meshcrypt.filter.transform.JsonTransformer;
import io.meshcrypt.filter.transform.TransformException;
import io.meshcrypt.filter.transport.WarningRateLimit;
import io.meshcrypt.meshconfig.http.HeaderChanges;
import io.meshcrypt.meshconfig.http.HttpRule;
import io.meshcrypt.meshconfig.transform.FieldOp;
import io.meshcrypt.meshconfig.http.RuleSide;
import io.meshcrypt.meshconfig.http.RuleSide.OnInvalid;
import io.meshcrypt.meshconfig.transform.BodyReplace;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One HTTP request and its response, as Envoy's HTTP ext_proc filter presents them on one gRPC stream: request
 * headers, request body, response headers, response body, each answered before the next arrives. Not thread-safe:
 * one stream, one thread.
 *
 * <p>Bodies must come BUFFERED (the whole body in one message), which is also what lets a body response change
 * headers Envoy still holds: the rule's header changes and the new {@code content-length} travel with the new body.
 * The rule is chosen when the request headers arrive (method, path, content type); a rule with a body pattern is
 * confirmed or passed over once the request body is there. When no rule can apply, the answer to the request headers
 * asks Envoy (mode_override, honoured with {@code allow_mode_override}) not to send anything else.
 */
public final class HttpExchange {

    private static final Logger log = LoggerFactory.getLogger(HttpExchange.class);
    /** A client can send body after body a rule rejects: their warnings are rate-limited, process wide. */
    private static final WarningRateLimit REJECTIONS = WarningRateLimit.perTenSeconds("rejected body", 20);

    /** Answer Envoy when nothing about the exchange needs meshcrypt: no bodies, no response. */
    private static final ProcessingMode SKIP_REST = mode(false, false);

    private final HttpProcessor processor;

    private List<HttpRule> candidates;
    private HttpRule rule;
    private boolean requestBodySeen;
    private boolean responseBodySeen;
    private String requestEncoding;
    /** The request's headers (first values), for a rule whose subject is in a request header. */
    private Map<String, String> requestHeaders = Map.of();
    private String responseEncoding;
    private BodySendMode requestBodyMode = BodySendMode.BUFFERED;
    private BodySendMode responseBodyMode = BodySendMode.BUFFERED;
    private String target = "?";
    /** The workload identity of the sidecar streaming this exchange, or null: matched against a rule's readers. */
    private final String identity;

    HttpExchange(HttpProcessor processor, String identity) {
        this.processor = processor;
        this.identity = identity;
    }

    /**
     * @return the answer to {@code request}; an {@link ImmediateResponse} ends the exchange (the rest of the stream
     *     must be ignored)
     */
    public ProcessingResponse handle(ProcessingRequest request) {
        boolean requestBodyWasSeen = requestBodySeen;
        boolean responseBodyWasSeen = responseBodySeen;
        HttpRule ruleBefore = rule;
        try {
            return answer(request);
        } catch (KeyWait wait) {
            // Nothing was answered: the same message comes again once the key is ready, to the same state.
            requestBodySeen = requestBodyWasSeen;
            responseBodySeen = responseBodyWasSeen;
            rule = ruleBefore;
            throw wait;
        }
    }

    private ProcessingResponse answer(ProcessingRequest request) {
        if (request.hasProtocolConfig()) {
            requestBodyMode = request.getProtocolConfig().getRequestBodyMode();
            responseBodyMode = request.getProtocolConfig().getResponseBodyMode();
        }
        return switch (request.getRequestCase()) {
            case REQUEST_HEADERS -> onRequestHeaders(request.getRequestHeaders());
            case REQUEST_BODY -> onRequestBody(request.getRequestBody());
            case RESPONSE_HEADERS -> onResponseHeaders(request.getResponseHeaders());
            case RESPONSE_BODY -> onResponseBody(request.getResponseBody());
            case REQUEST_TRAILERS -> ProcessingResponse.newBuilder().setRequestTrailers(TrailersResponse.getDefaultInstance()).build();
            case RESPONSE_TRAILERS -> ProcessingResponse.newBuilder().setResponseTrailers(TrailersResponse.getDefaultInstance()).build();
            case REQUEST_NOT_SET -> fail(StatusCode.InternalServerError, "ext_proc request without content");
        };
    }

    /** The answer when handling failed unexpectedly: the request goes no further. */
    public static ProcessingResponse internalError() {
        return immediate(StatusCode.InternalServerError, "meshcrypt: internal error");
    }

    private ProcessingResponse onRequestHeaders(HttpHeaders message) {
        Map<String, String> headers = Headers.firstValues(message.getHeaders());
        String method = headers.getOrDefault(":method", "");
        String path = headers.getOrDefault(":path", "");
        int query = path.indexOf('?');
        String pathOnly = query < 0 ? path : path.substring(0, query);
        target = logTarget(method, pathOnly);
        candidates = processor.rules().candidates(method, pathOnly, headers.get("content-type"));
        requestEncoding = headers.get("content-encoding");
        requestHeaders = headers;
        HeadersResponse.Builder answer = HeadersResponse.newBuilder();
        ProcessingResponse.Builder response = ProcessingResponse.newBuilder();
        if (candidates.isEmpty()) {
            return response.setRequestHeaders(answer).setModeOverride(SKIP_REST).build();
        }
        if (message.getEndOfStream()) {
            // No body will come: choose as for an empty body; only header changes can apply.
            rule = choose("");
            if (rule != null) {
                answer.setResponse(CommonResponse.newBuilder().setHeaderMutation(headerMutation(rule.request().headers(), -1)));
            }
            return response.setRequestHeaders(answer).setModeOverride(mode(false, rule != null && !rule.response().isEmpty())).build();
        }
        boolean anyResponseWork = candidates.stream().anyMatch(r -> !r.response().isEmpty());
        return response.setRequestHeaders(answer).setModeOverride(mode(true, anyResponseWork)).build();
    }

    private ProcessingResponse onRequestBody(HttpBody body) {
        if (requestBodySeen) {
            return fail(StatusCode.InternalServerError, "a second request body message: the ext_proc request body mode must be BUFFERED");
        }
        requestBodySeen = true;
        if (!body.getEndOfStream() && requestBodyMode != BodySendMode.BUFFERED) {
            return fail(StatusCode.InternalServerError, "request body mode " + requestBodyMode + ": must be BUFFERED");
        }
        if (candidates == null || candidates.isEmpty()) {
            return ProcessingResponse.newBuilder().setRequestBody(BodyResponse.getDefaultInstance()).build();
        }
        byte[] bytes = body.getBody().toByteArray();
        rule = choose(candidates.stream().anyMatch(r -> r.match().body() != null) ? utf8(bytes) : "");
        if (rule == null) {
            return ProcessingResponse.newBuilder().setRequestBody(BodyResponse.getDefaultInstance()).build();
        }
        Outcome outcome = rewrite(rule.request(), bytes, requestEncoding, true);
        if (outcome.reject() != null) {
            return outcome.reject();
        }
        return ProcessingResponse.newBuilder()
                .setRequestBody(BodyResponse.newBuilder().setResponse(bodyAnswer(rule.request(), outcome.body())))
                .build();
    }

    private ProcessingResponse onResponseHeaders(HttpHeaders message) {
        HeadersResponse.Builder answer = HeadersResponse.newBuilder();
        if (rule != null) {
            responseEncoding = Headers.firstValues(message.getHeaders()).get("content-encoding");
            if (message.getEndOfStream()) {
                answer.setResponse(CommonResponse.newBuilder().setHeaderMutation(headerMutation(rule.response().headers(), -1)));
            }
        }
        return ProcessingResponse.newBuilder().setResponseHeaders(answer).build();
    }

    private ProcessingResponse onResponseBody(HttpBody body) {
        if (responseBodySeen) {
            return fail(StatusCode.BadGateway, "a second response body message: the ext_proc response body mode must be BUFFERED");
        }
        responseBodySeen = true;
        if (!body.getEndOfStream() && responseBodyMode != BodySendMode.BUFFERED) {
            return fail(StatusCode.BadGateway, "response body mode " + responseBodyMode + ": must be BUFFERED");
        }
        if (rule == null) {
            return ProcessingResponse.newBuilder().setResponseBody(BodyResponse.getDefaultInstance()).build();
        }
        Outcome outcome = rewrite(rule.response(), body.getBody().toByteArray(), responseEncoding, false);
        if (outcome.reject() != null) {
            return outcome.reject();
        }
        return ProcessingResponse.newBuilder()
                .setResponseBody(BodyResponse.newBuilder().setResponse(bodyAnswer(rule.response(), outcome.body())))
                .build();
    }

    private HttpRule choose(String body) {
        for (HttpRule candidate : candidates) {
            if (candidate.match().matchesBody(body)) {
                return candidate;
            }
        }
        return null;
    }

    /** @param body the new body, or null to keep the original; reject: the answer that ends the exchange instead */
    private record Outcome(byte[] body, ProcessingResponse reject) {
    }

    private Outcome rewrite(RuleSide side, byte[] original, String encoding, boolean request) {
        // An empty or absent body carries nothing to protect or to leak.
        if (!side.rewritesBody() || original.length == 0) {
            return new Outcome(null, null);
        }
        String what = request ? "request" : "response";
        try {
            if (encoding != null && !encoding.isBlank() && !encoding.strip().equalsIgnoreCase("identity")) {
                throw new TransformException(TransformException.Kind.INVALID_INPUT,
                        "the body is encoded (content-encoding " + encoding.strip() + ")", null);
            }
            byte[] out = original;
            List<FieldOp> fields = request || rule.decryptsFor(identity) ? side.fields()
                    // not a reader: the response's envelopes pass as they are; its other field ops still apply
                    : side.fields().stream().filter(op -> !(op instanceof FieldOp.Decrypt)).toList();
            if (!fields.isEmpty()) {
                out = JsonTransformer.serialize(processor.transformer.apply(JsonTransformer.parse(out), fields,
                        bindingOf(rule), subjectOf(rule)));
            }
            if (!side.body().isEmpty()) {
                String text = utf8(out);
                if (text == null) {
                    throw new TransformException(TransformException.Kind.INVALID_INPUT, "the body is not UTF-8 text", null);
                }
                for (BodyReplace replace : side.body()) {
                    text = replace.apply(text);
                }
                out = text.getBytes(StandardCharsets.UTF_8);
            }
            return new Outcome(Arrays.equals(out, original) ? null : out, null);
        } catch (TransformException e) {
            if (e.getCause() instanceof KeyNotReadyException notReady) {
                // A subject key on its way (a new subject, a scope secret being unwrapped): answered again later.
                throw new KeyWait(notReady.ready());
            }
            if (e.kind() == TransformException.Kind.INVALID_INPUT && side.onInvalid() == OnInvalid.PASS) {
                log.debug("{} {}: rule {}: {} body passed unchanged: {}", what, target, rule.name(), what, e.getMessage());
                return new Outcome(null, null);
            }
            StatusCode status = e.kind() == TransformException.Kind.FAILURE ? StatusCode.InternalServerError
                    : request ? StatusCode.BadRequest : StatusCode.BadGateway;
            String note = REJECTIONS.admit();
            if (note != null) {
                log.warn("{}: rule {}: {} body rejected ({}): {}{}", target, rule.name(), what, status.getNumber(),
                        e.getMessage(), note);
            }
            return new Outcome(null, immediate(status, "meshcrypt: " + what + " body rejected by rule " + rule.name()
                    + ": " + e.getMessage()));
        }
    }

    /** @return whose key the rule's fields are under: null for the binding's data key */
    private FieldSubject subjectOf(HttpRule rule) {
        if (rule.subject() == null) {
            return null;
        }
        FieldSubject subject = FieldSubject.of(rule.subjectScope(), rule.subject(), rule.forgotten());
        if (rule.subject().header() == null) {
            return subject;
        }
        String id = requestHeaders.get(rule.subject().header());
        return subject.withId(id == null ? null : ByteBuffer.wrap(id.getBytes(StandardCharsets.UTF_8)));
    }

    private static String bindingOf(HttpRule rule) {
        // Rules without encrypt/decrypt ops have no binding, and the engine then never uses it.
        return rule.binding() == null ? "" : rule.binding();
    }

    private static CommonResponse bodyAnswer(RuleSide side, byte[] newBody) {
        CommonResponse.Builder common = CommonResponse.newBuilder()
                .setHeaderMutation(headerMutation(side.headers(), newBody == null ? -1 : newBody.length));
        if (newBody != null) {
            common.setBodyMutation(BodyMutation.newBuilder().setBody(ByteString.copyFrom(newBody)));
        }
        return common.build();
    }

    /** @param contentLength the new body length, or -1 when the body is unchanged */
    private static HeaderMutation headerMutation(HeaderChanges changes, long contentLength) {
        HeaderMutation.Builder mutation = HeaderMutation.newBuilder();
        changes.set().forEach((name, value) -> mutation.addSetHeaders(Headers.set(name, value)));
        mutation.addAllRemoveHeaders(changes.remove());
        if (contentLength >= 0) {
            mutation.addSetHeaders(Headers.set("content-length", Long.toString(contentLength)));
        }
        return mutation.build();
    }

    /** Longest path logged; longer ones are cut (a client chooses it). */
    private static final int MAX_LOGGED_PATH = 200;

    /**
     * What log lines name a request by: method and path, never the query string (it often carries tokens, e-mail
     * addresses or other personal data) nor a fragment; control characters are escaped so a client cannot forge log
     * lines, and a long path is cut.
     */
    static String logTarget(String method, String path) {
        int end = path.indexOf('?');
        int fragment = path.indexOf('#');
        if (fragment >= 0 && (end < 0 || fragment < end)) {
            end = fragment;
        }
        String bare = end < 0 ? path : path.substring(0, end);
        StringBuilder out = new StringBuilder(Math.min(bare.length(), MAX_LOGGED_PATH) + method.length() + 8);
        out.append(method).append(' ');
        for (int i = 0; i < bare.length() && i < MAX_LOGGED_PATH; i++) {
            char c = bare.charAt(i);
            if (c < 0x20 || c == 0x7f) {
                out.append(String.format(Locale.ROOT, "\\x%02x", (int) c));
            } else {
                out.append(c);
            }
        }
        if (bare.length() > MAX_LOGGED_PATH) {
            out.append("...");
        }
        return out.toString();
    }

    private ProcessingResponse fail(StatusCode status, String reason) {
        log.warn("{}: {}", target, reason);
        return immediate(status, "meshcrypt: " + reason);
    }

    private static ProcessingResponse immediate(StatusCode status, String message) {
        byte[] body = ("{\"error\":" + jsonString(message) + "}").getBytes(StandardCharsets.UTF_8);
        return ProcessingResponse.newBuilder().setImmediateResponse(ImmediateResponse.newBuilder()
                .setStatus(HttpStatus.newBuilder().setCode(status))
                .setHeaders(HeaderMutation.newBuilder().addSetHeaders(Headers.set("content-type", "application/json")))
                .setBody(ByteString.copyFrom(body))
                .setDetails("meshcrypt_rejected"))
                .build();
    }

    private static ProcessingMode mode(boolean requestBody, boolean response) {
        return ProcessingMode.newBuilder()
                .setRequestHeaderMode(HeaderSendMode.SEND)
                .setRequestBodyMode(requestBody ? BodySendMode.BUFFERED : BodySendMode.NONE)
                .setRequestTrailerMode(HeaderSendMode.SKIP)
                .setResponseHeaderMode(response ? HeaderSendMode.SEND : HeaderSendMode.SKIP)
                .setResponseBodyMode(response ? BodySendMode.BUFFERED : BodySendMode.NONE)
                .setResponseTrailerMode(HeaderSendMode.SKIP)
                .build();
    }

    /** @return the text, or null when {@code bytes} is not valid UTF-8 */
    private static String utf8(byte[] bytes) {
        try {
            CharBuffer chars = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes));
            return chars.toString();
        } catch (CharacterCodingException e) {
            return null;
        }
    }

    private static String jsonString(String text) {
        StringBuilder out = new StringBuilder("\"");
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        return out.append('"').toString();
    }

    /** Envoy sends header values as raw_value bytes and requires exactly one of value / raw_value in mutations. */
    static final class Headers {
        private Headers() {
        }

        static Map<String, String> firstValues(HeaderMap map) {
            Map<String, String> out = new java.util.HashMap<>();
            for (HeaderValue h : map.getHeadersList()) {
                String value = h.getRawValue().isEmpty() ? h.getValue() : h.getRawValue().toStringUtf8();
                out.putIfAbsent(h.getKey().toLowerCase(Locale.ROOT), value);
            }
            return out;
        }

        static HeaderValueOption set(String name, String value) {
            return HeaderValueOption.newBuilder()
                    .setHeader(HeaderValue.newBuilder().setKey(name).setRawValue(ByteString.copyFromUtf8(value)))
                    .setAppendAction(HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD)
                    .build();
        }
    }
}
